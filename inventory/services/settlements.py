"""Consignment settlement statements (寄售结算单): drafted from consumptions, confirmed once, then locked.

先消耗、后结算: the hospital pays a supplier for consignment units after using them. A statement
covers one supplier and one period of one hospital. While it is a draft it claims nothing: drafting
again refreshes it with what is unsettled now (late registrations in, refunds out), and a draft of
an overlapping period takes its lines. Confirming it locks its lines for good:

- a confirmed statement is never changed by these services, and no draft may share a day of its
  period, so its consumptions cannot be drafted again;
- the database keeps a consumption on one statement line at most (OneToOne);
- a refund of a consumption on a confirmed statement is refused by the consumption service.

Lock order: the supplier row first (every settlement action of one supplier runs one at a time;
there are a few statements a month, so this costs nothing), then its statements by primary key,
then the consumptions concerned. A refund locks the unit and then the consumption, and checks the
statement only after that, so a refund and a confirmation of the same consumption never both win.
"""
import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Consumption, Hospital, Supplier, SupplierSettlement, SupplierSettlementLine, User
from inventory.selectors.settlements import statements_overlapping, unsettled_consignment_consumptions

Status = SupplierSettlement.Status


def draft_settlement(
    *, hospital: Hospital, supplier: Supplier, period_start: datetime.date, period_end: datetime.date, actor: Actor
) -> SupplierSettlement:
    """Create, or refresh, the supplier's draft statement for the period with what is unsettled now.

    All or nothing. The draft's lines become exactly the unsettled consignment consumptions of the
    period (`unsettled_consignment_consumptions`), at the price each was used at; lines on other
    drafts move to this one. Refused: a period sharing a day with a confirmed statement of the
    supplier (its lines are locked), and a new draft with nothing to settle. A refresh that finds
    nothing left leaves an empty draft, which cannot be confirmed.
    """
    user = _acting_user(actor, hospital, "draft a consignment settlement")
    if period_end < period_start:
        raise Refused(Refusal.PERIOD_INVALID, start=period_start, end=period_end)
    with transaction.atomic():
        Supplier.objects.select_for_update().filter(pk=supplier.pk).first()
        overlapping = list(
            statements_overlapping(hospital, supplier, period_start, period_end).select_for_update().order_by("pk")
        )
        if confirmed := [statement for statement in overlapping if statement.status == Status.CONFIRMED]:
            raise _period_locked(confirmed)
        draft = next(
            (s for s in overlapping if (s.period_start, s.period_end) == (period_start, period_end)), None
        )
        unsettled = unsettled_consignment_consumptions(hospital, supplier, period_start, period_end)
        # Locked so that none is refunded before its line is written (refunds lock the consumption).
        consumptions = list(unsettled.select_for_update(of=("self",)))
        if draft is None and not consumptions:
            raise Refused(Refusal.SETTLEMENT_EMPTY, supplier=supplier, start=period_start, end=period_end)
        if draft is None:
            draft = SupplierSettlement.objects.create(
                hospital=hospital, supplier=supplier, period_start=period_start, period_end=period_end,
                created_by=user,
            )
        SupplierSettlementLine.objects.filter(settlement__status=Status.DRAFT).filter(
            Q(settlement=draft) | Q(consumption__in=unsettled.values("pk"))
        ).delete()
        SupplierSettlementLine.objects.bulk_create(
            [
                SupplierSettlementLine(
                    settlement=draft, consumption=consumption, product_id=consumption.product_id,
                    unit_id=consumption.unit_id,
                    lot=consumption.lot or (consumption.unit.lot if consumption.unit else ""),
                    quantity=consumption.quantity, unit_price=consumption.unit_price,
                    amount=consumption.unit_price * consumption.quantity,
                )
                for consumption in consumptions
            ],
            batch_size=500,
        )
    return draft


def confirm_settlement(*, settlement: SupplierSettlement, actor: Actor) -> SupplierSettlement:
    """Confirm a draft statement, once: from then on its lines are locked.

    Refused, with nothing changed: a statement already confirmed (409); one with no lines; one
    whose period shares a day with another confirmed statement of the supplier; one holding
    consumptions refunded since it was drafted (each one listed — draft again to drop them).
    """
    user = _acting_user(actor, settlement.hospital, "confirm a consignment settlement")
    with transaction.atomic():
        Supplier.objects.select_for_update().filter(pk=settlement.supplier_id).first()
        settlement = SupplierSettlement.objects.select_for_update().select_related("supplier").get(pk=settlement.pk)
        consumptions = list(
            Consumption.objects.select_for_update(of=("self",))
            .filter(settlement_line__settlement=settlement)
            .order_by("pk")
        )
        if settlement.status == Status.CONFIRMED:
            raise _already_confirmed(settlement, consumptions)
        if not consumptions:
            raise Refused(Refusal.SETTLEMENT_EMPTY, item=settlement.pk, supplier=settlement.supplier,
                          start=settlement.period_start, end=settlement.period_end)
        if refunded := [consumption for consumption in consumptions if consumption.refunded_at is not None]:
            raise Refused([Problem(Refusal.ALREADY_REFUNDED, {"consumption": c.pk}, c.pk) for c in refunded])
        others = statements_overlapping(
            settlement.hospital, settlement.supplier, settlement.period_start, settlement.period_end
        ).filter(status=Status.CONFIRMED).exclude(pk=settlement.pk)
        if confirmed := list(others.order_by("pk")):
            raise _period_locked(confirmed)
        settlement.status = Status.CONFIRMED
        settlement.confirmed_at = timezone.now()
        settlement.confirmed_by = user
        # The confirmed statement goes to the supplier: saving it ISSUED writes its ISSUED step.
        settlement.stage = SupplierSettlement.Stage.ISSUED
        settlement.save(update_fields=["status", "confirmed_at", "confirmed_by", "stage"])
    return settlement


def _acting_user(actor: Actor, hospital: Hospital, action: str) -> User:
    """Statements name the person who drafted and confirmed them: a user of that hospital or an alliance admin."""
    user = actor.user
    if user is None or (user.hospital_id != hospital.pk and not (user.is_superuser and user.hospital_id is None)):
        raise Refused(Refusal.NOT_ALLOWED, action=action)
    return user


def _already_confirmed(settlement: SupplierSettlement, consumptions: list[Consumption]) -> Refused:
    return Refused(Refusal.SETTLEMENT_CONFIRMED, item=settlement.pk, settlement=settlement.pk)


def _period_locked(confirmed: list[SupplierSettlement]) -> Refused:
    return Refused(
        [
            Problem(
                Refusal.SETTLEMENT_PERIOD_LOCKED,
                {"settlement": statement.pk, "start": statement.period_start, "end": statement.period_end},
                statement.pk,
            )
            for statement in confirmed
        ]
    )
