"""The only code that writes Movement rows and the balances they explain (but for a use's one
statement, inventory/services/consumption.py, which writes the movements built here under the
condition given here, `could_refuse_unit_move`).

Callers hold the transaction and have locked the rows (units first, then lot balances ordered by
primary key, then locations); these functions check the unit status machine, write the movement
and update the balance in that same transaction.

A lot balance is made of cost layers, one per receipt (`LotCostLayer`). Every lot movement says
which layers it moved and how much of each (`LotMovementLayer`), and changes those layers with
the balance: a receipt opens a layer at its price; a use, transfer, return or scrap draws the
oldest receipts first (FIFO) unless the caller names the layers (a refund puts back exactly what
its use took); a transfer adds the layers it drew at the destination. Layers are written only
under the lock of their balance, so they need no lock of their own.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.encoding import force_str

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.lookups import AnyOf, int_array, text_array
from inventory.models import (
    UNIT_TRANSITIONS,
    AllianceTransferLine,
    ClosedPeriod,
    Hospital,
    Location,
    LotBalance,
    LotCostLayer,
    LotMovementLayer,
    Movement,
    Owner,
    Product,
    Recall,
    StockReservation,
    StocktakeSession,
    Unit,
    UnitStatus,
)
from inventory.services.compiled_sql import ShapeCache, sentinel_int, sentinel_moment
from inventory.services.period_close import refuse_closed_period

# Oldest first: the opening layer (stock on hand before layers existed), then by receipt.
FIFO = (F("receipt_id").asc(nulls_first=True),)


@dataclass(frozen=True)
class LayerDraw:
    """A quantity of one cost layer (named by its receipt movement; None for the opening layer)."""

    receipt_id: int | None
    quantity: int
    unit_cost: Decimal
    is_gift: bool = False


@dataclass(slots=True)
class UnitRow:
    """A unit as plain values: the columns that the checks of a move (`transition_problem`,
    `expiry_lock_problem`, `quarantine_problem`, the holds and recalls, inventory/services/stock.py's
    `_unit_problems`) and `move_units` read, and that `move_units` sets after the move. These take a
    `Unit` or a `UnitRow` alike: a receiving station's batch locks and reads hundreds of units in one
    query (devices/scanning.py), and building a `Unit` and a `Product` instance for each cost more
    than that locked read itself."""

    pk: int
    hospital_id: int
    product_id: int
    lot: str
    serial: str
    expiry: datetime.date | None
    status: str
    status_since: datetime.datetime
    location_id: int | None
    location: Location | None


def status_label(status: str) -> str:
    """How a unit status is shown (`Unit.get_status_display()`), from the status alone."""
    return force_str(UnitStatus(status).label) if status in UnitStatus.values else status


def transition_problem(unit: Unit | UnitRow, target: str) -> Problem | None:
    """Why the unit status machine forbids `unit` to go to `target`, or None if it may."""
    if target in UNIT_TRANSITIONS[unit.status]:
        return None
    return Problem(
        Refusal.ILLEGAL_TRANSITION,
        {"unit": unit.serial, "current": status_label(unit.status), "target": UnitStatus(target).label,
         "from_status": unit.status, "to_status": str(target)},
        unit.pk,
    )


def expiry_lock_problem(unit: Unit | UnitRow, today: datetime.date | None = None) -> Problem | None:
    """Why an expired unit may not be issued, taken or used, or None if it is not expired.

    A unit is locked once EXPIRED, and also as soon as its expiry date has passed, before the
    nightly scan has moved it to EXPIRED. Returning it to the supplier or scrapping it stays allowed.
    """
    today = today or timezone.localdate()
    if unit.status == UnitStatus.EXPIRED or (unit.expiry is not None and unit.expiry < today):
        return Problem(Refusal.UNIT_EXPIRED_LOCKED, {"unit": unit.serial, "expiry": unit.expiry}, unit.pk)
    return None


def quarantine_problem(unit: Unit | UnitRow, *, releasing: bool) -> Problem | None:
    """Why `unit` may not be moved (or taken) from where it is: a unit in quarantine leaves only by a
    release from quarantine (`releasing`), and only a unit in quarantine can be released."""
    location = unit.location
    in_quarantine = location is not None and location.kind == Location.Kind.QUARANTINE
    if in_quarantine and not releasing:
        return Problem(Refusal.QUARANTINE_RELEASE_REQUIRED, {"item": unit.serial, "location": location}, unit.pk)
    if releasing and not in_quarantine:
        return Problem(Refusal.NOT_IN_QUARANTINE, {"item": unit.serial, "location": location}, unit.pk)
    return None


# Movements a count with `freeze_outgoing` stops from leaving its locations. Cabinet takes and
# returns, expiry locks and adjustments are facts reported by devices or the count itself: they are
# recorded, and the count accounts for them by the snapshot time.
FROZEN_KINDS = frozenset({
    Movement.Kind.PUTAWAY, Movement.Kind.TRANSFER, Movement.Kind.CONSUME, Movement.Kind.RETURN_TO_SUPPLIER,
    Movement.Kind.SCRAP, Movement.Kind.QUARANTINE_RELEASE,
})


def refuse_if_frozen(kind: str, from_location_ids: set[int | None]) -> None:
    """Refuse (409 STOCKTAKE_FROZEN, naming the count) a `kind` of movement out of a location that a
    count with `freeze_outgoing` is counting right now."""
    from_location_ids = {pk for pk in from_location_ids if pk is not None}
    if kind not in FROZEN_KINDS or not from_location_ids:
        return
    session = StocktakeSession.objects.filter(
        status=StocktakeSession.Status.COUNTING, freeze_outgoing=True, locations__in=from_location_ids
    ).order_by("pk").first()
    if session is not None:
        location = session.locations.filter(pk__in=from_location_ids).order_by("pk").first()
        raise Refused(Refusal.STOCKTAKE_FROZEN, location=location, session=session.pk)


# Movements an open recall forbids for the stock it affects: only quarantine (a transfer into a
# quarantine location), return to the supplier, scrap and the facts of a count or an expiry remain.
RECALL_LOCKED_KINDS = frozenset({
    Movement.Kind.PUTAWAY, Movement.Kind.TRANSFER, Movement.Kind.CABINET_TAKE, Movement.Kind.CONSUME,
    Movement.Kind.DEPARTMENT_EXPENSE, Movement.Kind.PACK_IN, Movement.Kind.PACK_MADE,
})


def _open_recalls(product_ids: set[int]) -> dict[int, list[Recall]]:
    """The open recalls of these products, by product (one query; a hospital has few open recalls)."""
    found: dict[int, list[Recall]] = {}
    for recall in (Recall.objects.filter(status=Recall.Status.OPEN, product_id__in=product_ids)
                   .select_related("product").order_by("pk")):
        found.setdefault(recall.product_id, []).append(recall)
    return found


def _covering(recalls: list[Recall], *, lot: str, serial: str | None = None) -> Recall | None:
    """The first of `recalls` that covers this lot, or this unit when `serial` is given."""
    for recall in recalls:
        if recall.scope in (Recall.Scope.PRODUCT, Recall.Scope.UDI_DI):
            return recall
        if recall.scope == Recall.Scope.LOT and recall.lot == lot:
            return recall
        if recall.scope == Recall.Scope.SERIALS and serial is not None and serial in recall.serials:
            return recall
    return None


def open_recall_of(*, product_id: int, lot: str, serial: str | None = None) -> Recall | None:
    """The first open recall that covers this unit (`serial` given) or this lot of `product_id`."""
    return _covering(_open_recalls({product_id}).get(product_id, []), lot=lot, serial=serial)


def recall_lock_problems(units: list[Unit | UnitRow]) -> list[Problem]:
    """Why each of `units` may not be taken, issued, picked, packed or used: an open recall covers it
    (one query for the lot, whatever its size)."""
    if not units:
        return []
    recalls = _open_recalls({unit.product_id for unit in units})
    problems = []
    for unit in units:
        if recall := _covering(recalls.get(unit.product_id, []), lot=unit.lot, serial=unit.serial):
            problems.append(Problem(Refusal.RECALL_LOCKED, {"item": f"SN {unit.serial}", "recall": recall.label},
                                    unit.pk))
    return problems


def recall_lock_problem(unit: Unit) -> Problem | None:
    """`recall_lock_problems` of one unit."""
    return next(iter(recall_lock_problems([unit])), None)


def refuse_if_recalled(kind: str, to_location: Location | None, *, units: list[Unit | UnitRow] = (),
                       product_id: int | None = None, lot: str = "") -> None:
    """The one recall check of every stock movement: refuse (409 RECALL_LOCKED, naming the recall) a
    `kind` of movement of recalled units or of a recalled lot, unless it goes into quarantine."""
    if kind not in RECALL_LOCKED_KINDS:
        return
    if to_location is not None and to_location.kind == Location.Kind.QUARANTINE:
        return
    problems = recall_lock_problems(list(units))
    if product_id is not None and (recall := open_recall_of(product_id=product_id, lot=lot)) is not None:
        problems.append(Problem(Refusal.RECALL_LOCKED, {"item": f"lot {lot}", "recall": recall.label}, lot))
    if problems:
        raise Refused(problems)


# Stock held for an alliance transfer (services/transfers.py) moves only by that transfer: stock
# reserved for it between creation and dispatch, and stock at the ALLIANCE-TRANSIT location between
# dispatch and receipt. The transfer's own movements carry its document; an expiry lock is a fact
# recorded where the stock is. Triggers on the ledger keep the same rule for units reserved and for
# anything leaving an in-transit location (migration 0039), and for lot quantity reserved (0042).
TRANSFER_RESERVATION = StockReservation.Holder.ALLIANCE_TRANSFER_LINE
HELD_FACT_KINDS = frozenset({Movement.Kind.EXPIRE})


def _holds_apply(kind: str, document: tuple[str, int] | None) -> bool:
    return kind not in HELD_FACT_KINDS and (document is None or document[0] != Movement.DocumentType.ALLIANCE_TRANSFER)


def _alliance_transit(location_ids: set[int]) -> QuerySet[Location]:
    return Location.objects.filter(
        pk__in=location_ids, kind=Location.Kind.IN_TRANSIT, code=Location.ALLIANCE_TRANSIT_CODE)


def _transfer_reservations() -> QuerySet[StockReservation]:
    return StockReservation.objects.filter(is_active=True, holder_type=TRANSFER_RESERVATION)


def transfer_numbers(line_ids: set[int]) -> dict[int, str]:
    """The issue number (调出单号) of the transfer of each of these transfer lines."""
    return dict(AllianceTransferLine.objects.filter(pk__in=line_ids).values_list("pk", "transfer__issue_number"))


def held_unit_problems(units: list[Unit | UnitRow]) -> list[Problem]:
    """Why each of `units` may move only by its alliance transfer: it is at an alliance in-transit
    location (ALLIANCE_TRANSIT_LOCKED) or reserved for a transfer not yet dispatched
    (ALLIANCE_STOCK_RESERVED, naming the transfer). One query when none is held."""
    if not units:
        return []
    reservation = _transfer_reservations().filter(unit_id=OuterRef("pk"))
    held = {row["pk"]: row for row in Unit.objects.filter(pk__in=[unit.pk for unit in units]).filter(
        Q(location__kind=Location.Kind.IN_TRANSIT, location__code=Location.ALLIANCE_TRANSIT_CODE)
        | Exists(reservation)).values("pk", "location__code", "location__kind", "location__name",
                                      holder=Subquery(reservation.values("holder_id")[:1]))}
    if not held:
        return []
    numbers = transfer_numbers({row["holder"] for row in held.values() if row["holder"]})
    problems = []
    for unit in units:
        if (row := held.get(unit.pk)) is None:
            continue
        if (row["location__kind"], row["location__code"]) == (Location.Kind.IN_TRANSIT, Location.ALLIANCE_TRANSIT_CODE):
            problems.append(Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {
                "item": f"SN {unit.serial}", "location": row["location__name"]}, unit.pk))
        else:
            problems.append(Problem(Refusal.ALLIANCE_STOCK_RESERVED, {
                "item": f"SN {unit.serial}", "number": numbers.get(row["holder"], "?")}, unit.pk))
    return problems


def held_lot_problem(source: LotBalance, quantity: int) -> Problem | None:
    """Why `quantity` of `source` may not move but by its alliance transfer: the balance is at an
    alliance in-transit location, or what is not reserved for transfers is less than `quantity`
    (only the unreserved quantity is available). One query."""
    reserved = (_transfer_reservations().filter(lot_balance=OuterRef("pk")).order_by()
                .values("lot_balance").annotate(total=Sum("quantity")).values("total"))
    row = LotBalance.objects.filter(pk=source.pk).values(
        "quantity", "location__kind", "location__code", "location__name",
        reserved=Coalesce(Subquery(reserved, output_field=IntegerField()), Value(0)),
    ).first()
    if row is None:
        return None
    if row["location__kind"] == Location.Kind.IN_TRANSIT and row["location__code"] == Location.ALLIANCE_TRANSIT_CODE:
        return Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": f"批号 {source.lot}", "location": row["location__name"]},
                       source.lot)
    available = row["quantity"] - row["reserved"]
    if row["reserved"] and quantity > available:
        holders = _transfer_reservations().filter(lot_balance_id=source.pk).values_list("holder_id", flat=True)
        numbers = sorted(set(transfer_numbers(set(holders)).values()))
        return Problem(Refusal.ALLIANCE_LOT_RESERVED, {
            "lot": source.lot, "location": row["location__name"], "reserved": row["reserved"],
            "quantity": row["quantity"], "numbers": "、".join(numbers), "available": max(available, 0),
            "requested": quantity}, source.lot)
    return None


def refuse_if_held(kind: str, document: tuple[str, int] | None, *, units: list[Unit | UnitRow] = (),
                   source: LotBalance | None = None, quantity: int = 0) -> None:
    """The one check of every stock movement for stock held by an alliance transfer (see above)."""
    if not _holds_apply(kind, document):
        return
    problems = held_unit_problems(list(units))
    if source is not None and (problem := held_lot_problem(source, quantity)):
        problems.append(problem)
    if problems:
        raise Refused(problems)


def refuse_blocked(
    *, kind: str, hospital_id: int, moment: datetime.datetime, from_location_ids: set[int | None],
    to_location: Location | None, units: list[Unit | UnitRow], document: tuple[str, int] | None = None,
    reported_fact: bool = False,
) -> None:
    """`refuse_closed_period`, `refuse_if_frozen`, `refuse_if_held` and `refuse_if_recalled` for one
    movement, in one query: whether each of them could refuse is read together, and only then does
    the one that could read what it needs to decide and word its refusal (the same functions, so the
    same rules). A `reported_fact` (a cabinet door close) is checked for closed months and frozen
    counts only."""
    from_ids = {pk for pk in from_location_ids if pk is not None}
    checks = _block_checks(kind=kind, hospital_id=hospital_id, from_ids=from_ids, to_location=to_location,
                           units=units, document=document, reported_fact=reported_fact)
    found = Hospital.objects.filter(pk=hospital_id).values(**checks).first() or {}
    if found.get("closed") is not None and moment < found["closed"]:
        refuse_closed_period(hospital_id=hospital_id, moment=moment)
    if found.get("frozen"):
        refuse_if_frozen(kind, from_ids)
    if found.get("reserved") or found.get("in_transit"):
        refuse_if_held(kind, document, units=units)
    if found.get("recalled"):
        refuse_if_recalled(kind, to_location, units=units)


def _block_checks(
    *, kind: str, hospital_id: int, from_ids: set[int], to_location: Location | None, units: list[Unit | UnitRow],
    document: tuple[str, int] | None, reported_fact: bool,
) -> dict:
    """The expressions `refuse_blocked` reads, one per check that applies to this movement."""
    checks = {"closed": Subquery(
        ClosedPeriod.objects.filter(hospital_id=hospital_id).order_by("-ends_at").values("ends_at")[:1]
    )}
    if _holds_apply(kind, document) and units and not reported_fact:
        checks["reserved"] = Exists(_transfer_reservations().filter(AnyOf(F("unit_id"), [unit.pk for unit in units])))
        checks["in_transit"] = Exists(_alliance_transit(from_ids))
    if kind in FROZEN_KINDS and from_ids:
        checks["frozen"] = Exists(StocktakeSession.objects.filter(
            status=StocktakeSession.Status.COUNTING, freeze_outgoing=True, locations__in=from_ids,
        ))
    into_quarantine = to_location is not None and to_location.kind == Location.Kind.QUARANTINE
    if kind in RECALL_LOCKED_KINDS and not into_quarantine and units and not reported_fact:
        checks["recalled"] = Exists(Recall.objects.filter(
            AnyOf(F("product_id"), sorted({unit.product_id for unit in units})), status=Recall.Status.OPEN,
        ))
    return checks


def _blocked(checks: dict, *, hospital_id: int, moment: datetime.datetime) -> QuerySet[Hospital]:
    """The hospital's row when one of `checks` could refuse a movement at `moment`, else nothing."""
    could_refuse = Q(closed__gt=moment)
    for name in checks.keys() - {"closed"}:
        could_refuse |= Q(**{name: True})
    return Hospital.objects.filter(pk=hospital_id).annotate(**checks).filter(could_refuse).values("pk")


def move_unit(
    *, unit: Unit, kind: str, to_status: str, to_location: Location | None, actor: Actor,
    idempotency_key: str, document: tuple[str, int], occurred_at: datetime.datetime | None = None,
    reason_code: str = "", note: str = "",
) -> Movement:
    """Change one unit's status/location and record why. `unit` must be locked by the caller."""
    if problem := transition_problem(unit, to_status):
        raise Refused([problem])
    occurred_at = occurred_at or timezone.now()
    refuse_blocked(kind=kind, hospital_id=unit.hospital_id, moment=occurred_at, from_location_ids={unit.location_id},
                   to_location=to_location, units=[unit], document=document)
    movement = unit_movement(unit, kind=kind, to_status=to_status, to_location=to_location, actor=actor,
                             idempotency_key=idempotency_key, document=document, occurred_at=occurred_at,
                             reason_code=reason_code, note=note)
    movement.save(force_insert=True)
    if unit.status != to_status:
        unit.status_since = movement.occurred_at
    unit.status = to_status
    unit.location = to_location
    unit.save(update_fields=["status", "status_since", "location"])
    return movement


def unit_movement(
    unit: Unit, *, kind: str, to_status: str, to_location: Location | None, actor: Actor, idempotency_key: str,
    document: tuple[str, int | None], occurred_at: datetime.datetime, reason_code: str = "", note: str = "",
) -> Movement:
    """The movement `move_unit` writes, not yet saved (a use writes it in its one statement)."""
    return Movement(
        hospital_id=unit.hospital_id, kind=kind, product_id=unit.product_id, unit=unit, lot=unit.lot,
        quantity=1, from_location_id=unit.location_id, to_location=to_location,
        from_status=unit.status, to_status=to_status, occurred_at=occurred_at,
        reason_code=reason_code, note=note, document_type=document[0], document_id=document[1],
        idempotency_key=idempotency_key, **actor.movement_fields(),
    )


def owner_change(
    unit: Unit, *, to_owner: str, actor: Actor, idempotency_key: str, document: tuple[str, int | None],
    occurred_at: datetime.datetime, note: str = "",
) -> Movement:
    """The movement `change_unit_owner` writes, not yet saved."""
    return Movement(
        hospital_id=unit.hospital_id, kind=Movement.Kind.OWNER_CHANGE, product_id=unit.product_id, unit=unit,
        lot=unit.lot, quantity=1, from_location_id=unit.location_id, to_location_id=unit.location_id,
        from_status=unit.status, to_status=unit.status, from_owner=unit.owner, to_owner=to_owner,
        occurred_at=occurred_at, note=note, document_type=document[0], document_id=document[1],
        idempotency_key=idempotency_key, **actor.movement_fields(),
    )


def could_refuse_unit_move(
    *, kind: str, unit: Unit, to_location: Location | None, document: tuple[str, int | None],
    moment: datetime.datetime,
) -> QuerySet[Hospital]:
    """The hospital's row when one of `refuse_blocked`'s checks could refuse this movement of `unit`
    (locked) at `moment` — a closed month, a count's freeze, an alliance hold, an open recall of its
    product —, else nothing: the condition `move_units` inserts under, for a statement that writes a
    unit's movement only when nothing could refuse it (`refuse_blocked` then decides and words it)."""
    from_ids = {unit.location_id} - {None}
    checks = _block_checks(kind=kind, hospital_id=unit.hospital_id, from_ids=from_ids, to_location=to_location,
                           units=[unit], document=document, reported_fact=False)
    return _blocked(checks, hospital_id=unit.hospital_id, moment=moment)


def could_refuse_unit_move_sql(
    *, kind: str, unit: Unit, to_location: Location | None, document: tuple[str, int | None],
    moment: datetime.datetime,
) -> tuple[str, tuple]:
    """`could_refuse_unit_move(…).query.sql_with_params()`, compiled once per shape of the checks (the
    movement's kind, whether the unit has a location, whether it goes into quarantine, the document's
    type) and given this movement's values."""
    shape = (kind, unit.location_id is not None, to_location is not None and to_location.kind == Location.Kind.QUARANTINE,
             document[0] if document is not None else None)
    values = {"hospital_id": unit.hospital_id, "unit_id": unit.pk, "location_id": unit.location_id,
              "product_id": unit.product_id, "moment": moment}
    return _UNIT_MOVE_GUARDS.sql_with_params(shape, values)


def _unit_move_guard(shape: tuple, values: dict) -> QuerySet[Hospital]:
    kind, has_location, into_quarantine, document_type = shape
    unit = Unit(pk=values["unit_id"], hospital_id=values["hospital_id"], product_id=values["product_id"],
                location_id=values["location_id"] if has_location else None)
    to_location = Location(kind=Location.Kind.QUARANTINE) if into_quarantine else None
    return could_refuse_unit_move(kind=kind, unit=unit, to_location=to_location, document=(document_type, None),
                                  moment=values["moment"])


def _unit_move_guard_sentinels(shape: tuple) -> dict:
    return {"hospital_id": sentinel_int(), "unit_id": sentinel_int(), "product_id": sentinel_int(),
            "location_id": sentinel_int(), "moment": sentinel_moment()}


_UNIT_MOVE_GUARDS = ShapeCache(_unit_move_guard, _unit_move_guard_sentinels)


def move_units(
    *, units: list[Unit | UnitRow], kind: str, to_status: str, to_location: Location | None, actor: Actor,
    idempotency_keys: list[str], document: tuple[str, int], occurred_at: datetime.datetime,
    reason_code: str = "", note: str = "", reported_fact: bool = False,
) -> list[int]:
    """`move_unit` for many units in one go (a cabinet close takes or puts back dozens, a receiving
    station's batch hundreds): every transition checked first, then one INSERT of the movements and
    one UPDATE of the units. All or nothing; the units must be locked by the caller. `reported_fact`:
    a device reports what already happened (a cabinet door close), which no recall lock can refuse.
    Returns the ids of the movements written."""
    problems = [problem for unit in units if (problem := transition_problem(unit, to_status))]
    if problems:
        raise Refused(problems)
    if not units:
        return []
    blocking = {"kind": kind, "hospital_id": units[0].hospital_id, "to_location": to_location, "units": units,
                "document": document, "reported_fact": reported_fact}
    from_ids = {unit.location_id for unit in units} - {None}
    rows = {"kind": kind, "to_location_id": to_location.pk if to_location else None, "to_status": to_status,
            "occurred_at": occurred_at, "reason_code": reason_code, "note": note, "document": document,
            **{f"{name}_id": value.pk if value else None for name, value in actor.movement_fields().items()}}
    # `refuse_blocked`'s checks, asked by the INSERT itself: it writes nothing when one of them could
    # refuse, and only then are they read one by one to decide and word the refusal.
    unless = _blocked(_block_checks(from_ids=from_ids, **blocking), hospital_id=blocking["hospital_id"],
                      moment=occurred_at)
    movement_ids = _insert_unit_movements(units, idempotency_keys, unless=unless, **rows)
    if not movement_ids:
        refuse_blocked(moment=occurred_at, from_location_ids=from_ids, **blocking)
        movement_ids = _insert_unit_movements(units, idempotency_keys, **rows)  # unblocked since: none refuses
    Unit.objects.filter(AnyOf(F("pk"), [unit.pk for unit in units])).update(
        status=to_status, location=to_location,
        status_since=Case(When(~Q(status=to_status), then=Value(occurred_at)), default=F("status_since")),
    )
    for unit in units:
        if unit.status != to_status:
            unit.status_since = occurred_at
        unit.status, unit.location = to_status, to_location
        unit.location_id = to_location.pk if to_location else None  # a Unit's own descriptor did it already
    return movement_ids


# The columns of a unit's movement that differ from one unit to the next (the rest is the same for
# every unit of a `move_units` call), with their PostgreSQL types.
_PER_UNIT = {"hospital_id": "bigint", "product_id": "bigint", "unit_id": "bigint", "lot": "text",
             "from_location_id": "bigint", "from_status": "text", "idempotency_key": "text"}
_SHARED = {"kind": "text", "quantity": "integer", "to_location_id": "bigint", "to_status": "text",
           "from_owner": "text", "to_owner": "text", "actor_user_id": "bigint", "actor_device_id": "bigint",
           "occurred_at": "timestamptz", "recorded_at": "timestamptz", "reason_code": "text", "note": "text",
           "document_type": "text", "document_id": "bigint"}


def _insert_unit_movements(
    units: list[Unit | UnitRow], keys: list[str], *, kind: str, to_location_id: int | None, to_status: str,
    occurred_at: datetime.datetime, reason_code: str, note: str, document: tuple[str, int],
    actor_user_id: int | None, actor_device_id: int | None, unless: QuerySet | None = None,
) -> list[int]:
    """One movement per unit, in one INSERT, or none when `unless` finds a row. On PostgreSQL an
    INSERT … SELECT FROM unnest(…) of one array per column that varies: building hundreds of
    Movement objects for `bulk_create` cost more than the database's work for a receiving station's
    batch. The same rows either way (the ledger's triggers run on each); checked by
    tests/inventory/test_move_units.py."""
    if len(keys) != len(units):
        raise ValueError("one idempotency key per unit")
    shared = {"kind": kind, "quantity": 1, "to_location_id": to_location_id, "to_status": to_status,
              "from_owner": "", "to_owner": "", "actor_user_id": actor_user_id, "actor_device_id": actor_device_id,
              "occurred_at": occurred_at, "recorded_at": timezone.now(), "reason_code": reason_code, "note": note,
              "document_type": document[0], "document_id": document[1]}
    if connection.vendor != "postgresql":
        if unless is not None and unless.exists():
            return []
        return [movement.pk for movement in Movement.objects.bulk_create([
            Movement(hospital_id=unit.hospital_id, product_id=unit.product_id, unit_id=unit.pk, lot=unit.lot,
                     from_location_id=unit.location_id, from_status=unit.status, idempotency_key=key, **shared)
            for unit, key in zip(units, keys, strict=True)
        ])]
    per_unit = {
        "hospital_id": [unit.hospital_id for unit in units], "product_id": [unit.product_id for unit in units],
        "unit_id": [unit.pk for unit in units], "lot": [unit.lot for unit in units],
        "from_location_id": [unit.location_id for unit in units], "from_status": [unit.status for unit in units],
        "idempotency_key": keys,
    }
    columns = [*_PER_UNIT, *_SHARED]
    values = [f"row.{name}" for name in _PER_UNIT] + [f"%s::{sql_type}" for sql_type in _SHARED.values()]
    arrays = ", ".join(f"%s::{sql_type}[]" for sql_type in _PER_UNIT.values())
    condition, condition_params = "", ()
    if unless is not None:
        unless_sql, condition_params = unless.query.sql_with_params()
        condition = f"WHERE NOT EXISTS ({unless_sql}) "
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Movement._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} "  # names above
            f"FROM unnest({arrays}) WITH ORDINALITY AS row({', '.join(_PER_UNIT)}, position) {condition}"
            "ORDER BY row.position RETURNING id",
            [*(shared[name] for name in _SHARED),
             *((int_array if sql_type == "bigint" else text_array)(per_unit[name]) for name, sql_type in _PER_UNIT.items()),
             *condition_params],
        )
        return [row[0] for row in cursor.fetchall()]


def fifo_draw(balance: LotBalance, quantity: int) -> list[LayerDraw]:
    """The layers `quantity` of `balance` would come from, oldest receipt first. `balance` is locked
    by the caller; a shortfall is refused as INSUFFICIENT_STOCK."""
    draws, left = [], quantity
    for layer in LotCostLayer.objects.filter(balance=balance, quantity__gt=0).order_by(*FIFO):
        take = min(left, layer.quantity)
        draws.append(LayerDraw(layer.receipt_id, take, layer.unit_cost, layer.is_gift))
        left -= take
        if not left:
            return draws
    raise Refused(
        Refusal.INSUFFICIENT_STOCK, lot=balance.lot, location=balance.location, available=quantity - left,
        requested=quantity,
    )


def move_lot(
    *, product: Product, lot: str, quantity: int, source: LotBalance | None, to_location: Location | None,
    kind: str, actor: Actor, idempotency_key: str, document: tuple[str, int],
    new_balance_defaults: dict | None = None, layers: list[LayerDraw] | None = None,
    occurred_at: datetime.datetime | None = None, reason_code: str = "", note: str = "",
) -> Movement:
    """Move `quantity` of a lot out of `source` (locked by the caller) and/or into `to_location`,
    with its cost layers.

    `layers` says which layers move: by default those `fifo_draw` picks from `source`. With no
    source and no layers the movement brings new quantity in (a receipt, a stocktake surplus) and
    opens a layer of its own at `new_balance_defaults["unit_cost"]` (gift when
    `new_balance_defaults["is_gift"]`), or else at the lot's last known cost.
    `new_balance_defaults` also gives the expiry and owner of a balance created at `to_location`.

    The decrements are F() updates guarded by CHECK constraints, so stock can never go negative
    even if a caller forgot to lock; the caller checks first to give a clear refusal.
    """
    defaults = new_balance_defaults or {}
    occurred_at = occurred_at or timezone.now()
    refuse_closed_period(hospital_id=product.hospital_id, moment=occurred_at)
    if source is not None:
        refuse_if_frozen(kind, {source.location_id})
        refuse_if_held(kind, document, source=source, quantity=quantity)
        refuse_if_recalled(kind, to_location, product_id=product.pk, lot=lot)
        if source.quantity < quantity:
            raise Refused(
                Refusal.INSUFFICIENT_STOCK, lot=lot, location=source.location, available=source.quantity,
                requested=quantity,
            )
        if layers is None:
            layers = fifo_draw(source, quantity)
    movement = Movement.objects.create(
        hospital_id=product.hospital_id, kind=kind, product=product, lot=lot, quantity=quantity,
        from_location_id=source.location_id if source else None, to_location=to_location,
        occurred_at=occurred_at, reason_code=reason_code, note=note,
        document_type=document[0], document_id=document[1], idempotency_key=idempotency_key,
        **actor.movement_fields(),
    )
    if layers is None:
        cost = defaults["unit_cost"] if "unit_cost" in defaults else _last_known_cost(product, lot)
        layers = [LayerDraw(movement.pk, quantity, cost, defaults.get("is_gift", False))]
    if sum(draw.quantity for draw in layers) != quantity:
        raise ValueError(f"the layers moved ({layers}) do not add up to the quantity moved ({quantity})")
    LotMovementLayer.objects.bulk_create([
        LotMovementLayer(movement=movement, receipt_id=draw.receipt_id, quantity=draw.quantity,
                         unit_cost=draw.unit_cost, is_gift=draw.is_gift)
        for draw in layers
    ])
    if source is not None:
        LotBalance.objects.filter(pk=source.pk).update(quantity=F("quantity") - quantity)
        for draw in layers:
            drawn = LotCostLayer.objects.filter(balance=source, receipt_id=draw.receipt_id).update(
                quantity=F("quantity") - draw.quantity
            )
            if drawn != 1:
                raise Refused(Refusal.INSUFFICIENT_STOCK, lot=lot, location=source.location, available=0,
                              requested=draw.quantity)
        _cost_from_first_layer(source.pk)
        source.refresh_from_db(fields=["quantity", "unit_cost"])
    if to_location is not None:
        template = source or LotBalance(expiry=defaults.get("expiry"), owner=defaults.get("owner", Owner.HOSPITAL))
        target, _ = LotBalance.objects.select_for_update().get_or_create(
            product=product, lot=lot, location=to_location,
            defaults={
                "hospital_id": product.hospital_id, "expiry": template.expiry, "owner": template.owner,
                "unit_cost": layers[0].unit_cost, "quantity": 0,
            },
        )
        LotBalance.objects.filter(pk=target.pk).update(quantity=F("quantity") + quantity)
        for draw in layers:
            layer, _ = LotCostLayer.objects.get_or_create(
                balance=target, receipt_id=draw.receipt_id,
                defaults={"unit_cost": draw.unit_cost, "is_gift": draw.is_gift, "quantity": 0},
            )
            LotCostLayer.objects.filter(pk=layer.pk).update(quantity=F("quantity") + draw.quantity)
        _cost_from_first_layer(target.pk)
    return movement


def _last_known_cost(product: Product, lot: str) -> Decimal:
    """The cost of the lot's most recent receipt (what a found surplus is valued at), else 0."""
    last = LotCostLayer.objects.filter(balance__product=product, balance__lot=lot).order_by(
        F("receipt_id").desc(nulls_last=True)
    ).values_list("unit_cost", flat=True).first()
    return last if last is not None else Decimal("0")


def _cost_from_first_layer(balance_pk: int) -> None:
    """Keep LotBalance.unit_cost the cost of the layer drawn next (unchanged once the lot is used up)."""
    first = LotCostLayer.objects.filter(balance_id=balance_pk, quantity__gt=0).order_by(*FIFO).values("unit_cost")[:1]
    LotBalance.objects.filter(pk=balance_pk).update(unit_cost=Coalesce(Subquery(first), F("unit_cost")))


def change_unit_owner(
    *, unit: Unit, to_owner: str, actor: Actor, idempotency_key: str, document: tuple[str, int],
    occurred_at: datetime.datetime | None = None, note: str = "",
) -> Movement:
    """Record a change of owner (consignment unit bought at use, or handed back at refund)."""
    occurred_at = occurred_at or timezone.now()
    refuse_closed_period(hospital_id=unit.hospital_id, moment=occurred_at)
    movement = owner_change(unit, to_owner=to_owner, actor=actor, idempotency_key=idempotency_key,
                            document=document, occurred_at=occurred_at, note=note)
    movement.save(force_insert=True)
    unit.owner = to_owner
    unit.save(update_fields=["owner"])
    return movement


def hand_over_unit(
    *, unit: Unit, to_product: Product, to_location: Location, actor: Actor, idempotency_key: str,
    document: tuple[str, int], occurred_at: datetime.datetime,
) -> tuple[Movement, Movement]:
    """The one place a unit crosses hospitals (an alliance transfer received, services/transfers.py):
    an ALLIANCE_OUT movement in the sender's books (out of where it is), then the unit becomes the
    receiver's (`to_product`, of the receiving hospital: its own catalog entry for the same item)
    and an ALLIANCE_IN movement in the receiver's books puts it at `to_location`. Same moment, same
    cost (the unit keeps its `unit_cost`). `unit` is locked by the caller."""
    out = move_unit(
        unit=unit, kind=Movement.Kind.ALLIANCE_OUT, to_status=unit.status, to_location=None, actor=actor,
        idempotency_key=f"{idempotency_key}:out", document=document, occurred_at=occurred_at,
    )
    unit.hospital_id, unit.product = to_product.hospital_id, to_product
    unit.save(update_fields=["hospital", "product"])
    received = move_unit(
        unit=unit, kind=Movement.Kind.ALLIANCE_IN, to_status=to_location.holds_units_as, to_location=to_location,
        actor=actor, idempotency_key=f"{idempotency_key}:in", document=document, occurred_at=occurred_at,
    )
    return out, received


def hand_over_lot(
    *, source: LotBalance, quantity: int, layers: list[LayerDraw], to_product: Product, to_location: Location,
    actor: Actor, idempotency_key: str, document: tuple[str, int], occurred_at: datetime.datetime,
) -> tuple[Movement, list[Movement]]:
    """`hand_over_unit` for a lot quantity: one ALLIANCE_OUT movement drawing exactly `layers` from
    `source` (in the sender's books, locked by the caller), then one ALLIANCE_IN movement per
    (cost, gift) of those layers into `to_location` in the receiver's books, each opening a cost
    layer of its own at that cost — the value that left one hospital is the value that entered the other."""
    out = move_lot(
        product=source.product, lot=source.lot, quantity=quantity, source=source, to_location=None,
        kind=Movement.Kind.ALLIANCE_OUT, actor=actor, idempotency_key=f"{idempotency_key}:out", document=document,
        layers=layers, occurred_at=occurred_at,
    )
    groups: dict[tuple[Decimal, bool], int] = {}
    for draw in layers:
        groups[(draw.unit_cost, draw.is_gift)] = groups.get((draw.unit_cost, draw.is_gift), 0) + draw.quantity
    received = [
        move_lot(
            product=to_product, lot=source.lot, quantity=group_quantity, source=None, to_location=to_location,
            kind=Movement.Kind.ALLIANCE_IN, actor=actor, idempotency_key=f"{idempotency_key}:in:{index}",
            document=document, occurred_at=occurred_at,
            new_balance_defaults={"unit_cost": cost, "is_gift": gift, "expiry": source.expiry, "owner": source.owner},
        )
        for index, ((cost, gift), group_quantity) in enumerate(groups.items())
    ]
    return out, received
