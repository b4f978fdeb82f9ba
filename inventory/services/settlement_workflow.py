"""A consignment settlement statement between the hospital and its supplier (寄售结算单对账).

    DRAFT ──(hospital confirms: services.settlements.confirm_settlement)──▶ ISSUED
    ISSUED ──(supplier confirms)──▶ SUPPLIER_CONFIRMED ──(hospital settles)──▶ SETTLED
    ISSUED ──(supplier disputes, with a reason)──▶ DISPUTED ──(hospital reopens, with a reason)──▶ DRAFT

The supplier's confirmation is its own act, after the hospital's: the hospital confirms (and so
locks and issues) what it believes it owes; the supplier's user, in the portal, agrees or disputes
it; the hospital pays (settles) only what the supplier agreed. A disputed statement comes back to
the hospital with the supplier's reason (a SETTLEMENT_DISPUTED alert): the hospital reopens it — it is
a draft again, its lines unlocked, to be redrafted and confirmed (issued) again, or issued unchanged.

Every step is a `SupplierSettlementEvent` (who, when, why), only ever added; the statement's `stage`
says where it is now. The ISSUED step is written by `SupplierSettlement.save` whenever a statement
becomes ISSUED — through `confirm_settlement` or any other save that stores it confirmed (a fixture,
an import) — so that no issued statement lacks it; the other steps are written here. On PostgreSQL
a deferred trigger (migration 0038) refuses at commit a statement whose stage is not its last step's
(a queryset update, a bulk insert or raw SQL that set the stage without the step).

Each step locks the statement row and checks its stage there, so two people answering at once
cannot both win: the second is refused (409 SETTLEMENT_STAGE) with nothing changed.
"""
from django.db import transaction
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Alert, SupplierSettlement, SupplierSettlementEvent, User

Stage = SupplierSettlement.Stage
Kind = SupplierSettlementEvent.Kind
REASON_LIMIT = 1000


def supplier_confirm_statement(*, settlement: SupplierSettlement, actor: Actor) -> SupplierSettlement:
    """The supplier agrees with an issued statement. Only the statement's own supplier's user (else
    404); only while it is ISSUED (else 409)."""
    user = _supplier_user(actor, settlement)
    with transaction.atomic():
        locked = _lock(settlement, allowed=(Stage.ISSUED,), action="confirmed by the supplier")
        return _step(locked, stage=Stage.SUPPLIER_CONFIRMED, kind=Kind.SUPPLIER_CONFIRMED, user=user)


def dispute_statement(*, settlement: SupplierSettlement, actor: Actor, reason: str) -> SupplierSettlement:
    """The supplier disputes an issued statement with its reason; the statement goes back to the
    hospital (an alert for it). Only while it is ISSUED (else 409)."""
    user = _supplier_user(actor, settlement)
    reason = _reason(reason)
    with transaction.atomic():
        locked = _lock(settlement, allowed=(Stage.ISSUED,), action="disputed")
        _step(locked, stage=Stage.DISPUTED, kind=Kind.DISPUTED, user=user, reason=reason)
        from inventory.services.alerts import raise_alert

        raise_alert(
            hospital=locked.hospital, kind=Alert.Kind.SETTLEMENT_DISPUTED, subject_key=f"settlement:{locked.pk}",
            severity=Alert.Severity.WARNING,
            message=f"{locked.supplier.name} 对寄售结算单 {locked.pk}（{locked.period_start}–{locked.period_end}）"
                    f"有异议：{reason}",
            details={"settlement": locked.pk, "supplier": locked.supplier_id, "reason": reason},
        )
    return locked


def reopen_statement(*, settlement: SupplierSettlement, actor: Actor, reason: str) -> SupplierSettlement:
    """The hospital takes a disputed statement back: it is a draft again (its lines unlocked), to be
    redrafted and issued again. Only a DISPUTED statement (else 409); the reason answers the dispute."""
    user = _hospital_user(actor, settlement, "reopen a disputed settlement")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _lock(settlement, allowed=(Stage.DISPUTED,), action="reopened")
        locked.status, locked.stage = SupplierSettlement.Status.DRAFT, Stage.DRAFT
        locked.confirmed_at = locked.confirmed_by = None
        locked.save(update_fields=["status", "stage", "confirmed_at", "confirmed_by"])
        SupplierSettlementEvent.objects.create(settlement=locked, kind=Kind.REOPENED, by=user, reason=reason)
        from inventory.services.alerts import auto_resolve

        auto_resolve(hospital=locked.hospital, kind=Alert.Kind.SETTLEMENT_DISPUTED,
                     subject_keys=[f"settlement:{locked.pk}"])
    return locked


def settle_statement(*, settlement: SupplierSettlement, actor: Actor) -> SupplierSettlement:
    """The hospital settles (pays) a statement its supplier confirmed. Only SUPPLIER_CONFIRMED (else 409)."""
    user = _hospital_user(actor, settlement, "settle a consignment settlement")
    with transaction.atomic():
        locked = _lock(settlement, allowed=(Stage.SUPPLIER_CONFIRMED,), action="settled")
        return _step(locked, stage=Stage.SETTLED, kind=Kind.SETTLED, user=user)


def _lock(settlement: SupplierSettlement, *, allowed: tuple[str, ...], action: str) -> SupplierSettlement:
    locked = SupplierSettlement.objects.select_for_update().select_related("supplier", "hospital").get(
        pk=settlement.pk
    )
    if locked.stage not in allowed:
        raise Refused(Refusal.SETTLEMENT_STAGE, settlement=locked.pk, stage=locked.get_stage_display(), action=action)
    return locked


def _step(
    settlement: SupplierSettlement, *, stage: str, kind: str, user: User, reason: str = ""
) -> SupplierSettlement:
    settlement.stage = stage
    settlement.save(update_fields=["stage"])
    SupplierSettlementEvent.objects.create(settlement=settlement, kind=kind, by=user, reason=reason,
                                           at=timezone.now())
    return settlement


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Refused(Refusal.SETTLEMENT_REASON_MISSING, field="reason")
    return reason[:REASON_LIMIT]


def _supplier_user(actor: Actor, settlement: SupplierSettlement) -> User:
    """The statement's own supplier's user; to anyone else the statement does not exist."""
    user = actor.user
    if user is None or user.supplier_id is None or user.supplier_id != settlement.supplier_id:
        raise Refused(Refusal.NOT_FOUND, what="settlement statement")
    if not settlement.events.filter(kind=Kind.ISSUED).exists():
        raise Refused(Refusal.NOT_FOUND, what="settlement statement")  # never issued: the hospital's alone
    return user


def _hospital_user(actor: Actor, settlement: SupplierSettlement, action: str) -> User:
    user = actor.user
    if user is None or (
        user.hospital_id != settlement.hospital_id and not (user.is_superuser and user.hospital_id is None)
    ):
        raise Refused(Refusal.NOT_ALLOWED, action=action)
    return user
