"""Read paths of the monthly close (月结): the closed months, and the ledger folded from the last
closing snapshot.

`ledger_fold` is the one place that turns the ledger into balances per product × location × lot ×
owner with their value. It starts from a closed month's snapshot (`PeriodBalance`) and reads only
the movements after it, so its cost is that of the movements since the last close, not of the
ledger's history. Without a snapshot it folds the whole ledger (what the snapshot must equal).

A movement adds to the location it enters and takes from the one it leaves. Its value: a unit's
cost, or the cost layers a lot movement moved (`LotMovementLayer`). Its owner: a lot's balance
owner; for a unit, its owner at that moment — the `from_owner` of the unit's next change of owner
(OWNER_CHANGE) after the movement, else the unit's owner now; an OWNER_CHANGE itself takes from
`from_owner` and adds to `to_owner` at the same location.
"""
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from inventory.models import ClosedPeriod, Hospital, LotBalance, LotMovementLayer, Movement, PeriodBalance, Unit


@dataclass(frozen=True)
class FoldRow:
    product_id: int
    location_id: int
    lot: str
    owner: str
    quantity: int
    value: Decimal


def closed_periods(hospital: Hospital) -> QuerySet[ClosedPeriod]:
    return ClosedPeriod.objects.filter(hospital=hospital).select_related("closed_by").order_by("-month")


def closed_through(hospital_id: int) -> datetime.datetime | None:
    """The end of the hospital's latest closed month: nothing dated before it may be written."""
    latest = ClosedPeriod.objects.filter(hospital_id=hospital_id).order_by("-ends_at").values_list("ends_at", flat=True)
    return latest.first()


def snapshot_before(hospital_id: int, moment: datetime.datetime | None) -> ClosedPeriod | None:
    """The latest closed month ending at or before `moment` (any, when `moment` is None)."""
    periods = ClosedPeriod.objects.filter(hospital_id=hospital_id)
    if moment is not None:
        periods = periods.filter(ends_at__lte=moment)
    return periods.order_by("-ends_at").first()


def months_with_flows(hospital_id: int, after: datetime.datetime | None, end: datetime.datetime) -> list[ClosedPeriod]:
    """The closed months from `after` on (the end of a period's opening snapshot; None: from the first)
    that end by `end` and have their flows stored (`PeriodFlow`), in order and without a gap: the
    last such stretch (months closed before the flows were stored come first, and are left out)."""
    periods = ClosedPeriod.objects.filter(hospital_id=hospital_id, ends_at__lte=end)
    if after is not None:
        periods = periods.filter(starts_at__gte=after)
    return _last_stretch(periods.only("pk", "starts_at", "ends_at", "flows_stored"),
                         lambda period: period.flows_stored)


def months_with_totals(hospital_id: int, start: datetime.datetime, end: datetime.datetime) -> list[ClosedPeriod]:
    """The closed months overlapping [start, end) and ending by `end` whose totals are stored, in order and
    without a gap: the last such stretch (a month closed before the totals were stored breaks it)."""
    return _last_stretch(
        ClosedPeriod.objects.filter(hospital_id=hospital_id, ends_at__gt=start, ends_at__lte=end),
        lambda period: period.received_quantity is not None and period.expensed_quantity is not None)


def _last_stretch(periods: QuerySet[ClosedPeriod], stored: Callable[[ClosedPeriod], bool]) -> list[ClosedPeriod]:
    """The last run of consecutive months of `periods` (in order of their start) for which `stored`
    holds: a month without it, or a gap between two months, starts the stretch again."""
    stretch: list[ClosedPeriod] = []
    for period in periods.order_by("starts_at"):
        if not stored(period):
            stretch = []
        elif stretch and stretch[-1].ends_at != period.starts_at:
            stretch = [period]
        else:
            stretch.append(period)
    return stretch


def ledger_fold(hospital: Hospital, end: datetime.datetime, since: ClosedPeriod | None) -> list[FoldRow]:
    """Balances at `end` per product × location × lot × owner (rows whose quantity and value are
    both 0 are left out): `since`'s snapshot plus the movements from its end to `end`, or the
    whole ledger before `end` when `since` is None.

    One set-based statement (no subquery per movement):

    - `changes`: the hospital's changes of owner of units from `since` on (also after `end`: a later
      change names the owner a unit had before it), read through the partial index on them;
    - `owned`: a unit movement's owner is the `from_owner` of the unit's next change of owner, found
      with two window passes over the movements of the units that changed owner — numbering each of
      a unit's movements by the changes at or after it (latest first), a movement shares its number
      with the change that follows it; units that never changed owner since keep their owner now;
    - `costs`: a lot movement's value, its cost layers summed once per movement (a hash join);
    - each movement then counts twice, into the place it enters and out of the one it leaves.
    """
    movement, unit, lot = Movement._meta.db_table, Unit._meta.db_table, LotBalance._meta.db_table
    layer, balance = LotMovementLayer._meta.db_table, PeriodBalance._meta.db_table
    owner_change = Movement.Kind.OWNER_CHANGE.value

    def side(place: str, owner_field: str, sign: str) -> str:
        return f"""
            SELECT v.product_id, v.{place} AS location_id, v.lot,
                   CASE WHEN v.unit_id IS NULL THEN COALESCE(b.owner, '')
                        WHEN v.kind = '{owner_change}' THEN v.{owner_field}
                        ELSE v.unit_owner END AS owner,
                   {sign}v.quantity AS quantity, {sign}v.value AS value
              FROM valued v
              LEFT JOIN {lot} b ON v.unit_id IS NULL AND b.product_id = v.product_id AND b.lot = v.lot
                               AND b.location_id = v.{place}
             WHERE v.{place} IS NOT NULL"""

    since_end = since.ends_at if since else datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
    opening, opening_params = "", []
    if since is not None:
        opening = f"""SELECT product_id, location_id, lot, owner, quantity, value FROM {balance}
                       WHERE period_id = %s UNION ALL"""
        opening_params = [since.pk]
    sql = f"""
        WITH moves AS (
            SELECT m.id, m.kind, m.product_id, m.lot, m.unit_id, m.quantity, m.occurred_at, m.to_location_id,
                   m.from_location_id, m.to_owner, m.from_owner
              FROM {movement} m
             WHERE m.hospital_id = %s AND m.occurred_at >= %s AND m.occurred_at < %s
        ), changes AS (
            SELECT m.id, m.unit_id, m.occurred_at, m.from_owner FROM {movement} m
             WHERE m.hospital_id = %s AND m.kind = '{owner_change}' AND m.occurred_at >= %s
               AND m.unit_id IS NOT NULL
        ), numbered AS (
            SELECT n.id, n.unit_id, n.kind, n.from_owner,
                   SUM(CASE WHEN n.kind = '{owner_change}' THEN 1 ELSE 0 END) OVER (
                       PARTITION BY n.unit_id ORDER BY n.occurred_at DESC, n.id DESC) AS changes_after
              FROM (
                SELECT id, unit_id, kind, occurred_at, from_owner FROM moves
                 WHERE kind <> '{owner_change}' AND unit_id IN (SELECT unit_id FROM changes)
                UNION ALL
                SELECT id, unit_id, '{owner_change}', occurred_at, from_owner FROM changes
              ) n
        ), owned AS (
            SELECT id, MAX(CASE WHEN kind = '{owner_change}' THEN from_owner END) OVER (
                       PARTITION BY unit_id, changes_after) AS owner_then
              FROM numbered
        ), costs AS (
            SELECT l.movement_id, SUM(l.quantity * l.unit_cost) AS value
              FROM {layer} l JOIN moves ON moves.id = l.movement_id AND moves.unit_id IS NULL
             GROUP BY l.movement_id
        ), valued AS (
            SELECT moves.id, moves.kind, moves.product_id, moves.lot, moves.unit_id, moves.quantity,
                   moves.to_location_id, moves.from_location_id, moves.to_owner, moves.from_owner,
                   CASE WHEN moves.unit_id IS NOT NULL THEN u.unit_cost ELSE COALESCE(c.value, 0) END AS value,
                   COALESCE(o.owner_then, u.owner) AS unit_owner
              FROM moves
              LEFT JOIN {unit} u ON u.id = moves.unit_id
              LEFT JOIN owned o ON o.id = moves.id
              LEFT JOIN costs c ON c.movement_id = moves.id
        )
        SELECT product_id, location_id, lot, owner, SUM(quantity), SUM(value) FROM (
            {opening}
            {side("to_location_id", "to_owner", "")}
            UNION ALL
            {side("from_location_id", "from_owner", "-")}
        ) balances
        GROUP BY product_id, location_id, lot, owner
        HAVING SUM(quantity) <> 0 OR SUM(value) <> 0
        ORDER BY product_id, location_id, lot, owner
    """  # table, column and kind names come from the code; every value is a parameter
    params = [hospital.pk, since_end, end, hospital.pk, since_end, *opening_params]
    params = [connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime.datetime) else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            FoldRow(product, location, lot_number, owner, int(quantity), Decimal(value or 0).quantize(Decimal("0.01")))
            for product, location, lot_number, owner, quantity, value in cursor.fetchall()
        ]
