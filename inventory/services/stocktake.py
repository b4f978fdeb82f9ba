"""Stocktakes (盘点): count sessions, counts and recounts, approval that posts the differences.

The rules, each decided here and nowhere else:

- A session snapshots what the ledger expected at its locations at `snapshot_at` (folding the
  movements, not reading the balances), one line per unit and per lot balance.
- A count or a recount records what a person saw; when a line is counted, what the ledger then
  expected is worked out again (snapshot + the movements since), so stock that moved during an
  unfrozen count is not taken for a variance. With `freeze_outgoing` the stock services refuse any
  move out of the session's locations while it is COUNTING (`inventory.services.ledger`).
- A line whose variance reaches SPD_STOCKTAKE_RECOUNT_QUANTITY or SPD_STOCKTAKE_RECOUNT_VALUE must
  be recounted by someone other than its counter; the session is approved by someone who counted
  none of those lines.
- Approval is the only thing that changes a balance: one ADJUSTMENT per variance (reason FOUND,
  LOST, DAMAGED or DATA_ERROR), a TRANSFER for a unit found elsewhere than the ledger has it, all
  linked to the session (document STOCKTAKE). A missing consigned item also yields a
  `StocktakeFinding` for the supplier settlement. Two approvals at once: the session row is
  locked and its status checked, and each movement has a unique idempotency key, so exactly one
  posts.

Lock order: the session row, then units by primary key, then lot balances by primary key.
"""
import datetime
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    CabinetSession,
    Consumption,
    DeliveryNote,
    Department,
    Hospital,
    Location,
    LotBalance,
    LotCostLayer,
    Movement,
    Owner,
    Product,
    Role,
    StocktakeFinding,
    StocktakeLine,
    StocktakeSession,
    Unit,
    UnitStatus,
    User,
)
from inventory.selectors.scope import departments_of
from inventory.services.ledger import move_lot, move_unit
from inventory.services.stocktake_reports import store_variance_reports
from inventory.services.units_of_measure import to_base_quantity

Status = StocktakeSession.Status
Line = StocktakeLine
# Who may count: everyone who handles stock (a nurse only in her departments). Auditors only read.
COUNTERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE)
# Who may approve a session's adjustments: the people who answer for the books.
APPROVERS = (Role.ADMIN, Role.SPD_OPERATOR, Role.WAREHOUSE)
# Statuses of a unit that is (or should be) physically on a shelf.
SHELVED = (UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.EXPIRED)
OPEN = (Status.COUNTING, Status.SUBMITTED)


def recount_quantity_threshold() -> int:
    return int(settings.SPD_STOCKTAKE_RECOUNT_QUANTITY)


def recount_value_threshold() -> Decimal:
    return Decimal(str(settings.SPD_STOCKTAKE_RECOUNT_VALUE))


# --- what the close needs -------------------------------------------------------------------------


def open_sessions_in_period(*, hospital: Hospital, start: datetime.date, end: datetime.date) -> QuerySet:
    """The hospital's count sessions still open (COUNTING or SUBMITTED) whose snapshot falls on or
    before `end` (inclusive, in the hospital's time zone): each keeps the period from closing,
    since its adjustments are not posted yet. A session started before `start` and still open
    counts too — its approval would change stock the period's closing balance includes."""
    limit = timezone.make_aware(datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min))
    return StocktakeSession.objects.filter(hospital=hospital, status__in=OPEN, snapshot_at__lt=limit).order_by("pk")


# --- the ledger as of a moment --------------------------------------------------------------------


def expected_lots(
    *, location_ids: list[int], at: datetime.datetime, after: datetime.datetime | None = None,
    product: Product | None = None, lot: str = "",
) -> dict[tuple[int, str, int], int]:
    """(product, lot, location) → quantity the ledger has at `at`, folding every lot movement into
    or out of the locations (only those after `after` when given: the change since then)."""
    moves = Movement.objects.filter(unit__isnull=True, occurred_at__lte=at)
    if after is not None:
        moves = moves.filter(occurred_at__gt=after)
    if product is not None:
        moves = moves.filter(product=product)
    if lot:
        moves = moves.filter(lot=lot)
    totals: dict[tuple[int, str, int], int] = defaultdict(int)
    for row in moves.filter(to_location__in=location_ids).values("product", "lot", "to_location").annotate(
        total=Sum("quantity")
    ).order_by():
        totals[(row["product"], row["lot"], row["to_location"])] += row["total"]
    for row in moves.filter(from_location__in=location_ids).values("product", "lot", "from_location").annotate(
        total=Sum("quantity")
    ).order_by():
        totals[(row["product"], row["lot"], row["from_location"])] -= row["total"]
    return dict(totals)


def unit_positions(*, unit_ids: list[int] | None = None, location_ids: list[int] | None = None,
                   at: datetime.datetime) -> dict[int, tuple[int | None, str]]:
    """unit → (location, status) after its last movement at or before `at`, for the given units or
    for every unit that was ever moved into one of the locations."""
    last = Movement.objects.filter(unit=OuterRef("pk"), occurred_at__lte=at).order_by("-occurred_at", "-pk")
    units = Unit.objects.all()
    if unit_ids is not None:
        units = units.filter(pk__in=unit_ids)
    if location_ids is not None:
        units = units.filter(pk__in=Movement.objects.filter(unit__isnull=False, to_location__in=location_ids,
                                                            occurred_at__lte=at).values("unit"))
    rows = units.annotate(
        at_location=Subquery(last.values("to_location")[:1]), at_status=Subquery(last.values("to_status")[:1])
    ).values_list("pk", "at_location", "at_status")
    return {pk: (location, status) for pk, location, status in rows}


def _units_at(location_ids: list[int], at: datetime.datetime, product: Product | None, lot: str) -> dict[int, int]:
    """unit → location, for the units the ledger has on a shelf of `location_ids` at `at`."""
    positions = unit_positions(location_ids=location_ids, at=at)
    units = {pk: location for pk, (location, status) in positions.items()
             if location in location_ids and status in SHELVED}
    if product is not None or lot:
        filters = {"pk__in": list(units)}
        if product is not None:
            filters["product"] = product
        if lot:
            filters["lot"] = lot
        keep = set(Unit.objects.filter(**filters).values_list("pk", flat=True))
        units = {pk: location for pk, location in units.items() if pk in keep}
    return units


# --- starting a count -----------------------------------------------------------------------------


def _session_locations(locations: list[Location]) -> list[Location]:
    """The locations named and every location under them (a store's shelves), active ones only."""
    found = {location.pk: location for location in locations}
    frontier = list(found)
    while frontier:
        children = list(Location.objects.filter(parent__in=frontier, is_active=True).exclude(pk__in=found))
        found.update((child.pk, child) for child in children)
        frontier = [child.pk for child in children]
    return sorted(found.values(), key=lambda location: location.code)


def _require_counter(user: User, hospital: Hospital, locations: list[Location]) -> None:
    if not user.has_role(*COUNTERS):
        raise Refused(Refusal.NOT_ALLOWED, action="count stock")
    if user.hospital_id is not None and user.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="location")
    mine = departments_of(user)
    if mine is not None and any(location.department_id not in mine for location in locations):
        raise Refused(Refusal.NOT_FOUND, what="location")


def start_count(
    *, user: User, hospital: Hospital, locations: list[Location], product: Product | None = None, lot: str = "",
    blind: bool = True, freeze_outgoing: bool = False, note: str = "",
) -> StocktakeSession:
    """Open a static count of `locations` (and the locations under them), optionally of one product
    or one lot only, with its expected lines snapshotted from the ledger now."""
    problems = []
    if not locations:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": "locations: at least one location"}))
    if any(location.hospital_id != hospital.pk for location in locations) or (
        product is not None and product.hospital_id != hospital.pk
    ):
        raise Refused(Refusal.NOT_FOUND, what="product or location")
    if lot and product is None:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": "lot: a lot count names its product"}))
    # Stock on the road between members is counted by the receiver's scan, and adjusted by nobody.
    problems += [Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": _("Stock"), "location": location})
                 for location in locations if location.is_alliance_transit]
    if problems:
        raise Refused(problems)
    _require_counter(user, hospital, locations)
    everywhere = _session_locations(locations)
    with transaction.atomic():
        session = StocktakeSession.objects.create(
            hospital=hospital, kind=StocktakeSession.Kind.STATIC, product=product, lot=lot, blind=blind,
            freeze_outgoing=freeze_outgoing, note=note, created_by=user, snapshot_at=timezone.now(),
        )
        session.locations.set(everywhere)
        _snapshot_lines(session, [location.pk for location in everywhere], product, lot)
        return session


def _snapshot_lines(session: StocktakeSession, location_ids: list[int], product: Product | None, lot: str,
                    reason: str = Line.Reason.SNAPSHOT, only_units: set[int] | None = None,
                    only_lots: set[tuple[int, str, int]] | None = None) -> int:
    at = session.snapshot_at
    units = _units_at(location_ids, at, product, lot)
    if only_units is not None:
        units = {pk: location for pk, location in units.items() if pk in only_units}
    lines = [
        Line(session=session, reason=reason, location_id=location, product_id=unit.product_id, unit=unit,
             lot=unit.lot, expiry=unit.expiry, owner=unit.owner, unit_cost=unit.unit_cost, expected_quantity=1)
        for unit in Unit.objects.filter(pk__in=list(units)).order_by("pk")
        for location in [units[unit.pk]]
    ]
    lots = {key: quantity for key, quantity in expected_lots(location_ids=location_ids, at=at, product=product,
                                                             lot=lot).items() if quantity > 0}
    if only_lots is not None:
        lots = {key: quantity for key, quantity in lots.items() if key in only_lots}
    balances = {
        (balance.product_id, balance.lot, balance.location_id): balance
        for balance in LotBalance.objects.filter(location__in=location_ids, product__in={k[0] for k in lots})
    }
    for (product_id, lot_code, location_id), quantity in sorted(lots.items()):
        balance = balances.get((product_id, lot_code, location_id))
        lines.append(Line(
            session=session, reason=reason, location_id=location_id, product_id=product_id, lot=lot_code,
            expiry=balance.expiry if balance else None, owner=balance.owner if balance else Owner.HOSPITAL,
            unit_cost=balance.unit_cost if balance else Decimal("0"), expected_quantity=quantity,
        ))
    Line.objects.bulk_create(lines)
    return len(lines)


# --- counting -------------------------------------------------------------------------------------


def _locked_open_session(session: StocktakeSession, *statuses: str) -> StocktakeSession:
    locked = StocktakeSession.objects.select_for_update().get(pk=session.pk)
    if locked.status not in statuses:
        raise Refused(Refusal.STOCKTAKE_NOT_OPEN, session=locked.pk, status=locked.get_status_display())
    return locked


def _expected_at_count(line: Line, session: StocktakeSession, at: datetime.datetime) -> int:
    """What the ledger expected of the line when it was counted: the snapshot plus what moved since."""
    location_ids = list(session.locations.values_list("pk", flat=True))
    if line.unit_id is not None:
        location, status = unit_positions(unit_ids=[line.unit_id], at=at).get(line.unit_id, (None, ""))
        return int(location in location_ids and status in SHELVED)
    change = expected_lots(location_ids=[line.location_id], at=at, after=session.snapshot_at,
                           product=line.product, lot=line.lot)
    return line.expected_quantity + change.get((line.product_id, line.lot, line.location_id), 0)


def count_unit(
    *, session: StocktakeSession, user: User, unit: Unit, location: Location, quality: str = "", note: str = "",
) -> Line:
    """Record that `unit` was seen at `location` (a scan). A unit the snapshot did not expect there
    gets a line of its own (FOUND); a unit the ledger has elsewhere keeps where it was found, and
    its approval moves it there (TRANSFER), it does not adjust it."""
    if unit.hospital_id != session.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="unit")
    _check_quality(quality)
    with transaction.atomic():
        session = _locked_open_session(session, Status.COUNTING)
        _require_in_session(session, location)
        _require_counter(user, session.hospital, [location])
        if unit.status not in SHELVED and unit.status != UnitStatus.TAKEN:
            raise Refused(Refusal.STOCKTAKE_UNIT_NOT_COUNTABLE, unit=unit.serial, status=unit.get_status_display())
        now = timezone.now()
        line = Line.objects.filter(session=session, unit=unit).first()
        if line is None:
            line = Line(session=session, reason=Line.Reason.FOUND, location=location, product_id=unit.product_id,
                        unit=unit, lot=unit.lot, expiry=unit.expiry, owner=unit.owner, unit_cost=unit.unit_cost,
                        expected_quantity=0)
        line.counted_quantity, line.counted_by, line.counted_at = 1, user, now
        line.found_at = location if location.pk != line.location_id else None
        line.quality, line.note = quality or line.quality, note or line.note
        line.expected_at_count = _expected_at_count(line, session, now)
        line.save()
        return line


def count_lot(
    *, session: StocktakeSession, user: User, product: Product, lot: str, location: Location, quantity: int,
    packaging_unit: str = "", quality: str = "", note: str = "",
) -> Line:
    """Record the quantity of a lot counted at `location`, in any of the product's packaging units
    (converted to its base unit). The count replaces an earlier count of the line."""
    if product.hospital_id != session.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="product")
    if not lot:
        raise Refused(Refusal.LOT_MISSING)
    _check_quality(quality)
    base = _base_quantity(product, quantity, packaging_unit)
    with transaction.atomic():
        session = _locked_open_session(session, Status.COUNTING)
        _require_in_session(session, location)
        _require_counter(user, session.hospital, [location])
        now = timezone.now()
        line = Line.objects.filter(session=session, unit__isnull=True, product=product, lot=lot,
                                   location=location).first()
        if line is None:
            balance = LotBalance.objects.filter(product=product, lot=lot).order_by("-quantity").first()
            line = Line(session=session, reason=Line.Reason.FOUND, location=location, product=product, lot=lot,
                        expiry=balance.expiry if balance else None,
                        owner=balance.owner if balance else Owner.HOSPITAL,
                        unit_cost=balance.unit_cost if balance else Decimal("0"), expected_quantity=0)
        line.counted_quantity, line.counted_by, line.counted_at = base, user, now
        line.quality, line.note = quality or line.quality, note or line.note
        line.expected_at_count = _expected_at_count(line, session, now)
        line.save()
        return line


def confirm_line(*, line: Line, user: User, quality: str = "", note: str = "") -> Line:
    """A daily check's "as expected": the line is counted at what the ledger expects now."""
    _check_quality(quality)
    with transaction.atomic():
        session = _locked_open_session(line.session, Status.COUNTING)
        line = Line.objects.select_for_update().get(pk=line.pk)
        _require_counter(user, session.hospital, [line.location])
        now = timezone.now()
        line.expected_at_count = _expected_at_count(line, session, now)
        line.counted_quantity, line.counted_by, line.counted_at = line.expected_at_count, user, now
        line.found_at = None
        line.quality, line.note = quality or line.quality, note or line.note
        line.save()
        return line


def recount_line(*, line: Line, user: User, quantity: int, packaging_unit: str = "", note: str = "") -> Line:
    """Record a recount of a line that needs one, by someone other than its counter."""
    with transaction.atomic():
        session = _locked_open_session(line.session, *OPEN)
        line = Line.objects.select_for_update().get(pk=line.pk, session=session)
        _require_counter(user, session.hospital, [line.location])
        if line.counted_quantity is None:
            raise Refused(Refusal.STOCKTAKE_NOT_COUNTED, line=line.pk)
        if line.counted_by_id == user.pk:
            raise Refused(Refusal.STOCKTAKE_RECOUNT_BY_COUNTER, line=line.pk)
        if line.unit_id and quantity not in (0, 1):
            raise Refused(Refusal.UNIT_QUANTITY_NOT_ONE, quantity=quantity)
        base = quantity if line.unit_id else _base_quantity(line.product, quantity, packaging_unit)
        line.recount_quantity, line.recounted_by, line.recounted_at = base, user, timezone.now()
        line.note = note or line.note
        line.save()
        return line


def needs_recount(line: Line) -> bool:
    """Whether the counted variance reaches a threshold (quantity or value), so that someone else
    must count the line again before the session can be approved."""
    if line.counted_quantity is None:
        return False
    expected = line.expected_at_count if line.expected_at_count is not None else line.expected_quantity
    difference = abs(line.counted_quantity - expected)
    if not difference:
        return False
    return difference >= recount_quantity_threshold() or difference * line.unit_cost >= recount_value_threshold()


def submit(*, session: StocktakeSession, user: User) -> StocktakeSession:
    """End the counting: a line of a static count nobody scanned counts as 0 (not found); a daily
    check needs every line confirmed or counted. The freeze, if any, ends here."""
    with transaction.atomic():
        session = _locked_open_session(session, Status.COUNTING)
        _require_counter(user, session.hospital, list(session.locations.all()))
        uncounted = list(session.lines.filter(counted_quantity__isnull=True).select_related("product"))
        if uncounted and session.kind == StocktakeSession.Kind.DYNAMIC:
            raise Refused(Refusal.STOCKTAKE_LINES_UNCOUNTED, count=len(uncounted))
        now = timezone.now()
        for line in uncounted:
            line.expected_at_count = _expected_at_count(line, session, now)
            line.counted_quantity, line.counted_by, line.counted_at = 0, user, now
            line.save(update_fields=["expected_at_count", "counted_quantity", "counted_by", "counted_at"])
        session.status, session.submitted_by, session.submitted_at = Status.SUBMITTED, user, now
        session.summary = session_summary(session)
        session.save(update_fields=["status", "submitted_by", "submitted_at", "summary"])
        return session


def cancel(*, session: StocktakeSession, user: User) -> StocktakeSession:
    """Drop an open session: nothing is posted."""
    with transaction.atomic():
        session = _locked_open_session(session, *OPEN)
        _require_counter(user, session.hospital, list(session.locations.all()))
        session.status = Status.CANCELLED
        session.save(update_fields=["status"])
        return session


# --- approval -------------------------------------------------------------------------------------


def approve(*, session: StocktakeSession, user: User, reasons: dict[int, str] | None = None) -> StocktakeSession:
    """Post the session's differences and close it; exactly once, whoever asks at the same time.

    Refused (nothing posted): the session is not SUBMITTED (already approved → 409), a line over a
    threshold has no recount by another person, the approver counted or recounted such a line,
    a reason given for a line is unknown. `reasons` maps line id → FOUND/LOST/DAMAGED/DATA_ERROR;
    by default a surplus is FOUND, a shortfall LOST (DAMAGED when the line was noted damaged).
    The variance report (CSV, XLSX, PDF with their SHA-256) is stored once the posting is committed.
    """
    reasons = reasons or {}
    if not user.has_role(*APPROVERS):
        raise Refused(Refusal.NOT_ALLOWED, action="approve a stocktake")
    if user.hospital_id is not None and user.hospital_id != session.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="stocktake")
    bad = [Problem(Refusal.INVALID_REQUEST, {"detail": f"reasons[{pk}]: unknown reason {code!r}"})
           for pk, code in reasons.items() if code not in Line.Adjustment.values]
    if bad:
        raise Refused(bad)
    with transaction.atomic():
        session = _locked_open_session(session, Status.SUBMITTED)
        lines = list(session.lines.select_related("product", "location", "found_at", "unit").order_by("pk"))
        problems = []
        for line in lines:
            if needs_recount(line):
                if line.recount_quantity is None:
                    problems.append(Problem(Refusal.STOCKTAKE_RECOUNT_REQUIRED, {"line": line.pk, "item": _item(line)}))
                elif user.pk in (line.counted_by_id, line.recounted_by_id):
                    problems.append(Problem(Refusal.STOCKTAKE_APPROVE_OWN_VARIANCE, {"line": line.pk}))
        if problems:
            raise Refused(problems)
        actor = Actor(user=user)
        _post(session, lines, actor, reasons)
        session.status, session.approved_by, session.approved_at = Status.APPROVED, user, timezone.now()
        session.summary = session_summary(session)
        session.save(update_fields=["status", "approved_by", "approved_at", "summary"])
    return store_variance_reports(session)


def _post(session: StocktakeSession, lines: list[Line], actor: Actor, reasons: dict[int, str]) -> None:
    document = (Movement.DocumentType.STOCKTAKE, session.pk)
    unit_ids = sorted(line.unit_id for line in lines if line.unit_id)
    units = {unit.pk: unit for unit in Unit.objects.select_for_update(of=("self",)).select_related("location")
             .filter(pk__in=unit_ids).order_by("pk")}
    lot_lines = [line for line in lines if line.unit_id is None and line.variance]
    balance_keys = {(line.product_id, line.lot, line.location_id) for line in lot_lines}
    balances = {
        (balance.product_id, balance.lot, balance.location_id): balance
        for balance in LotBalance.objects.select_for_update().filter(
            product__in={key[0] for key in balance_keys}, location__in={key[2] for key in balance_keys}
        ).order_by("pk") if (balance.product_id, balance.lot, balance.location_id) in balance_keys
    }
    for line in lines:
        key = f"stocktake:{session.pk}:line:{line.pk}"
        if line.unit_id:
            movement = _post_unit(line, units[line.unit_id], actor, key, document, reasons.get(line.pk))
        else:
            movement = _post_lot(line, balances.get((line.product_id, line.lot, line.location_id)), actor, key,
                                 document, reasons.get(line.pk))
        if movement is not None:
            line.movement = movement
            line.adjustment_reason = movement.reason_code if movement.kind == Movement.Kind.ADJUSTMENT else ""
            line.save(update_fields=["movement", "adjustment_reason"])
            if movement.kind == Movement.Kind.ADJUSTMENT and movement.to_location_id is None \
                    and line.owner == Owner.SUPPLIER:
                _consignment_finding(session, line, units.get(line.unit_id), movement.quantity)


def _reason(line: Line, given: str | None, surplus: bool) -> str:
    if given:
        return given
    if surplus:
        return Line.Adjustment.FOUND
    return Line.Adjustment.DAMAGED if line.quality == Line.Quality.DAMAGED else Line.Adjustment.LOST


def _post_unit(line: Line, unit: Unit, actor: Actor, key: str, document: tuple, given: str | None) -> Movement | None:
    seen = line.final_count == 1
    where = line.found_at or line.location
    if Movement.objects.filter(unit=unit, occurred_at__gt=line.counted_at).exists():
        return None  # moved, used or returned since it was counted: the ledger knows better than the count
    if seen and unit.status == UnitStatus.EXPIRED:
        return None  # locked where it is; the variance report shows where it was found
    if seen and unit.status not in (*SHELVED, UnitStatus.TAKEN):
        return None
    if seen:
        if unit.location_id == where.pk and unit.status in SHELVED:
            return None
        if unit.location_id is not None and unit.status in SHELVED and unit.status != UnitStatus.EXPIRED:
            # Found in the wrong place: moved, not adjusted.
            return move_unit(unit=unit, kind=Movement.Kind.TRANSFER, to_status=where.holds_units_as, to_location=where,
                             actor=actor, idempotency_key=key, document=document,
                             note=f"stocktake {line.session_id}: found here")
        return move_unit(unit=unit, kind=Movement.Kind.ADJUSTMENT, to_status=where.holds_units_as, to_location=where,
                         actor=actor, idempotency_key=key, document=document,
                         reason_code=_reason(line, given, surplus=True))
    expected = line.expected_at_count if line.expected_at_count is not None else line.expected_quantity
    if not expected or unit.location_id != line.location_id or unit.status not in SHELVED:
        return None  # moved away or used since it was counted: the ledger already says it is not here
    return move_unit(unit=unit, kind=Movement.Kind.ADJUSTMENT, to_status=UnitStatus.SCRAPPED, to_location=None,
                     actor=actor, idempotency_key=key, document=document,
                     reason_code=_reason(line, given, surplus=False))


def _post_lot(line: Line, balance: LotBalance | None, actor: Actor, key: str, document: tuple,
              given: str | None) -> Movement | None:
    variance = line.variance
    if not variance:
        return None
    if variance > 0:
        return move_lot(
            product=line.product, lot=line.lot, quantity=variance, source=None, to_location=line.location,
            kind=Movement.Kind.ADJUSTMENT, actor=actor, idempotency_key=key, document=document,
            new_balance_defaults={"unit_cost": line.unit_cost, "expiry": line.expiry, "owner": line.owner},
            reason_code=_reason(line, given, surplus=True),
        )
    if balance is None:
        raise Refused(Refusal.INSUFFICIENT_STOCK, lot=line.lot, location=line.location, available=0,
                      requested=-variance)
    return move_lot(
        product=line.product, lot=line.lot, quantity=-variance, source=balance, to_location=None,
        kind=Movement.Kind.ADJUSTMENT, actor=actor, idempotency_key=key, document=document,
        reason_code=_reason(line, given, surplus=False),
    )


def _consignment_finding(session: StocktakeSession, line: Line, unit: Unit | None, quantity: int) -> None:
    """A consigned item counted missing is the supplier's: the hospital owes it at settlement."""
    if unit is not None:
        supplier_id = unit.supplier_id
    else:
        receipt = LotCostLayer.objects.filter(balance__product=line.product, balance__lot=line.lot,
                                              receipt__isnull=False).order_by("-receipt").values("receipt")[:1]
        note = Movement.objects.filter(pk__in=Subquery(receipt), document_type=Movement.DocumentType.DELIVERY_NOTE)
        supplier_id = DeliveryNote.objects.filter(pk__in=note.values("document_id")).values_list(
            "supplier", flat=True).first()
        if supplier_id is None:
            supplier_id = line.product.agreements.values_list("supplier", flat=True).first()
    if supplier_id is None:
        return
    StocktakeFinding.objects.create(
        session=session, line=line, hospital=session.hospital, supplier_id=supplier_id, product=line.product,
        unit=unit, lot=line.lot, quantity=quantity, amount=line.unit_cost * quantity,
    )


# --- the daily dynamic check ----------------------------------------------------------------------


def issued_not_used_days() -> int:
    return int(settings.SPD_STOCKTAKE_ISSUED_UNUSED_DAYS)


def use_above_usual_factor() -> Decimal:
    return Decimal(str(settings.SPD_STOCKTAKE_USE_FACTOR))


def build_daily_worklist(*, department: Department, day: datetime.date) -> StocktakeSession | None:
    """The department's daily check (动态盘点) for `day`, built once (again: the same session).

    Smart cabinets are counted by RFID: the session records each cabinet's last applied door-close
    reading. In the other locations it lists what moved that day; units issued to the department
    and still there after SPD_STOCKTAKE_ISSUED_UNUSED_DAYS; and the stock of products used more
    that day than SPD_STOCKTAKE_USE_FACTOR × the median day of the last four weeks. None when the
    department has no location.
    """
    existing = StocktakeSession.objects.filter(kind=StocktakeSession.Kind.DYNAMIC, department=department,
                                               work_date=day).first()
    if existing is not None:
        return existing
    locations = list(Location.objects.filter(department=department, is_active=True).order_by("code"))
    if not locations:
        return None
    cabinets = [location for location in locations if location.kind == Location.Kind.SMART_CABINET]
    stores = [location.pk for location in locations if location.kind != Location.Kind.SMART_CABINET]
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    end = start + datetime.timedelta(days=1)
    with transaction.atomic():
        session = StocktakeSession.objects.create(
            hospital=department.hospital, kind=StocktakeSession.Kind.DYNAMIC, department=department, work_date=day,
            blind=False, snapshot_at=min(timezone.now(), end), cabinet_readings=_cabinet_readings(cabinets),
        )
        session.locations.set(locations)
        if stores:
            _worklist_lines(session, stores, start, end)
        return session


def _cabinet_readings(cabinets: list[Location]) -> list[dict]:
    readings = []
    applied = (CabinetSession.Status.CLOSED, CabinetSession.Status.CLOSED_WITHOUT_OPEN)
    for cabinet in cabinets:
        last = CabinetSession.objects.filter(cabinet=cabinet, status__in=applied).order_by("-closed_at", "-pk").first()
        readings.append({
            "cabinet": cabinet.pk, "name": cabinet.name, "session": last.pk if last else None,
            "closed_at": last.closed_at.isoformat() if last and last.closed_at else None,
            "tags_seen": last.tags_seen if last else None,
            "unknown_tags": len(last.unknown_tags) if last else 0, "misplaced": len(last.misplaced) if last else 0,
            "in_cabinet": Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).count(),
        })
    return readings


def _worklist_lines(session: StocktakeSession, stores: list[int], start: datetime.datetime,
                    end: datetime.datetime) -> None:
    today = Movement.objects.filter(occurred_at__gte=start, occurred_at__lt=end).filter(
        Q(to_location__in=stores) | Q(from_location__in=stores))
    moved_units = set(today.filter(unit__isnull=False).values_list("unit", flat=True))
    moved_lots = {(product, lot, location)
                  for product, lot, to, source in today.filter(unit__isnull=True).values_list(
                      "product", "lot", "to_location", "from_location")
                  for location in (to, source) if location in stores}
    _snapshot_lines(session, stores, None, "", Line.Reason.MOVED_TODAY, only_units=moved_units, only_lots=moved_lots)
    listed = set(session.lines.filter(unit__isnull=False).values_list("unit", flat=True))
    cutoff = end - datetime.timedelta(days=issued_not_used_days())
    last_in = Movement.objects.filter(unit=OuterRef("pk"), to_location=OuterRef("location")).order_by("-occurred_at")
    idle = set(
        Unit.objects.filter(location__in=stores, status=UnitStatus.IN_STOCK).exclude(pk__in=listed)
        .annotate(arrived=Subquery(last_in.values("occurred_at")[:1])).filter(arrived__lt=cutoff)
        .values_list("pk", flat=True)
    )
    if idle:
        _snapshot_lines(session, stores, None, "", Line.Reason.ISSUED_NOT_USED, only_units=idle, only_lots=set())
    heavy = _products_used_above_usual(session.department, start, end)
    if heavy:
        listed = set(session.lines.filter(unit__isnull=False).values_list("unit", flat=True))
        listed_lots = set(session.lines.filter(unit__isnull=True).values_list("product", "lot", "location"))
        units = set(Unit.objects.filter(location__in=stores, product__in=heavy).exclude(pk__in=listed)
                    .values_list("pk", flat=True))
        lots = {(product, lot, location) for product, lot, location in LotBalance.objects.filter(
            location__in=stores, product__in=heavy, quantity__gt=0).values_list("product", "lot", "location")
            if (product, lot, location) not in listed_lots}
        _snapshot_lines(session, stores, None, "", Line.Reason.USE_ABOVE_USUAL, only_units=units, only_lots=lots)


def _products_used_above_usual(department: Department, start: datetime.datetime, end: datetime.datetime) -> set[int]:
    """Products the department used more of in [start, end) than the factor × its median day of the
    28 days before (a day without use counts as 0)."""
    uses = Consumption.objects.filter(department=department, occurred_at__gte=start - datetime.timedelta(days=28),
                                      occurred_at__lt=end)
    today = dict(uses.filter(occurred_at__gte=start).values("product").annotate(total=Sum("quantity"))
                 .values_list("product", "total").order_by())
    heavy = set()
    factor = use_above_usual_factor()
    for product_id, total in today.items():
        per_day = [0] * 28
        for occurred_at, quantity in uses.filter(product_id=product_id, occurred_at__lt=start).values_list(
                "occurred_at", "quantity"):
            index = (start - occurred_at).days
            if 0 <= index < 28:
                per_day[index] += quantity
        ordered = sorted(per_day)
        median = Decimal(ordered[13] + ordered[14]) / 2
        if total > factor * median:
            heavy.add(product_id)
    return heavy


def build_daily_worklists(*, day: datetime.date | None = None) -> dict:
    """Every department's daily check for `day` (today by default): the scheduled job."""
    day = day or timezone.localdate()
    built = 0
    for department in Department.objects.filter(locations__is_active=True).distinct().order_by("pk"):
        if build_daily_worklist(department=department, day=day) is not None:
            built += 1
    return {"day": day.isoformat(), "sessions": built}


# --- reading --------------------------------------------------------------------------------------


def _item(line: Line) -> str:
    return line.unit.serial if line.unit_id else f"{line.product.internal_code} {line.lot}"


def session_summary(session: StocktakeSession) -> dict:
    """Lines, lines counted, lines with a variance, accuracy (% of counted lines without variance)
    and the value of the variances (absolute and net)."""
    lines = list(session.lines.all())
    counted = [line for line in lines if line.final_count is not None]
    varied = [line for line in counted if line.variance or line.found_at_id]
    absolute = sum((abs(line.variance or 0) * line.unit_cost for line in counted), Decimal("0"))
    net = sum(((line.variance or 0) * line.unit_cost for line in counted), Decimal("0"))
    accuracy = round(100 * (len(counted) - len(varied)) / len(counted), 1) if counted else None
    return {"lines": len(lines), "counted": len(counted), "variances": len(varied), "accuracy": accuracy,
            "variance_value": str(absolute), "net_value": str(net)}


def _check_quality(quality: str) -> None:
    if quality and quality not in Line.Quality.values:
        raise Refused(Refusal.INVALID_REQUEST, detail=f"quality: unknown remark {quality!r}")


def _require_in_session(session: StocktakeSession, location: Location) -> None:
    if not session.locations.filter(pk=location.pk).exists():
        raise Refused(Refusal.STOCKTAKE_LOCATION_NOT_IN_SESSION, location=location, session=session.pk)


def _base_quantity(product: Product, quantity: int | Decimal, packaging_unit: str) -> int:
    """`quantity` in `packaging_unit` (the base unit when empty) as base units, exactly, or refused."""
    return to_base_quantity(product=product, quantity=quantity, unit=packaging_unit)


def location_history(*, location: Location) -> list[dict]:
    """The approved sessions that counted `location`, oldest first, with that location's accuracy
    (% of its lines without variance) and the value of its variances: the trend of one place."""
    by_session: dict[int, list[Line]] = defaultdict(list)
    for line in Line.objects.filter(session__status=Status.APPROVED, location=location).select_related("session"):
        by_session[line.session_id].append(line)
    history = []
    for lines in sorted(by_session.values(), key=lambda lines: (lines[0].session.approved_at, lines[0].session_id)):
        varied = [line for line in lines if line.variance or line.found_at_id]
        history.append({
            "session": lines[0].session_id, "approved_at": lines[0].session.approved_at, "lines": len(lines),
            "variances": len(varied), "accuracy": round(100 * (len(lines) - len(varied)) / len(lines), 1),
            "variance_value": sum((abs(line.variance or 0) * line.unit_cost for line in lines), Decimal("0")),
        })
    return history
