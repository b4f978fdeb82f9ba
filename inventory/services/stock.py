"""Moving stock that is already in the hospital: put away, transfer, return to supplier, scrap,
release from quarantine.

One function per document kind, all built on `_execute_order`: validate, lock (units by primary
key, then lot balances by primary key), collect every problem before refusing, then write one
StockOrder and one movement per unit or lot line — all or nothing, once per idempotency key.
`transfer_units_each` is the one exception to all or nothing: a receiving station's batch of
scans moves every unit that can move and reports the others, with the same checks
(`transfer_locked_units_each` when the station's read of its units has locked them).

Stock in a quarantine location (隔离区) is held for a quality decision: it can be returned to the
supplier or scrapped, but it goes back into use only by `release_from_quarantine` — an SPD
operator's or administrator's decision with a reason, recorded as QUARANTINE_RELEASE movements —
never by an ordinary transfer or put-away (refused with QUARANTINE_RELEASE_REQUIRED).
"""
import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    Hospital,
    Location,
    LotBalance,
    Movement,
    Product,
    Role,
    StockOrder,
    Supplier,
    Unit,
    UnitStatus,
)
from inventory.services.dated_entry import lot_history_problem, refuse_bad_moment, unit_history_problems
from inventory.services.expensing import expense_arrival
from inventory.services.idempotency import run_once
from inventory.services.ledger import (
    UnitRow,
    expiry_lock_problem,
    held_lot_problem,
    held_unit_problems,
    move_lot,
    move_unit,
    move_units,
    quarantine_problem,
    status_label,
    transition_problem,
)
from inventory.validators import personal_id_problems

MOVABLE_STATUSES = frozenset({UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET})


@dataclass(frozen=True)
class LotQuantity:
    """A quantity of one lot of a lot-tracked product, taken from one location."""

    product: Product
    lot: str
    quantity: int
    from_location: Location


@dataclass(frozen=True)
class _OrderSpec:
    kind: str
    movement_kind: str
    unit_status: str | None  # None: the destination location decides (IN_STOCK or IN_CABINET)
    to_location: Location | None = None
    supplier: Supplier | None = None
    reason_code: str = ""
    note: str = ""
    alliance_dispatch: bool = False  # the dispatch of an alliance transfer: the one move into ALLIANCE-TRANSIT

    @property
    def releases_quarantine(self) -> bool:
        return self.kind == StockOrder.Kind.QUARANTINE_RELEASE

    @cached_property
    def target_status(self) -> str:
        """The status the units have after the move (read once per order, not once per unit)."""
        return self.unit_status or self.to_location.holds_units_as

    @property
    def stays_in_stock(self) -> bool:
        """A move between two locations (put away, transfer, release), not out of the hospital."""
        return self.unit_status is None


def put_away(
    *, actor: Actor, hospital: Hospital, units: list[Unit], to_location: Location, idempotency_key: str,
    from_location: Location | None = None, occurred_at: datetime.datetime | None = None,
) -> StockOrder:
    """Shelve accepted units (ACCEPTED → IN_STOCK, or IN_CABINET when put straight into a cabinet)."""
    spec = _OrderSpec(StockOrder.Kind.PUTAWAY, Movement.Kind.PUTAWAY, None, to_location=to_location)
    return _execute_order(
        actor=actor, hospital=hospital, spec=spec, units=units, lots=[], from_location=from_location,
        idempotency_key=idempotency_key, occurred_at=occurred_at,
    )


def transfer_stock(
    *, actor: Actor, hospital: Hospital, to_location: Location, idempotency_key: str, units: list[Unit] = (),
    lots: list[LotQuantity] = (), from_location: Location | None = None, note: str = "",
    occurred_at: datetime.datetime | None = None, alliance_dispatch: bool = False,
) -> StockOrder:
    """Move units and lot quantities to another location (a department store, a smart cabinet…).

    `from_location`, when given, is where the caller believes the units are (the scan was made
    there): a unit that has moved meanwhile is refused rather than silently moved again. The
    alliance in-transit location is neither left nor entered by a move (ALLIANCE_TRANSIT_LOCKED),
    except by an alliance transfer's dispatch (`alliance_dispatch`, services/transfers.py).
    """
    spec = _OrderSpec(StockOrder.Kind.TRANSFER, Movement.Kind.TRANSFER, None, to_location=to_location, note=note,
                      alliance_dispatch=alliance_dispatch)
    return _execute_order(
        actor=actor, hospital=hospital, spec=spec, units=list(units), lots=list(lots),
        from_location=from_location, idempotency_key=idempotency_key, occurred_at=occurred_at,
    )


def return_to_supplier(
    *, actor: Actor, hospital: Hospital, supplier: Supplier, reason_code: str, idempotency_key: str,
    units: list[Unit] = (), lots: list[LotQuantity] = (), note: str = "",
    occurred_at: datetime.datetime | None = None,
) -> StockOrder:
    """Send units or lot quantities back to the supplier that delivered them (退货); reason required."""
    spec = _OrderSpec(
        StockOrder.Kind.RETURN_TO_SUPPLIER, Movement.Kind.RETURN_TO_SUPPLIER, UnitStatus.RETURNED_TO_SUPPLIER,
        supplier=supplier, reason_code=reason_code, note=note,
    )
    return _execute_order(
        actor=actor, hospital=hospital, spec=spec, units=list(units), lots=list(lots), from_location=None,
        idempotency_key=idempotency_key, occurred_at=occurred_at,
    )


def scrap(
    *, actor: Actor, hospital: Hospital, reason_code: str, idempotency_key: str, units: list[Unit] = (),
    lots: list[LotQuantity] = (), note: str = "",
    occurred_at: datetime.datetime | None = None,
) -> StockOrder:
    """Write off damaged, contaminated or expired stock (报损); reason required."""
    spec = _OrderSpec(
        StockOrder.Kind.SCRAP, Movement.Kind.SCRAP, UnitStatus.SCRAPPED, reason_code=reason_code, note=note
    )
    return _execute_order(
        actor=actor, hospital=hospital, spec=spec, units=list(units), lots=list(lots), from_location=None,
        idempotency_key=idempotency_key, occurred_at=occurred_at,
    )


def release_from_quarantine(
    *, actor: Actor, hospital: Hospital, to_location: Location, reason_code: str, idempotency_key: str,
    units: list[Unit] = (), lots: list[LotQuantity] = (), note: str = "",
    occurred_at: datetime.datetime | None = None,
) -> StockOrder:
    """Release units and lot quantities held in quarantine back into stock at `to_location` (解除隔离).

    A quality decision, not a transfer: only an SPD operator or an administrator may take it (the
    people who decide acceptance of gifts and of stock), a reason code is required, and it is
    recorded as one QUARANTINE_RELEASE movement per unit or lot line — with the reason, the note
    and who decided — under a QUARANTINE_RELEASE stock order. Everything named must be in a
    quarantine location and the destination must not be one; expired stock stays locked. All or
    nothing, once per idempotency key. Lots keep their cost layers.
    """
    user = actor.user
    if user is None or not user.has_role(Role.ADMIN, Role.SPD_OPERATOR):
        raise Refused(Refusal.QUARANTINE_RELEASE_NOT_AUTHORISED)
    if not reason_code:
        raise Refused(Refusal.REASON_REQUIRED)
    if to_location.kind == Location.Kind.QUARANTINE:
        raise Refused(Refusal.RELEASE_INTO_QUARANTINE)
    spec = _OrderSpec(
        StockOrder.Kind.QUARANTINE_RELEASE, Movement.Kind.QUARANTINE_RELEASE, None, to_location=to_location,
        reason_code=reason_code, note=note,
    )
    return _execute_order(
        actor=actor, hospital=hospital, spec=spec, units=list(units), lots=list(lots), from_location=None,
        idempotency_key=idempotency_key, occurred_at=occurred_at,
    )


def _execute_order(
    *, actor: Actor, hospital: Hospital, spec: _OrderSpec, units: list[Unit], lots: list[LotQuantity],
    from_location: Location | None, idempotency_key: str, occurred_at: datetime.datetime | None = None,
) -> StockOrder:
    _refuse_bad_request(hospital, spec, units, lots, from_location)
    moment = refuse_bad_moment(hospital_id=hospital.pk, occurred_at=occurred_at)
    payload = {
        "kind": spec.kind, "to": spec.to_location.pk if spec.to_location else None,
        "supplier": spec.supplier.pk if spec.supplier else None, "reason": spec.reason_code, "note": spec.note,
        "from": from_location.pk if from_location else None, "units": sorted(unit.pk for unit in units),
        "lots": sorted((lot.product.pk, lot.lot, lot.quantity, lot.from_location.pk) for lot in lots),
        **({"occurred_at": occurred_at.isoformat()} if occurred_at else {}),
    }

    def perform() -> StockOrder:
        locked_units = _lock_units(units)
        balances = _lock_balances(lots, spec.to_location)
        today = timezone.localdate()
        problems = [p for unit in locked_units for p in _unit_problems(unit, spec, from_location, today)]
        problems += held_unit_problems(locked_units)
        problems += _lot_problems(lots, balances, spec.to_location)
        problems += _held_lot_problems(lots, balances)
        problems += _quarantine_lot_problems(spec, lots)
        problems += _expired_lot_problems(spec, balances)
        if occurred_at is not None:  # entered after the fact: the date must fit the ledger
            problems += unit_history_problems(locked_units, moment)
            problems += [problem for lot in lots if (problem := lot_history_problem(
                lot.product, lot.lot, lot.from_location, lot.quantity, moment))]
        if problems:
            raise Refused(problems)
        order = _create_order(actor=actor, hospital=hospital, spec=spec, occurred_at=occurred_at)
        document = (Movement.DocumentType.STOCK_ORDER, order.pk)
        common = {
            "actor": actor, "document": document, "occurred_at": order.occurred_at,
            "reason_code": spec.reason_code, "note": spec.note,
        }
        for unit in locked_units:
            move_unit(
                unit=unit, kind=spec.movement_kind, to_location=spec.to_location,
                to_status=spec.target_status,
                idempotency_key=f"{hospital.pk}:{idempotency_key}:unit:{unit.pk}", **common,
            )
        for index, lot in enumerate(lots):
            movement = move_lot(
                product=lot.product, lot=lot.lot, quantity=lot.quantity,
                source=balances[(lot.product.pk, lot.lot, lot.from_location.pk)], to_location=spec.to_location,
                kind=spec.movement_kind, idempotency_key=f"{hospital.pk}:{idempotency_key}:lot:{index}", **common,
            )
            if spec.stays_in_stock:
                expense_arrival(actor=actor, movement=movement)  # 科室领用即消耗: gauze arriving in a ward
        return order

    order, _performed = run_once(
        hospital=hospital, key=idempotency_key, operation=f"stock_order:{spec.kind}", payload=payload, perform=perform
    )
    return order


def transfer_units_each(
    *, actor: Actor, hospital: Hospital, to_location: Location, units: list[Unit], idempotency_key: str,
    note: str = "",
) -> tuple[StockOrder | None, list[list[Problem]]]:
    """Move every unit that can move to `to_location` in one TRANSFER order; say why each other cannot.

    Unlike `transfer_stock` (all or nothing), a unit that cannot move (already there, expired,
    used…) is reported and the others still move; the checks are the same. `units` may name a
    unit more than once, as a scanner reads it twice: its first mention moves it, a later one is
    checked as the unit then stands (ALREADY_AT_LOCATION). Returns the order (None when nothing
    moved) and, for each entry of `units` in order, its problems (empty: it moved). A request-wide
    problem (inactive location…) is raised as `Refused`. Once per idempotency key: a replay
    returns the first order, and reports as refused the units it did not move.
    """
    return _transfer_each(actor=actor, hospital=hospital, to_location=to_location, units=units,
                          idempotency_key=idempotency_key, note=note, lock=_lock_units)


def transfer_locked_units_each(
    *, actor: Actor, hospital: Hospital, to_location: Location, units: list[Unit | UnitRow], idempotency_key: str,
    note: str = "",
) -> tuple[StockOrder | None, list[list[Problem]]]:
    """`transfer_units_each` of units the caller has locked (`select_for_update()`, in primary-key
    order) and read with their location in that query, in this transaction: a receiving station's
    batch finds its units and locks them in one read, as plain rows (`UnitRow`). The same checks,
    writes and answers."""
    return _transfer_each(actor=actor, hospital=hospital, to_location=to_location, units=units,
                          idempotency_key=idempotency_key, note=note,
                          lock=lambda distinct: sorted(distinct, key=lambda unit: unit.pk))


def _transfer_each(
    *, actor: Actor, hospital: Hospital, to_location: Location, units: list[Unit | UnitRow], idempotency_key: str,
    note: str, lock: Callable[[list[Unit | UnitRow]], list[Unit | UnitRow]],
) -> tuple[StockOrder | None, list[list[Problem]]]:
    spec = _OrderSpec(StockOrder.Kind.TRANSFER, Movement.Kind.TRANSFER, None, to_location=to_location, note=note)
    distinct = list({unit.pk: unit for unit in units}.values())
    _refuse_bad_request(hospital, spec, distinct, [], None)
    payload = {"kind": spec.kind, "each": True, "to": to_location.pk, "note": note,
               "units": sorted(unit.pk for unit in distinct)}
    locked: dict[int, Unit | UnitRow] = {}
    first_problems: dict[int, list[Problem]] = {}
    today = timezone.localdate()

    def perform() -> StockOrder:
        locked.update((unit.pk, unit) for unit in lock(distinct))
        first_problems.update((pk, _unit_problems(unit, spec, None, today)) for pk, unit in locked.items())
        movable = [unit for pk, unit in locked.items() if not first_problems[pk]]
        if not movable:
            raise _NothingToMove([problem for problems in first_problems.values() for problem in problems])
        order = _create_order(actor=actor, hospital=hospital, spec=spec)
        move_units(
            units=movable, kind=spec.movement_kind, to_status=to_location.holds_units_as, to_location=to_location,
            actor=actor, idempotency_keys=[f"{hospital.pk}:{idempotency_key}:unit:{unit.pk}" for unit in movable],
            document=(Movement.DocumentType.STOCK_ORDER, order.pk), occurred_at=order.occurred_at, note=note,
        )
        return order

    with transaction.atomic():
        try:
            # The record is written after the work (one statement less): the units are locked first, so a
            # second request with this key waits for the first, then finds its units moved (or refused)
            # and replays the first order — `_NothingToMove` looks the record up too.
            order, performed = run_once(
                hospital=hospital, key=idempotency_key, operation=f"stock_order:{spec.kind}:each", payload=payload,
                perform=perform, record_first=False,
            )
        except _NothingToMove:
            order, performed = None, True
        if not performed:  # the first order's answers alone, whether or not this request's work ran first
            locked.clear()
            moved = set(
                Movement.objects.filter(document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk)
                .values_list("unit_id", flat=True)
            )
            replayed_refusal = [Problem(Refusal.IDEMPOTENCY_CONFLICT, {"key": idempotency_key})]
            first_problems.update((unit.pk, [] if unit.pk in moved else replayed_refusal) for unit in distinct)
    return order, _problems_in_order(units, spec, locked, first_problems, today)


class _NothingToMove(Refused):
    """Every unit of a `transfer_units_each` was refused: no order, and the idempotency key stays free.
    A refusal, so that `run_once` first looks for the key's record: a request that finds its units
    already moved by an earlier one with the same key replays that order."""


def _problems_in_order(
    units: list[Unit | UnitRow], spec: _OrderSpec, locked: dict[int, Unit | UnitRow],
    first_problems: dict[int, list[Problem]], today: datetime.date,
) -> list[list[Problem]]:
    seen: set[int] = set()
    problems = []
    for unit in units:
        if unit.pk not in first_problems:
            problems.append([Problem(Refusal.NOT_FOUND, {"what": "unit"}, unit.pk)])
        elif unit.pk in seen and unit.pk in locked:
            problems.append(_unit_problems(locked[unit.pk], spec, None, today))
        else:
            problems.append(first_problems[unit.pk])
        seen.add(unit.pk)
    return problems


def _lock_units(units: list[Unit]) -> list[Unit]:
    return list(
        Unit.objects.select_for_update(of=("self",)).select_related("location")
        .filter(pk__in=[unit.pk for unit in units]).order_by("pk")
    )


def _create_order(
    *, actor: Actor, hospital: Hospital, spec: _OrderSpec, occurred_at: datetime.datetime | None = None
) -> StockOrder:
    return StockOrder.objects.create(
        hospital=hospital, kind=spec.kind, to_location=spec.to_location, supplier=spec.supplier,
        reason_code=spec.reason_code, note=spec.note, created_by=actor.user, created_by_device=actor.device,
        occurred_at=occurred_at or timezone.now(),
    )


def _refuse_bad_request(
    hospital: Hospital, spec: _OrderSpec, units: list[Unit | UnitRow], lots: list[LotQuantity], from_location: Location | None
) -> None:
    problems = personal_id_problems(note=spec.note, reason_code=spec.reason_code or "")
    if not units and not lots:
        problems.append(Problem(Refusal.NOTHING_SCANNED))
    if spec.kind in (StockOrder.Kind.RETURN_TO_SUPPLIER, StockOrder.Kind.SCRAP) and not spec.reason_code:
        problems.append(Problem(Refusal.REASON_REQUIRED))
    locations = [spec.to_location, from_location, *(lot.from_location for lot in lots)]
    if any(location is not None and location.hospital_id != hospital.pk for location in locations):
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "location"}))
    problems += [Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": f"{lot.product} {lot.lot}", "location": lot.from_location})
                 for lot in lots if lot.from_location.is_alliance_transit]
    if from_location is not None and from_location.is_alliance_transit:
        problems.append(Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": _("Stock"), "location": from_location}))
    if spec.to_location is not None and spec.to_location.is_alliance_transit and not spec.alliance_dispatch:
        problems.append(Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": _("Stock"), "location": spec.to_location}))
    if spec.to_location is not None and not spec.to_location.is_active:
        problems.append(Problem(Refusal.LOCATION_INACTIVE, {"location": spec.to_location}))
    if any(unit.hospital_id != hospital.pk for unit in units):
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "unit"}))
    for lot in lots:
        if lot.product.hospital_id != hospital.pk:
            problems.append(Problem(Refusal.NOT_FOUND, {"what": "product"}))
        if lot.quantity < 1:
            problems.append(Problem(Refusal.QUANTITY_INVALID))
    named = Counter(unit.pk for unit in units)
    problems += [Problem(Refusal.UNIT_NAMED_TWICE, {"unit": unit}) for unit in units if named.pop(unit.pk, 1) > 1]
    if problems:
        raise Refused(problems)


def _lock_balances(
    lots: list[LotQuantity], to_location: Location | None
) -> dict[tuple[int, str, int], LotBalance]:
    """Lock every balance the order touches, sources and destinations, in primary-key order, so that
    two orders moving one lot in opposite directions cannot deadlock; return the source balances.

    Missing destination balances are created first (at zero, rolled back with a refused order)."""
    if not lots:
        return {}
    keys = {(lot.product.pk, lot.lot, lot.from_location.pk) for lot in lots}
    products, lot_numbers = {key[0] for key in keys}, {key[1] for key in keys}
    locations = {key[2] for key in keys}
    if to_location is not None:
        for source in LotBalance.objects.filter(product_id__in=products, lot__in=lot_numbers, location_id__in=locations):
            if (source.product_id, source.lot, source.location_id) in keys:
                LotBalance.objects.get_or_create(
                    product_id=source.product_id, lot=source.lot, location=to_location,
                    defaults={"hospital_id": source.hospital_id, "expiry": source.expiry, "owner": source.owner,
                              "unit_cost": source.unit_cost, "quantity": 0},
                )
        locations.add(to_location.pk)
    locked = LotBalance.objects.select_for_update().filter(
        product_id__in=products, lot__in=lot_numbers, location_id__in=locations
    ).order_by("pk")
    found = {(b.product_id, b.lot, b.location_id): b for b in locked}
    return {key: found[key] for key in keys if key in found}


def _unit_problems(
    unit: Unit | UnitRow, spec: _OrderSpec, from_location: Location | None, today: datetime.date
) -> list[Problem]:
    """Why `unit` (locked) may not make this move, `today` being the local date (read once per order)."""
    target_status = spec.target_status
    if from_location is not None and unit.location_id != from_location.pk:
        return [Problem(Refusal.UNIT_NOT_AT_LOCATION, {"unit": unit.serial, "location": from_location}, unit.pk)]
    if spec.to_location is not None and unit.location_id == spec.to_location.pk and unit.status == target_status:
        return [Problem(Refusal.ALREADY_AT_LOCATION, {"unit": unit.serial, "location": spec.to_location}, unit.pk)]
    if spec.supplier is not None and unit.supplier_id != spec.supplier.pk:
        return [Problem(Refusal.WRONG_SUPPLIER, {"unit": unit.serial, "supplier": unit.supplier}, unit.pk)]
    if spec.stays_in_stock:
        # Moving keeps a unit in stock: only stock moves (a used unit comes back by a refund, a
        # taken one by a put-back), an expired one is locked where it is, and a quarantined one
        # leaves only by a release.
        if problem := quarantine_problem(unit, releasing=spec.releases_quarantine):
            return [problem]
        if problem := expiry_lock_problem(unit, today):
            return [problem]
        if unit.status not in MOVABLE_STATUSES:
            return [Problem(Refusal.ILLEGAL_TRANSITION, {
                "unit": unit.serial, "current": status_label(unit.status), "target": UnitStatus(target_status).label,
                "from_status": unit.status, "to_status": str(target_status),
            }, unit.pk)]
    problem = transition_problem(unit, target_status)
    return [problem] if problem else []


def _held_lot_problems(lots: list[LotQuantity], balances: dict[tuple[int, str, int], LotBalance]) -> list[Problem]:
    """Lot quantities an alliance transfer holds: at its in-transit location, or reserved for it."""
    requested: dict[tuple[int, str, int], int] = {}
    for lot in lots:
        key = (lot.product.pk, lot.lot, lot.from_location.pk)
        requested[key] = requested.get(key, 0) + lot.quantity
    return [problem for key, quantity in requested.items()
            if key in balances and balances[key].quantity >= quantity
            and (problem := held_lot_problem(balances[key], quantity))]


def _expired_lot_problems(spec: _OrderSpec, balances: dict[tuple[int, str, int], LotBalance]) -> list[Problem]:
    """Expired lots are locked like expired units: returned or scrapped, never moved on."""
    if not spec.stays_in_stock:
        return []
    today = timezone.localdate()
    return [
        Problem(Refusal.LOT_EXPIRED_LOCKED, {"lot": balance.lot, "expiry": balance.expiry})
        for balance in sorted(balances.values(), key=lambda balance: balance.pk)
        if balance.expiry is not None and balance.expiry < today
    ]


def _quarantine_lot_problems(spec: _OrderSpec, lots: list[LotQuantity]) -> list[Problem]:
    """The lot lines of a move that would take stock out of quarantine without a release (or
    release stock that is not in quarantine)."""
    if not spec.stays_in_stock:
        return []
    problems = []
    for lot in lots:
        in_quarantine = lot.from_location.kind == Location.Kind.QUARANTINE
        if in_quarantine != spec.releases_quarantine:
            refusal = Refusal.NOT_IN_QUARANTINE if spec.releases_quarantine else Refusal.QUARANTINE_RELEASE_REQUIRED
            problems.append(Problem(refusal, {"item": f"{lot.product} {lot.lot}", "location": lot.from_location}))
    return problems


def _lot_problems(
    lots: list[LotQuantity], balances: dict[tuple[int, str, int], LotBalance], to_location: Location | None
) -> list[Problem]:
    requested: dict[tuple[int, str, int], int] = {}
    for lot in lots:
        key = (lot.product.pk, lot.lot, lot.from_location.pk)
        requested[key] = requested.get(key, 0) + lot.quantity
    problems = [
        Problem(Refusal.ALREADY_AT_LOCATION, {"unit": f"{lot.product} {lot.lot}", "location": to_location})
        for lot in lots
        if to_location is not None and lot.from_location.pk == to_location.pk
    ]
    for lot in lots:
        key = (lot.product.pk, lot.lot, lot.from_location.pk)
        available = balances[key].quantity if key in balances else 0
        total = requested.pop(key, 0)
        if total > available:
            problems.append(
                Problem(
                    Refusal.INSUFFICIENT_STOCK,
                    {"lot": lot.lot, "location": lot.from_location, "available": available, "requested": total},
                )
            )
    return problems
