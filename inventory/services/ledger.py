"""The only code that writes Movement rows and the balances they explain.

Callers hold the transaction and have locked the rows (units first, then lot balances ordered by
primary key, then locations); these functions check the unit status machine, write the movement
and update the balance in that same transaction.
"""
import datetime

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import UNIT_TRANSITIONS, Location, LotBalance, Movement, Product, Unit, UnitStatus


def transition_problem(unit: Unit, target: str) -> Problem | None:
    """Why the unit status machine forbids `unit` to go to `target`, or None if it may."""
    if target in UNIT_TRANSITIONS[unit.status]:
        return None
    return Problem(
        Refusal.ILLEGAL_TRANSITION,
        {"unit": unit.serial, "current": unit.get_status_display(), "target": UnitStatus(target).label,
         "from_status": unit.status, "to_status": str(target)},
        unit.pk,
    )


def expiry_lock_problem(unit: Unit, today: datetime.date | None = None) -> Problem | None:
    """Why an expired unit may not be issued, taken or used, or None if it is not expired.

    A unit is locked once EXPIRED, and also as soon as its expiry date has passed, before the
    nightly scan has moved it to EXPIRED. Returning it to the supplier or scrapping it stays allowed.
    """
    today = today or timezone.localdate()
    if unit.status == UnitStatus.EXPIRED or (unit.expiry is not None and unit.expiry < today):
        return Problem(Refusal.UNIT_EXPIRED_LOCKED, {"unit": unit.serial, "expiry": unit.expiry}, unit.pk)
    return None


def move_unit(
    *, unit: Unit, kind: str, to_status: str, to_location: Location | None, actor: Actor,
    idempotency_key: str, document: tuple[str, int], occurred_at: datetime.datetime | None = None,
    reason_code: str = "", note: str = "",
) -> Movement:
    """Change one unit's status/location and record why. `unit` must be locked by the caller."""
    if problem := transition_problem(unit, to_status):
        raise Refused([problem])
    movement = Movement.objects.create(
        hospital_id=unit.hospital_id, kind=kind, product_id=unit.product_id, unit=unit, lot=unit.lot,
        quantity=1, from_location_id=unit.location_id, to_location=to_location,
        from_status=unit.status, to_status=to_status, occurred_at=occurred_at or timezone.now(),
        reason_code=reason_code, note=note, document_type=document[0], document_id=document[1],
        idempotency_key=idempotency_key, **actor.movement_fields(),
    )
    if unit.status != to_status:
        unit.status_since = movement.occurred_at
    unit.status = to_status
    unit.location = to_location
    unit.save(update_fields=["status", "status_since", "location"])
    return movement


def move_units(
    *, units: list[Unit], kind: str, to_status: str, to_location: Location | None, actor: Actor,
    idempotency_keys: list[str], document: tuple[str, int], occurred_at: datetime.datetime,
    reason_code: str = "", note: str = "",
) -> list[Movement]:
    """`move_unit` for many units in one go (a cabinet close takes or puts back dozens): every
    transition checked first, then one INSERT of the movements and one UPDATE of the units.
    All or nothing; the units must be locked by the caller."""
    problems = [problem for unit in units if (problem := transition_problem(unit, to_status))]
    if problems:
        raise Refused(problems)
    if not units:
        return []
    movements = Movement.objects.bulk_create([
        Movement(
            hospital_id=unit.hospital_id, kind=kind, product_id=unit.product_id, unit=unit, lot=unit.lot, quantity=1,
            from_location_id=unit.location_id, to_location=to_location, from_status=unit.status, to_status=to_status,
            occurred_at=occurred_at, reason_code=reason_code, note=note, document_type=document[0],
            document_id=document[1], idempotency_key=key, **actor.movement_fields(),
        )
        for unit, key in zip(units, idempotency_keys, strict=True)
    ])
    Unit.objects.filter(pk__in=[unit.pk for unit in units]).update(
        status=to_status, location=to_location,
        status_since=Case(When(~Q(status=to_status), then=Value(occurred_at)), default=F("status_since")),
    )
    for unit in units:
        if unit.status != to_status:
            unit.status_since = occurred_at
        unit.status, unit.location = to_status, to_location
    return movements


def move_lot(
    *, product: Product, lot: str, quantity: int, source: LotBalance | None, to_location: Location | None,
    kind: str, actor: Actor, idempotency_key: str, document: tuple[str, int],
    new_balance_defaults: dict | None = None, occurred_at: datetime.datetime | None = None,
    reason_code: str = "", note: str = "",
) -> Movement:
    """Move `quantity` of a lot out of `source` (locked by the caller) and/or into `to_location`.

    The decrement is an F() update guarded by the CHECK constraint, so stock can never go negative
    even if a caller forgot to lock; the caller checks first to give a clear refusal.
    """
    if source is not None:
        if source.quantity < quantity:
            raise Refused(
                Refusal.INSUFFICIENT_STOCK, lot=lot, location=source.location, available=source.quantity,
                requested=quantity,
            )
        LotBalance.objects.filter(pk=source.pk).update(quantity=F("quantity") - quantity)
        source.refresh_from_db(fields=["quantity"])
    if to_location is not None:
        template = source or LotBalance(**(new_balance_defaults or {}))
        target, _ = LotBalance.objects.select_for_update().get_or_create(
            product=product, lot=lot, location=to_location,
            defaults={
                "hospital_id": product.hospital_id, "expiry": template.expiry, "owner": template.owner,
                "unit_cost": template.unit_cost, "quantity": 0,
            },
        )
        LotBalance.objects.filter(pk=target.pk).update(quantity=F("quantity") + quantity)
    return Movement.objects.create(
        hospital_id=product.hospital_id, kind=kind, product=product, lot=lot, quantity=quantity,
        from_location_id=source.location_id if source else None, to_location=to_location,
        occurred_at=occurred_at or timezone.now(), reason_code=reason_code, note=note,
        document_type=document[0], document_id=document[1], idempotency_key=idempotency_key,
        **actor.movement_fields(),
    )


def change_unit_owner(
    *, unit: Unit, to_owner: str, actor: Actor, idempotency_key: str, document: tuple[str, int],
    occurred_at: datetime.datetime | None = None, note: str = "",
) -> Movement:
    """Record a change of owner (consignment unit bought at use, or handed back at refund)."""
    movement = Movement.objects.create(
        hospital_id=unit.hospital_id, kind=Movement.Kind.OWNER_CHANGE, product_id=unit.product_id, unit=unit,
        lot=unit.lot, quantity=1, from_location_id=unit.location_id, to_location_id=unit.location_id,
        from_status=unit.status, to_status=unit.status, from_owner=unit.owner, to_owner=to_owner,
        occurred_at=occurred_at or timezone.now(), note=note, document_type=document[0], document_id=document[1],
        idempotency_key=idempotency_key, **actor.movement_fields(),
    )
    unit.owner = to_owner
    unit.save(update_fields=["owner"])
    return movement
