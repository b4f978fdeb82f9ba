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


def ledger_fold(hospital: Hospital, end: datetime.datetime, since: ClosedPeriod | None) -> list[FoldRow]:
    """Balances at `end` per product × location × lot × owner (rows whose quantity and value are
    both 0 are left out): `since`'s snapshot plus the movements from its end to `end`, or the
    whole ledger before `end` when `since` is None."""
    movement, unit, lot = Movement._meta.db_table, Unit._meta.db_table, LotBalance._meta.db_table
    layer, balance = LotMovementLayer._meta.db_table, PeriodBalance._meta.db_table
    owner_change = Movement.Kind.OWNER_CHANGE.value
    unit_owner = f"""COALESCE((SELECT oc.from_owner FROM {movement} oc
        WHERE oc.unit_id = m.unit_id AND oc.kind = '{owner_change}'
          AND (oc.occurred_at > m.occurred_at OR (oc.occurred_at = m.occurred_at AND oc.id > m.id))
        ORDER BY oc.occurred_at, oc.id LIMIT 1), u.owner)"""
    value = f"""CASE WHEN m.unit_id IS NOT NULL THEN u.unit_cost
        ELSE (SELECT COALESCE(SUM(l.quantity * l.unit_cost), 0) FROM {layer} l WHERE l.movement_id = m.id) END"""

    def side(place: str, owner_field: str, sign: str) -> str:
        owner = f"""CASE WHEN m.unit_id IS NULL THEN COALESCE(b.owner, '')
            WHEN m.kind = '{owner_change}' THEN m.{owner_field} ELSE {unit_owner} END"""
        return f"""
            SELECT m.product_id, m.{place} AS location_id, m.lot, {owner} AS owner,
                   {sign}m.quantity AS quantity, {sign}({value}) AS value
              FROM {movement} m
              LEFT JOIN {unit} u ON u.id = m.unit_id
              LEFT JOIN {lot} b ON m.unit_id IS NULL AND b.product_id = m.product_id AND b.lot = m.lot
                               AND b.location_id = m.{place}
             WHERE m.hospital_id = %s AND m.occurred_at >= %s AND m.occurred_at < %s AND m.{place} IS NOT NULL"""

    since_end = since.ends_at if since else datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
    params = [hospital.pk, since_end, end, hospital.pk, since_end, end]
    opening = ""
    if since is not None:
        opening = f"""SELECT product_id, location_id, lot, owner, quantity, value FROM {balance}
                       WHERE period_id = %s UNION ALL"""
        params = [since.pk, *params]
    sql = f"""
        SELECT product_id, location_id, lot, owner, SUM(quantity), SUM(value) FROM (
            {opening}
            {side("to_location_id", "to_owner", "")}
            UNION ALL
            {side("from_location_id", "from_owner", "-")}
        ) moves
        GROUP BY product_id, location_id, lot, owner
        HAVING SUM(quantity) <> 0 OR SUM(value) <> 0
        ORDER BY product_id, location_id, lot, owner
    """  # table, column and kind names come from the code; every value is a parameter
    params = [connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime.datetime) else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            FoldRow(product, location, lot_number, owner, int(quantity), Decimal(value or 0).quantize(Decimal("0.01")))
            for product, location, lot_number, owner, quantity, value in cursor.fetchall()
        ]
