"""Par levels (基数) and replenishment (主动配送): what each department store and smart cabinet needs.

    suggested = target − (on hand + in transit to it + open requisitions for it), rounded up to
    the product's purchase unit (a whole box; `units_of_measure.round_up_to_unit`), for every
    par level where that is above zero.

- on hand: units IN_STOCK / IN_CABINET there and lot balances there, expired stock not counted
  (the same count as the BELOW_PAR alert);
- in transit: dispatched on a requisition to that location and neither received nor recorded
  short or damaged yet;
- open requisitions: submitted, approved or being picked for that location and not dispatched
  yet (nor cancelled).

`compute_suggestions` is set-based: one INSERT … SELECT over the par levels joined with three
grouped aggregates, whatever the number of locations and products. It replaces the hospital's
OPEN suggestions; those turned into a requisition or dismissed stay as they were.

`propose_par_levels` looks at the last N weeks of use at each location (CONSUME and department
expense movements out of it) and proposes minimum = ⌈p95 daily use × lead days⌉ and target =
⌈p95 daily use × cover days⌉ where that differs from the par level in force. A proposal is only a
proposal: nothing changes until a person accepts it.
"""
import datetime
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from inventory.errors import Refusal, Refused
from inventory.models import (
    Hospital,
    Location,
    Movement,
    ParLevel,
    ParLevelProposal,
    Product,
    ReplenishmentSuggestion,
    Requisition,
    RequisitionLine,
    User,
)

# Locations replenishment serves.
REPLENISHED_KINDS = (Location.Kind.DEPARTMENT_STORE, Location.Kind.SMART_CABINET)
# Locations a par level may be kept for (the warehouse's own minimum only raises BELOW_PAR).
PAR_LEVEL_KINDS = (*REPLENISHED_KINDS, Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.OPERATING_ROOM)
# Movements that use stock up at a location. DEPARTMENT_EXPENSE (科室领用即消耗) is named as text: it
# is matched once that kind exists.
USE_KINDS = (Movement.Kind.CONSUME, "DEPARTMENT_EXPENSE")
OPEN_REQUISITION = (Requisition.Status.SUBMITTED, Requisition.Status.APPROVED, Requisition.Status.PICKING)
ON_HAND_STATUSES = ("IN_STOCK", "IN_CABINET")


# --- par levels -----------------------------------------------------------------------------------


def _whole(value: object, field: str, *, required: bool) -> int | None:
    if value is None or value == "":
        if required:
            raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
    try:
        number = int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field) from None
    if number < 0 or number > 10**9:
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
    return number


def _check_levels(minimum: int, target: int | None, maximum: int | None) -> None:
    ceiling = maximum if maximum is not None else math.inf
    if (target is not None and not minimum <= target <= ceiling) or minimum > ceiling:
        field = "target" if target is not None and target < minimum else "maximum"
        raise Refused(Refusal.PAR_LEVEL_INVALID, field=field, minimum=minimum, target=target if target is not None else "—",
                      maximum=maximum if maximum is not None else "—")


def checked_par_level(
    *, location: Location, product: Product, minimum: object, target: object = None, maximum: object = None,
) -> tuple[int, int | None, int | None]:
    """The levels as whole numbers, or Refused when `save_par_level` would refuse them (whole numbers,
    minimum ≤ target ≤ maximum, a location that holds par levels, the hospital's own product)."""
    levels = (_whole(minimum, "minimum", required=True), _whole(target, "target", required=False),
              _whole(maximum, "maximum", required=False))
    _check_levels(*levels)
    if location.kind not in PAR_LEVEL_KINDS:
        raise Refused(Refusal.PAR_LEVEL_LOCATION_INVALID, location=location.name)
    if product.hospital_id != location.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="product")
    return levels


def save_par_level(
    *, user: User, location: Location, product: Product, minimum: object, target: object = None,
    maximum: object = None, par_level: ParLevel | None = None, now: datetime.datetime | None = None,
) -> ParLevel:
    """Create (or, given `par_level`, change) the par level of `product` at `location`, recording who
    and when; the change history is kept by the database (ParLevelChange). minimum ≤ target ≤ maximum.

    A par level moved to another location or product loses its open suggestions (computed for the
    old pair); on PostgreSQL its decided ones follow it (their foreign key to it cascades)."""
    minimum_value, target_value, maximum_value = checked_par_level(location=location, product=product, minimum=minimum,
                                                                   target=target, maximum=maximum)
    now = now or timezone.now()
    with transaction.atomic():
        if par_level is None:
            if ParLevel.objects.filter(location=location, product=product).exists():
                raise Refused(Refusal.PAR_LEVEL_EXISTS, location=location.name, product=product.name)
            par_level = ParLevel(location=location, product=product)
        else:
            par_level = ParLevel.objects.select_for_update().get(pk=par_level.pk)
            clash = ParLevel.objects.filter(location=location, product=product).exclude(pk=par_level.pk)
            if clash.exists():
                raise Refused(Refusal.PAR_LEVEL_EXISTS, location=location.name, product=product.name)
            if (par_level.location_id, par_level.product_id) != (location.pk, product.pk):
                par_level.suggestions.filter(status=ReplenishmentSuggestion.Status.OPEN).delete()
            par_level.location, par_level.product = location, product
        par_level.minimum, par_level.target, par_level.maximum = minimum_value, target_value, maximum_value
        par_level.updated_at, par_level.updated_by = now, user
        par_level.save()
    return par_level


def delete_par_level(*, par_level: ParLevel, user: User) -> None:
    """Remove a par level (its history keeps the last snapshot and who deleted it)."""
    with transaction.atomic():
        ParLevel.objects.filter(pk=par_level.pk).delete()


# --- suggestions ----------------------------------------------------------------------------------


@dataclass
class ReplenishmentResult:
    suggestions: int = 0
    proposals: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _packaging_join() -> tuple[str, str]:
    """The SQL that rounds a shortfall up to the product's purchase unit, as
    `units_of_measure.round_up_to_unit` does: (join, multiple expression). A product without a
    purchase unit rounds to its base unit (multiple 1)."""
    return (
        "LEFT JOIN inventory_packagingunit pu ON pu.product_id = lv.product_id AND pu.is_purchase_unit = %(yes)s",
        "COALESCE(pu.factor, 1)",
    )


def suggestions_sql() -> str:
    """The one statement that computes every suggestion of a hospital (parameters: see `compute_suggestions`).

    Portable SQL (PostgreSQL and the embedded SQLite): CTEs, grouped aggregates and left joins."""
    join, multiple = _packaging_join()
    kinds = ", ".join(f"'{kind}'" for kind in REPLENISHED_KINDS)
    on_hand_statuses = ", ".join(f"'{status}'" for status in ON_HAND_STATUSES)
    open_statuses = ", ".join(f"'{status}'" for status in OPEN_REQUISITION)
    flowing = ", ".join(f"'{status}'" for status in (*OPEN_REQUISITION, Requisition.Status.DISPATCHED))
    # Only the replenished places can have a level to join: the stock of the others (the central
    # warehouse's, a third of the hospital's) is not aggregated at all.
    return f"""
        WITH replenished AS (
            SELECT id FROM inventory_location
            WHERE hospital_id = %(hospital)s AND is_active = %(yes)s AND kind IN ({kinds})
        ),
        levels AS (
            SELECT p.id AS par_level_id, p.location_id, p.product_id, p.minimum,
                   COALESCE(p.target, p.minimum) AS target
            FROM inventory_parlevel p
            JOIN replenished l ON l.id = p.location_id
            JOIN inventory_product pr ON pr.id = p.product_id
            WHERE pr.is_active = %(yes)s
        ),
        stock AS (
            SELECT location_id, product_id, SUM(n) AS n FROM (
                SELECT u.location_id, u.product_id, COUNT(*) AS n
                FROM inventory_unit u
                WHERE u.hospital_id = %(hospital)s AND u.location_id IN (SELECT id FROM replenished)
                  AND u.status IN ({on_hand_statuses}) AND (u.expiry IS NULL OR u.expiry >= %(today)s)
                GROUP BY u.location_id, u.product_id
                UNION ALL
                SELECT b.location_id, b.product_id, SUM(b.quantity) AS n
                FROM inventory_lotbalance b
                WHERE b.hospital_id = %(hospital)s AND b.location_id IN (SELECT id FROM replenished)
                  AND (b.expiry IS NULL OR b.expiry >= %(today)s)
                GROUP BY b.location_id, b.product_id
            ) held
            GROUP BY location_id, product_id
        ),
        flows AS (
            SELECT r.location_id, rl.product_id,
                   SUM(rl.dispatched_quantity - rl.received_quantity - rl.discrepancy_quantity) AS in_transit,
                   SUM(CASE WHEN r.status IN ({open_statuses})
                            THEN COALESCE(rl.approved_quantity, rl.requested_quantity)
                                 - rl.cancelled_quantity - rl.dispatched_quantity
                            ELSE 0 END) AS on_order
            FROM inventory_requisitionline rl
            JOIN inventory_requisition r ON r.id = rl.requisition_id
            WHERE r.hospital_id = %(hospital)s AND r.status IN ({flowing})
            GROUP BY r.location_id, rl.product_id
        ),
        needs AS (
            SELECT lv.par_level_id, lv.location_id, lv.product_id, lv.minimum, lv.target,
                   COALESCE(s.n, 0) AS on_hand, COALESCE(f.in_transit, 0) AS in_transit,
                   COALESCE(f.on_order, 0) AS on_order,
                   CAST(lv.target - COALESCE(s.n, 0) - COALESCE(f.in_transit, 0) - COALESCE(f.on_order, 0)
                        AS BIGINT) AS shortfall,
                   {multiple} AS multiple
            FROM levels lv
            LEFT JOIN stock s ON s.location_id = lv.location_id AND s.product_id = lv.product_id
            LEFT JOIN flows f ON f.location_id = lv.location_id AND f.product_id = lv.product_id
            {join}
        )
        INSERT INTO inventory_replenishmentsuggestion
            (hospital_id, location_id, product_id, par_level_id, minimum, target, on_hand, in_transit, on_order,
             quantity, status, computed_at)
        SELECT %(hospital)s, location_id, product_id, par_level_id, minimum, target, on_hand, in_transit, on_order,
               ((shortfall + multiple - 1) / multiple) * multiple, 'OPEN', %(now)s  -- whole units: integer division
        FROM needs
        WHERE shortfall > 0
    """


def compute_suggestions(*, hospital: Hospital, now: datetime.datetime | None = None) -> int:
    """Replace the hospital's OPEN suggestions by what its par levels need now; returns how many."""
    now = now or timezone.now()
    params = {"hospital": hospital.pk, "yes": True, "today": timezone.localdate(now), "now": now}
    with transaction.atomic():
        # One recompute at a time per hospital: the hospital row is the lock.
        Hospital.objects.select_for_update().filter(pk=hospital.pk).first()
        with connection.cursor() as cursor:
            # One statement, not the ORM's collector (which reads every row into Python first: 0.5 s for
            # 19,000 suggestions). Nothing refers to an OPEN suggestion: planning or requisitioning one
            # takes it out of OPEN, so the purchase-plan source's SET_NULL has nothing to do here.
            cursor.execute(
                f"DELETE FROM {ReplenishmentSuggestion._meta.db_table} WHERE hospital_id = %s AND status = %s",
                [hospital.pk, ReplenishmentSuggestion.Status.OPEN],
            )
            cursor.execute(suggestions_sql(), params)
            if cursor.rowcount >= 0:
                return cursor.rowcount
        # SQLite gives no row count for an INSERT that starts WITH: count what it wrote, under the lock.
        return ReplenishmentSuggestion.objects.filter(hospital=hospital, status=ReplenishmentSuggestion.Status.OPEN).count()


def dismiss_suggestion(
    *, suggestion: ReplenishmentSuggestion, user: User, now: datetime.datetime | None = None
) -> ReplenishmentSuggestion:
    """A person decides this suggestion is not to be delivered (until the next recompute)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ReplenishmentSuggestion.objects.select_for_update().get(pk=suggestion.pk)
        if locked.status != ReplenishmentSuggestion.Status.OPEN:
            raise Refused(Refusal.SUGGESTION_DECIDED, status=locked.get_status_display())
        locked.status, locked.decided_at, locked.decided_by = ReplenishmentSuggestion.Status.DISMISSED, now, user
        locked.save(update_fields=["status", "decided_at", "decided_by"])
    return locked


def requisition_suggestions(
    *, suggestions: Iterable[ReplenishmentSuggestion], user: User, now: datetime.datetime | None = None
) -> list[Requisition]:
    """Turn OPEN suggestions into approved replenishment requisitions (source REPLENISHMENT), one per
    location, which the warehouse then picks like any other. Refused whole if one is no longer open."""
    now = now or timezone.now()
    pks = sorted({suggestion.pk for suggestion in suggestions})
    created: list[Requisition] = []
    with transaction.atomic():
        locked = list(
            ReplenishmentSuggestion.objects.select_for_update(of=("self",)).filter(pk__in=pks).order_by("pk")
            .select_related("location__department", "product")
        )
        for suggestion in locked:
            if suggestion.status != ReplenishmentSuggestion.Status.OPEN:
                raise Refused(Refusal.SUGGESTION_DECIDED, status=suggestion.get_status_display())
        by_location: dict[int, list[ReplenishmentSuggestion]] = defaultdict(list)
        for suggestion in locked:
            by_location[suggestion.location_id].append(suggestion)
        for group in by_location.values():
            location = group[0].location
            requisition = Requisition.objects.create(
                hospital_id=location.hospital_id, department=location.department, location=location,
                number=f"new-{group[0].pk}", source=Requisition.Source.REPLENISHMENT,
                status=Requisition.Status.APPROVED, created_by=user, created_at=now, submitted_at=now,
                submitted_by=user, decided_at=now, decided_by=user, updated_at=now,
            )
            requisition.number = f"BH{timezone.localtime(now):%Y%m%d}-{requisition.pk:06d}"
            requisition.save(update_fields=["number"])
            for suggestion in group:
                line = RequisitionLine.objects.create(
                    requisition=requisition, product=suggestion.product, requested_quantity=suggestion.quantity,
                    approved_quantity=suggestion.quantity,
                )
                suggestion.status = ReplenishmentSuggestion.Status.REQUISITIONED
                suggestion.requisition_line, suggestion.decided_at, suggestion.decided_by = line, now, user
            ReplenishmentSuggestion.objects.bulk_update(group, ["status", "requisition_line", "decided_at", "decided_by"])
            created.append(requisition)
    return created


# --- proposed par levels --------------------------------------------------------------------------


def use_weeks() -> int:
    return int(getattr(settings, "SPD_PAR_USE_WEEKS", 8))


def lead_days() -> int:
    return int(getattr(settings, "SPD_PAR_LEAD_DAYS", 2))


def cover_days() -> int:
    return max(int(getattr(settings, "SPD_PAR_COVER_DAYS", 7)), lead_days())


def p95(values: list[int], days: int) -> Decimal:
    """The 95th percentile (nearest rank) of `days` daily figures, `values` being the non-zero ones."""
    if days <= 0:
        return Decimal(0)
    ordered = sorted([0] * max(days - len(values), 0) + list(values))
    return Decimal(ordered[math.ceil(Decimal("0.95") * len(ordered)) - 1])


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def propose_par_levels(
    *, hospital: Hospital, now: datetime.datetime | None = None, weeks: int | None = None,
    lead: int | None = None, cover: int | None = None,
) -> int:
    """Propose new par levels from use; replaces the hospital's PENDING proposals. Returns how many.

    The daily use of every (location, product) comes from one grouped query of the window's use
    movements; a day without use counts as 0. A par level that was used at all gets a minimum of
    at least 1. No proposal where the result equals the level in force."""
    now = now or timezone.now()
    weeks, lead, cover = weeks or use_weeks(), lead or lead_days(), cover or cover_days()
    cover = max(cover, lead)
    days = weeks * 7
    end = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - datetime.timedelta(days=days)
    levels = {
        (level.location_id, level.product_id): level
        for level in ParLevel.objects.filter(location__hospital=hospital, location__kind__in=REPLENISHED_KINDS,
                                             location__is_active=True)
    }
    daily: dict[tuple[int, int], list[int]] = defaultdict(list)
    rows = (
        Movement.objects.filter(
            hospital=hospital, kind__in=USE_KINDS, occurred_at__gte=start, occurred_at__lt=end,
            from_location__kind__in=REPLENISHED_KINDS,
        )
        .annotate(day=TruncDate("occurred_at")).values("from_location_id", "product_id", "day")
        .annotate(used=Sum("quantity")).order_by()
    )
    for row in rows:
        daily[(row["from_location_id"], row["product_id"])].append(row["used"])
    proposals = []
    for key, used in daily.items():
        level = levels.get(key)
        if level is None:
            continue
        rate = p95(used, days)
        minimum = max(_ceil(rate * lead), 1)
        target = max(_ceil(rate * cover), minimum)
        if (minimum, target) == (level.minimum, level.replenish_to):
            continue
        proposals.append(ParLevelProposal(
            hospital=hospital, par_level=level, current_minimum=level.minimum, current_target=level.target,
            proposed_minimum=minimum, proposed_target=target, p95_daily_use=rate, weeks=weeks, lead_days=lead,
            cover_days=cover, computed_at=now,
        ))
    with transaction.atomic():
        ParLevelProposal.objects.filter(hospital=hospital, status=ParLevelProposal.Status.PENDING).delete()
        ParLevelProposal.objects.bulk_create(proposals, batch_size=1000)
    return len(proposals)


def accept_proposal(*, proposal: ParLevelProposal, user: User, now: datetime.datetime | None = None) -> ParLevel:
    """Apply a proposed par level: its minimum and target become the par level's (a maximum below the
    new target is raised to it), recorded as the accepting person's change."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ParLevelProposal.objects.select_for_update().get(pk=proposal.pk)
        if locked.status != ParLevelProposal.Status.PENDING:
            raise Refused(Refusal.PROPOSAL_DECIDED, status=locked.get_status_display())
        level = ParLevel.objects.select_for_update().get(pk=locked.par_level_id)
        level.minimum, level.target = locked.proposed_minimum, locked.proposed_target
        if level.maximum is not None and level.maximum < level.target:
            level.maximum = level.target
        level.updated_at, level.updated_by = now, user
        level.save()
        locked.status, locked.decided_at, locked.decided_by = ParLevelProposal.Status.ACCEPTED, now, user
        locked.save(update_fields=["status", "decided_at", "decided_by"])
    return level


def dismiss_proposal(*, proposal: ParLevelProposal, user: User, now: datetime.datetime | None = None) -> ParLevelProposal:
    """Keep the par level as it is; the proposal is closed (a later recompute may propose again)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ParLevelProposal.objects.select_for_update().get(pk=proposal.pk)
        if locked.status != ParLevelProposal.Status.PENDING:
            raise Refused(Refusal.PROPOSAL_DECIDED, status=locked.get_status_display())
        locked.status, locked.decided_at, locked.decided_by = ParLevelProposal.Status.DISMISSED, now, user
        locked.save(update_fields=["status", "decided_at", "decided_by"])
    return locked


def replenish(*, hospital: Hospital, now: datetime.datetime | None = None) -> ReplenishmentResult:
    """The periodic job's and the button's work for one hospital: suggestions, then proposals."""
    now = now or timezone.now()
    return ReplenishmentResult(
        suggestions=compute_suggestions(hospital=hospital, now=now),
        proposals=propose_par_levels(hospital=hospital, now=now),
    )
