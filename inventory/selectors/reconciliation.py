"""Read paths of the 进销存 reconciliation: set-based reads over the ledger, the consumptions and
the HIS settlement lines of one hospital and one period.

Every function is one query, or two aggregates merged by key (a movement adds to the location it
goes to and takes from the one it leaves: one GROUP BY per side). None loops over movements,
consumptions or settlement lines issuing queries. The rules that turn these rows into findings, and
why the windows are what they are, are in inventory.services.reconciliation.

Periods are local calendar days in settings.TIME_ZONE, end day included; the functions take the
[start, end) instants of `inventory.selectors.settlements.period_bounds`.
"""
import bisect
import contextlib
import datetime
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from inventory.models import (
    ClosedPeriod,
    Consumption,
    HisSettlementLine,
    Hospital,
    Location,
    LotBalance,
    LotMovementLayer,
    Movement,
    PackagingUnit,
    PeriodBalance,
    Product,
    ReconciliationRun,
    SupplierSettlement,
    SupplierSettlementLine,
    SupplyAgreement,
    Unit,
    UnitStatus,
    User,
)
from inventory.selectors.periods import snapshot_before
from inventory.selectors.scope import visible_to

MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")
ONE_DAY = datetime.timedelta(days=1)

# A unit in one of these statuses is physically at its location (a TAKEN unit is still counted at
# the cabinet it was taken from until it is used or put back; an EXPIRED one is locked, not gone).
IN_STOCK_STATUSES = (
    UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED,
)

# The 进销存 columns: which movement kinds each one sums. Every other kind (cabinet take and
# return, owner change, expire) leaves the quantity where it is and lands in `other`, which is
# therefore 0 unless the ledger holds a movement that changes place without saying why.
_FLOW_COLUMNS = {
    "received": (Movement.Kind.RECEIPT,),
    # An alliance transfer (services/transfers.py) leaves the sender's in-transit location (移出) and
    # enters the receiver's store (移入): each hospital's table is complete, sender's out = receiver's in.
    "transferred": (Movement.Kind.TRANSFER, Movement.Kind.PUTAWAY, Movement.Kind.QUARANTINE_RELEASE,
                    Movement.Kind.ALLIANCE_OUT, Movement.Kind.ALLIANCE_IN),
    "consumed": (Movement.Kind.CONSUME,),
    "refunded": (Movement.Kind.UNCONSUME,),
    "returned": (Movement.Kind.RETURN_TO_SUPPLIER,),
    "scrapped": (Movement.Kind.SCRAP,),
    "adjusted": (Movement.Kind.ADJUSTMENT,),
    # 科室领用即消耗: issued to the department as its cost, never billed (services/expensing.py)
    "expensed": (Movement.Kind.DEPARTMENT_EXPENSE,),
    # 加工 (services/processing.py): members into a pack and out of it, the pack's own unit made and
    # emptied. Net per product × location: out of one product at the station, into the pack product.
    "processed": (Movement.Kind.PACK_IN, Movement.Kind.PACK_OUT, Movement.Kind.PACK_MADE, Movement.Kind.PACK_EMPTIED),
}
_NAMED_KINDS = [kind for kinds in _FLOW_COLUMNS.values() for kind in kinds]


def cents(amount: Decimal | int | None) -> Decimal:
    """A sum rounded to cents: SQLite adds decimals as floating-point numbers."""
    return Decimal(amount or 0).quantize(CENT)


# --- 进销存: stock flows per product × location ----------------------------------------------------


QUANTITY_COLUMNS = (
    "opening", "received", "transferred_in", "transferred_out", "consumed", "refunded", "returned", "scrapped",
    "adjusted", "other", "expensed", "processed",
)


@dataclass
class FlowRow:
    """One line of the 进销存 table: opening + in − out = closing, for one product at one location."""

    product_id: int
    location_id: int
    product_code: str = ""
    product_name: str = ""
    location_code: str = ""
    location_name: str = ""
    opening: int = 0
    received: int = 0
    transferred_in: int = 0
    transferred_out: int = 0
    consumed: int = 0
    refunded: int = 0
    returned: int = 0
    scrapped: int = 0
    adjusted: int = 0
    other: int = 0
    expensed: int = 0
    processed: int = 0

    @property
    def closing(self) -> int:
        return (
            self.opening + self.received + self.transferred_in - self.transferred_out - self.consumed + self.refunded
            - self.returned - self.scrapped + self.adjusted + self.other - self.expensed
            + self.processed
        )

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in QUANTITY_COLUMNS)

    def as_dict(self) -> dict:
        row = dict(zip(_FLOW_ROW_FIELDS, _flow_row_values(self), strict=True))
        row["closing"] = self.closing
        return row


_FLOW_ROW_FIELDS = tuple(f.name for f in fields(FlowRow))
_flow_row_values = operator.attrgetter(*_FLOW_ROW_FIELDS)  # a year's table has ~90,000 rows: one C call each

# Each column of the 进销存 table: the movement kinds it sums (None: every kind no other column
# names), the side of the movement it counts, and how: "net" adds what enters the location and
# subtracts what leaves it; "out" counts what leaves as positive (and what enters, as its reversal,
# as negative); "in_only" / "out_only" count one side only.
_FLOW_SQL_COLUMNS = (
    ("received", _FLOW_COLUMNS["received"], "net"),
    ("transferred_in", _FLOW_COLUMNS["transferred"], "in_only"),
    ("transferred_out", _FLOW_COLUMNS["transferred"], "out_only"),
    ("consumed", _FLOW_COLUMNS["consumed"], "out"),
    ("refunded", _FLOW_COLUMNS["refunded"], "net"),
    ("returned", _FLOW_COLUMNS["returned"], "out"),
    ("scrapped", _FLOW_COLUMNS["scrapped"], "out"),
    ("adjusted", _FLOW_COLUMNS["adjusted"], "net"),
    ("other", None, "net"),
    ("expensed", _FLOW_COLUMNS["expensed"], "out"),
    ("processed", _FLOW_COLUMNS["processed"], "net"),
)
_FLOW_SUMS = {"net": "side * quantity", "out": "-side * quantity", "in_only": "quantity", "out_only": "quantity"}
# A move that leaves a place for that same place (a put-away at acceptance onto the receiving
# location, a change of owner) is no transfer: it nets to 0 and stays out of the transfer columns.
_FLOW_SIDES = {"in_only": " AND side = 1 AND same_place = 0", "out_only": " AND side = -1 AND same_place = 0"}
# stock_flows builds FlowRow from the statement's columns by position.
assert _FLOW_ROW_FIELDS[6:] == QUANTITY_COLUMNS == ("opening", *(name for name, _, _ in _FLOW_SQL_COLUMNS))


@contextlib.contextmanager
def without_jit(cursor) -> Iterator[None]:
    """Run the block's statement without PostgreSQL's JIT compilation, and put the setting back.

    The two whole-stock aggregations of a run cost more than the planner's `jit_above_cost`, and
    EXPLAIN ANALYZE of the benchmark day (November snapshot) showed 339 of 667 ms and 180 of 639 ms
    spent compiling; timed outside EXPLAIN, off saves ~0.05–0.1 s on each (of 0.7–0.9 s). The setting is local to a transaction (a savepoint inside one) and restored after the
    statement, so that nothing else in the caller's transaction runs differently; on an error the
    savepoint's rollback restores it."""
    with transaction.atomic():
        cursor.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        previous = cursor.fetchone()[0]
        yield
        cursor.execute("SELECT set_config('jit', %s, true)", [previous])


def flow_sums_sql(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> tuple[str, list]:
    """The statement of `_flow_sums` and its parameters: its columns are product_id, location_id and
    QUANTITY_COLUMNS in order (a row of every product × location a movement before `end` touched,
    empty ones included). Also the source of the run's stored table (inventory.services.flow_table)."""
    snapshot = snapshot_before(hospital.pk, start)
    since = snapshot.ends_at if snapshot else None
    start, end = (connection.ops.adapt_datetimefield_value(moment) for moment in (start, end))
    params: list = []
    columns = []
    for _, kinds, how in _FLOW_SQL_COLUMNS:
        listed = _NAMED_KINDS if kinds is None else list(kinds)
        membership = "NOT IN" if kinds is None else "IN"
        columns.append(
            f"COALESCE(SUM({_FLOW_SUMS[how]}) FILTER (WHERE occurred_at >= %s "
            f"AND kind {membership} ({', '.join(['%s'] * len(listed))}){_FLOW_SIDES.get(how, '')}), 0)"
        )
        params += [start, *listed]
    movement = Movement._meta.db_table
    same_place = "CASE WHEN from_location_id = to_location_id THEN 1 ELSE 0 END"
    after, opening, opening_params = "", "", []
    if snapshot is not None:
        after = " AND occurred_at >= %s"
        opening = f"""SELECT product_id, location_id, 1 AS side, '' AS kind, quantity, NULL AS occurred_at, 0 AS same_place
              FROM {PeriodBalance._meta.db_table} WHERE period_id = %s
            UNION ALL"""
        opening_params = [snapshot.pk]
    bound = [connection.ops.adapt_datetimefield_value(since)] if snapshot is not None else []
    names = ", ".join(f"{value} AS {name}" for value, name in zip(
        ["COALESCE(SUM(side * quantity) FILTER (WHERE COALESCE(occurred_at < %s, TRUE)), 0)", *columns],
        QUANTITY_COLUMNS, strict=True))
    sql = f"""
        SELECT product_id, location_id, {names}
        FROM (
            {opening}
            SELECT product_id, to_location_id AS location_id, 1 AS side, kind, quantity, occurred_at,
                   {same_place} AS same_place
              FROM {movement} WHERE hospital_id = %s AND occurred_at < %s{after} AND to_location_id IS NOT NULL
            UNION ALL
            SELECT product_id, from_location_id, -1, kind, quantity, occurred_at, {same_place}
              FROM {movement} WHERE hospital_id = %s AND occurred_at < %s{after} AND from_location_id IS NOT NULL
        ) moves
        GROUP BY product_id, location_id
    """  # table and column names come from the code; every value is a parameter
    return sql, [start, *params, *opening_params, hospital.pk, end, *bound, hospital.pk, end, *bound]


def _flow_sums(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> list[tuple]:
    """(product, location, opening, *columns of _FLOW_SQL_COLUMNS) for every product × location a
    movement before `end` touched: one pass over the ledger, each movement counted on both sides.

    The opening starts from the snapshot of the last closed month ending by `start`
    (`PeriodBalance`, see inventory.selectors.periods) and adds only the movements after it."""
    sql, params = flow_sums_sql(hospital, start, end)
    with connection.cursor() as cursor, without_jit(cursor):
        cursor.execute(sql, params)
        return cursor.fetchall()


def stock_flows(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> list[FlowRow]:
    """The 进销存 table of the period [start, end): one row per product × location with stock or flow.

    Opening is the net of every movement before `start`; each column sums the movements of its
    kinds in the period, signed by direction (quantity into a location counts +, out of it −).
    """
    # The statement's columns are FlowRow's quantities in order (opening, then _FLOW_SQL_COLUMNS).
    # A row is empty when every quantity is 0 (`FlowRow.is_empty`): those are left out unbuilt.
    kept = [
        FlowRow(product, location, "", "", "", "", *map(int, values))
        for product, location, *values in _flow_sums(hospital, start, end) if any(values)
    ]
    products = {pk: (code, name) for pk, code, name in Product.objects.filter(
        pk__in={row.product_id for row in kept}).values_list("pk", "internal_code", "name")}
    locations = {pk: (code, name) for pk, code, name in Location.objects.filter(
        pk__in={row.location_id for row in kept}).values_list("pk", "code", "name")}
    for row in kept:
        row.product_code, row.product_name = products[row.product_id]
        row.location_code, row.location_name = locations[row.location_id]
    return sorted(kept, key=lambda row: (row.location_code, row.product_code))


@dataclass(frozen=True)
class StockDifference:
    """A product at a location where the ledger's balance and the stock actually held disagree."""

    product_id: int
    location_id: int
    ledger: int
    units: int
    lots: int

    @property
    def on_hand(self) -> int:
        return self.units + self.lots


def ledger_against_stock(hospital: Hospital) -> list[StockDifference]:
    """Every (product, location) whose ledger balance is not what is in stock.

    The ledger balance is the last closing snapshot plus the movements after it (the whole ledger
    when no month is closed). In stock: units at the location in an IN_STOCK_STATUSES status,
    plus lot balances. One statement, so that both sides come from one snapshot even while stock
    moves during the run. Empty lot balances (kept for every lot a place ever held: they grow with
    the years) are left out: they add nothing to a place's stock, and a place they alone would name
    has nothing on either side.
    """
    movement, unit, lot = Movement._meta.db_table, Unit._meta.db_table, LotBalance._meta.db_table
    statuses = ", ".join(["%s"] * len(IN_STOCK_STATUSES))
    snapshot = snapshot_before(hospital.pk, None)
    after, opening, opening_params, bound = "", "", [], []
    if snapshot is not None:
        after = " AND occurred_at >= %s"
        bound = [connection.ops.adapt_datetimefield_value(snapshot.ends_at)]
        opening = f"""SELECT product_id, location_id, quantity AS ledger, 0 AS units, 0 AS lots
              FROM {PeriodBalance._meta.db_table} WHERE period_id = %s
            UNION ALL"""
        opening_params = [snapshot.pk]
    sql = f"""
        SELECT product_id, location_id, SUM(ledger), SUM(units), SUM(lots)
        FROM (
            {opening}
            SELECT product_id, to_location_id AS location_id, quantity AS ledger, 0 AS units, 0 AS lots
              FROM {movement} WHERE hospital_id = %s AND to_location_id IS NOT NULL{after}
            UNION ALL
            SELECT product_id, from_location_id, -quantity, 0, 0
              FROM {movement} WHERE hospital_id = %s AND from_location_id IS NOT NULL{after}
            UNION ALL
            SELECT product_id, location_id, 0, 1, 0
              FROM {unit} WHERE hospital_id = %s AND location_id IS NOT NULL AND status IN ({statuses})
            UNION ALL
            SELECT product_id, location_id, 0, 0, quantity FROM {lot} WHERE hospital_id = %s AND quantity <> 0
        ) stock
        GROUP BY product_id, location_id
        HAVING SUM(ledger) <> SUM(units) + SUM(lots)
        ORDER BY product_id, location_id
    """  # table names come from the models; every value is a parameter
    params = [*opening_params, hospital.pk, *bound, hospital.pk, *bound, hospital.pk, *IN_STOCK_STATUSES, hospital.pk]
    with connection.cursor() as cursor, without_jit(cursor):
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [StockDifference(*(int(value) for value in row)) for row in rows]


# --- usage against HIS billing ---------------------------------------------------------------------


class UsageTotal(NamedTuple):
    """What was used on one encounter under one HIS charge code in the period (refunds excluded).

    A year holds one per use or so: a light tuple, its amount rounded only when read."""

    encounter: str
    code: str
    product_id: int
    quantity: int
    summed_amount: Decimal | float | None

    @property
    def amount(self) -> Decimal:
        return cents(self.summed_amount)


def usage_by_key(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> dict[tuple[str, str], UsageTotal]:
    """Consumptions of the period not refunded, summed per (encounter, the product's HIS charge code)."""
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    groups = (
        Consumption.objects.filter(hospital=hospital, occurred_at__gte=start, occurred_at__lt=end,
                                   refunded_at__isnull=True)
        .values("encounter", code=F("product__his_charge_code"))
        .annotate(used=Sum("quantity"), used_amount=Sum(amount, output_field=MONEY), used_product=Min("product"))
        .order_by("encounter", "code")
    )
    return {
        (g["encounter"], g["code"]): UsageTotal(g["encounter"], g["code"], g["used_product"], g["used"], g["used_amount"])
        for g in groups
    }


def billed_lines(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, grace: datetime.timedelta
) -> QuerySet[HisSettlementLine]:
    """The HIS settlement lines that answer the use of the period [start, end), annotated with:

    - `use_pk`: the consumption the line bills — the one of our charge it names (`charge`), else a
      use of the same encounter and product charge code near the settlement (`_near`); None when
      there is none;
    - `billed_for`: the charge code the line counts for: the product code of the consumption of
      our charge it names (so a line naming our charge under another code is compared with what
      was used, and reported as a substitution), else the line's own code;
    - `attributed_at`: when the billed use happened — the named or matched consumption, else a use
      of the encounter near the settlement (any code), else the settlement time.

    A line belongs to the period when `attributed_at` falls in it. Candidates are the lines
    settled from one day before the period to `grace` after its end.
    """
    uses = Consumption.objects.filter(hospital=OuterRef("hospital"), encounter=OuterRef("encounter"))
    same_code = uses.filter(product__his_charge_code=OuterRef("his_charge_code"))
    moment = DateTimeField()
    return (
        HisSettlementLine.objects.filter(hospital=hospital, settled_at__gte=start - ONE_DAY, settled_at__lt=end + grace)
        .annotate(
            window_from=ExpressionWrapper(F("settled_at") - grace, output_field=moment),
            window_to=ExpressionWrapper(F("settled_at") + ONE_DAY, output_field=moment),
        )
        .annotate(
            use_pk=Coalesce(F("charge__consumption_id"), *_near(same_code, "pk"), output_field=BigIntegerField()),
            billed_for=Coalesce(F("charge__consumption__product__his_charge_code"), F("his_charge_code")),
            attributed_at=Coalesce(
                F("charge__consumption__occurred_at"), *_near(same_code, "occurred_at"), *_near(uses, "occurred_at"),
                F("settled_at"),
            ),
        )
        .filter(attributed_at__gte=start, attributed_at__lt=end)
    )


def _near(uses: QuerySet[Consumption], value: str) -> tuple[Subquery, Subquery]:
    """`value` of the use a line settles, in order of preference: the latest use from `grace` before
    the settlement up to it, else the first use after it on the same day (a settlement given as a
    date only is that day's midnight, before the day's uses)."""
    before = uses.filter(occurred_at__gte=OuterRef("window_from"), occurred_at__lte=OuterRef("settled_at"))
    after = uses.filter(occurred_at__gt=OuterRef("settled_at"), occurred_at__lt=OuterRef("window_to"))
    return (
        Subquery(before.order_by("-occurred_at", "-pk").values(value)[:1]),
        Subquery(after.order_by("occurred_at", "pk").values(value)[:1]),
    )


class BilledTotal(NamedTuple):
    encounter: str
    code: str
    quantity: int
    summed_amount: Decimal
    lines: int
    linked: int  # lines naming one of our charges

    @property
    def amount(self) -> Decimal:
        return cents(self.summed_amount)


# What a billed line row holds (`billed_line_rows`).
LINE_FIELDS = (
    "his_line_id", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount", "settled_at",
    "charge_id", "use_pk", "billed_for",
)


def billed_line_rows(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, grace: datetime.timedelta
) -> list[dict]:
    """The lines of `billed_lines` as plain rows, in settlement order, read once per run.

    The same rows as `billed_lines(...).values(*LINE_FIELDS)`, matched otherwise: instead of four
    correlated subqueries per line (each an index scan of the encounter's uses, sorted), two reads —
    the candidate lines with the use of the charge they name, and every use from the earliest
    window's start to the latest window's end — and each line's nearest uses found by bisection in
    its encounter's uses (all codes, and its own code), in the subqueries' order (occurred_at, pk)."""
    candidates = HisSettlementLine.objects.filter(
        hospital=hospital, settled_at__gte=start - ONE_DAY, settled_at__lt=end + grace)
    # A line naming a use belongs to the period of that use: filtered here, the rest matched below.
    lines = list(
        candidates.filter(Q(charge__consumption__isnull=True) | Q(charge__consumption__occurred_at__gte=start,
                                                                    charge__consumption__occurred_at__lt=end))
        .values(*LINE_FIELDS[:9], named_use=F("charge__consumption_id"),
                named_code=F("charge__consumption__product__his_charge_code"))
        .order_by("settled_at", "his_line_id")
    )
    unmatched = [line for line in lines if line["named_use"] is None]
    by_encounter: dict[str, list[tuple]] = {}
    by_code: dict[tuple[str, str], list[tuple]] = {}
    if unmatched:
        settled = [line["settled_at"] for line in unmatched]
        # Only the uses of encounters with a line to match (a semi-join, not a list of them).
        encounters = candidates.filter(charge__consumption__isnull=True).values("encounter")
        uses = (
            Consumption.objects.filter(hospital=hospital, occurred_at__gte=min(settled) - grace,
                                       occurred_at__lt=max(settled) + ONE_DAY, encounter__in=encounters)
            .values_list("occurred_at", "pk", "encounter", "product__his_charge_code")
            .order_by("occurred_at", "pk")
        )
        for occurred_at, pk, encounter, code in uses:
            by_encounter.setdefault(encounter, []).append((occurred_at, pk))
            by_code.setdefault((encounter, code), []).append((occurred_at, pk))
    rows = []
    for line in lines:
        use_pk, billed_for = line.pop("named_use"), line.pop("named_code")
        if use_pk is None:
            same = _nearest(by_code.get((line["encounter"], line["his_charge_code"]), []), line["settled_at"], grace)
            use_pk = same[1] if same else None
            attributed_at = (same or _nearest(by_encounter.get(line["encounter"], []), line["settled_at"], grace)
                             or (line["settled_at"],))[0]
            if not start <= attributed_at < end:
                continue
        line["use_pk"] = use_pk
        line["billed_for"] = line["his_charge_code"] if billed_for is None else billed_for
        rows.append(line)
    return _in_base_units(hospital, rows)


def _nearest(uses: list[tuple], settled_at: datetime.datetime, grace: datetime.timedelta) -> tuple | None:
    """(occurred_at, pk) of the use a line settled at `settled_at` bills, of `uses` sorted by
    (occurred_at, pk): the latest from `grace` before the settlement up to it, else the first after it
    on the same day (see `_near`)."""
    after = bisect.bisect_right(uses, settled_at, key=lambda use: use[0])
    if after and uses[after - 1][0] >= settled_at - grace:
        return uses[after - 1]
    if after < len(uses) and uses[after][0] < settled_at + ONE_DAY:
        return uses[after]
    return None


def _in_base_units(hospital: Hospital, rows: list[dict]) -> list[dict]:
    """Lines of products billed in a packaging unit (约定计价单位), restated per base unit — as uses
    and purchase prices are — so that every rule compares like with like; the amount is unchanged.
    The product is that of the use the line bills, else the one of its charge code."""
    factors = dict(PackagingUnit.objects.filter(product__hospital=hospital, is_billing_unit=True)
                   .values_list("product_id", "factor"))
    if not factors:
        return rows
    product_of_use = dict(Consumption.objects.filter(pk__in={row["use_pk"] for row in rows if row["use_pk"]})
                          .values_list("pk", "product_id"))
    product_of_code = dict(Product.objects.filter(hospital=hospital, pk__in=factors).values_list("his_charge_code", "pk"))
    for row in rows:
        product = product_of_use.get(row["use_pk"]) or product_of_code.get(row["billed_for"])
        if (factor := factors.get(product)) is not None:
            row["quantity"] *= factor
            row["unit_price"] = row["unit_price"] / factor
    return rows


def billed_totals_by_key(rows: list[dict]) -> dict[tuple[str, str], BilledTotal]:
    """The rows of `billed_line_rows` summed per (encounter, billed_for): refunds (negative lines) net out."""
    sums: dict[tuple[str, str], list] = {}
    for row in rows:
        key = (row["encounter"], row["billed_for"])
        total = sums.setdefault(key, [0, Decimal(0), 0, 0])
        total[0] += row["quantity"]
        total[1] += row["amount"]
        total[2] += 1
        total[3] += row["charge_id"] is not None
    return {
        key: BilledTotal(key[0], key[1], quantity, amount, count, linked)
        for key, (quantity, amount, count, linked) in sums.items()
    }


# --- consignment, expiry ---------------------------------------------------------------------------


def unsettled_consignment_uses(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, due_before: datetime.datetime
) -> QuerySet[Consumption]:
    """Consignment uses of the period, not refunded, on no confirmed statement, that should be:

    either a confirmed statement of their supplier covers the day of use (the use was left off it,
    typically registered after the statement was confirmed), or the use is older than `due_before`
    (settlement overdue). A unit's supplier is the one that delivered it; a lot's is any supplier
    holding a supply agreement for the product valid on the day of use.
    """
    zone = timezone.get_default_timezone()
    covering = SupplierSettlement.objects.filter(
        hospital=OuterRef("hospital"), status=SupplierSettlement.Status.CONFIRMED,
        period_start__lte=OuterRef("used_on"), period_end__gte=OuterRef("used_on"),
    )
    lot_suppliers = SupplyAgreement.objects.filter(
        product=OuterRef(OuterRef("product")), valid_from__lte=OuterRef(OuterRef("used_on")),
        valid_to__gte=OuterRef(OuterRef("used_on")),
    ).values("supplier")
    on_confirmed = SupplierSettlementLine.objects.filter(
        consumption=OuterRef("pk"), settlement__status=SupplierSettlement.Status.CONFIRMED
    )
    return (
        Consumption.objects.filter(
            hospital=hospital, was_consignment=True, refunded_at__isnull=True, occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .annotate(
            used_on=TruncDate("occurred_at", tzinfo=zone),
            covered=Case(
                When(unit__isnull=False, then=Exists(covering.filter(supplier=OuterRef("unit__supplier")))),
                default=Exists(covering.filter(supplier__in=lot_suppliers)),
            ),
        )
        .filter(~Exists(on_confirmed))
        .filter(Q(covered=True) | Q(occurred_at__lt=due_before))
        .select_related("product", "unit__supplier", "location")
        .order_by("occurred_at", "pk")
    )


def expired_units_in_stock(hospital: Hospital, as_of: datetime.date, end: datetime.datetime) -> QuerySet[Unit]:
    """Units past their expiry on `as_of` (expiry < as_of) that were in stock at `end` by the ledger.

    Where a unit was at `end` is read from its last movement before `end`, so that re-running a
    past period gives the same answer whatever happened to the unit since. Only units that can have
    been in stock then are looked up: those in stock now, and those moved since `end` (a unit not
    moved since is where its last movement left it, which is where it is now: used, returned or
    scrapped units of past years are not read one by one).
    """
    last = Movement.objects.filter(unit=OuterRef("pk"), occurred_at__lt=end).order_by("-occurred_at", "-pk")
    moved_since = Movement.objects.filter(hospital=hospital, occurred_at__gte=end, unit__isnull=False).values("unit")
    return (
        Unit.objects.filter(hospital=hospital, expiry__lt=as_of)
        .filter(Q(status__in=IN_STOCK_STATUSES, location__isnull=False) | Q(pk__in=moved_since))
        .annotate(
            place=Subquery(last.values("to_location")[:1]), status_then=Subquery(last.values("to_status")[:1]),
        )
        .filter(place__isnull=False, status_then__in=IN_STOCK_STATUSES)
        .select_related("product")
        .order_by("product__internal_code", "serial", "pk")
    )


@dataclass(frozen=True)
class LotInStock:
    product_id: int
    lot: str
    location_id: int
    quantity: int
    expiry: datetime.date
    unit_cost: Decimal


def expired_lots_in_stock(hospital: Hospital, as_of: datetime.date, end: datetime.datetime) -> list[LotInStock]:
    """Lot quantities past their expiry on `as_of` that were in stock at `end` by the ledger."""
    snapshot = snapshot_before(hospital.pk, end)
    expired = {(balance["product"], balance["lot"]): balance for balance in _expired_lots(hospital, as_of, end, snapshot)}
    if not expired:
        return []
    products, lots = {product for product, _ in expired}, {lot for _, lot in expired}
    movements = Movement.objects.filter(
        hospital=hospital, unit__isnull=True, occurred_at__lt=end, product__in=products, lot__in=lots,
    )
    net: dict[tuple[int, str, int], int] = {}
    # From the last closing snapshot by `end` (per lot), then the movements after it only.
    if snapshot is not None:
        movements = movements.filter(occurred_at__gte=snapshot.ends_at)
        for group in (PeriodBalance.objects.filter(period=snapshot, product__in=products, lot__in=lots)
                      .values("product", "lot", "location").annotate(quantity=Sum("quantity")).order_by()):
            key = (group["product"], group["lot"], group["location"])
            net[key] = net.get(key, 0) + group["quantity"]
    for side, sign in (("to_location", 1), ("from_location", -1)):
        for group in (
            movements.filter(**{f"{side}__isnull": False}).values("product", "lot", place=F(side))
            .annotate(quantity=Sum("quantity")).order_by()
        ):
            key = (group["product"], group["lot"], group["place"])
            net[key] = net.get(key, 0) + sign * group["quantity"]
    return [
        LotInStock(product, lot, place, quantity, expired[(product, lot)]["expiry"],
                   cents(expired[(product, lot)]["unit_cost"]))
        for (product, lot, place), quantity in sorted(net.items())
        if quantity > 0 and (product, lot) in expired
    ]


def _expired_lots(hospital: Hospital, as_of: datetime.date, end: datetime.datetime,
                  snapshot: ClosedPeriod | None) -> list[dict]:
    """The lots past their expiry on `as_of` (per product and lot: the earliest expiry, the highest
    cost) that may hold stock at `end`. From a snapshot, only the lots it holds or that moved from its
    end to `end`: any other lot nets to nothing there. The balance rows of lots used up, returned or
    written off stay (at zero) and grow with every year of history; they are not read."""
    if snapshot is None:
        return list(LotBalance.objects.filter(hospital=hospital, expiry__lt=as_of)
                    .values("product", "lot").annotate(expiry=Min("expiry"), unit_cost=Max("unit_cost")).order_by())
    balance, movement, held = LotBalance._meta.db_table, Movement._meta.db_table, PeriodBalance._meta.db_table
    sql = f"""
        WITH expired AS MATERIALIZED (
            SELECT product_id, lot, MIN(expiry) AS expiry, MAX(unit_cost) AS unit_cost FROM {balance}
             WHERE hospital_id = %s AND expiry < %s
             GROUP BY product_id, lot
        )
        SELECT * FROM expired e
         WHERE EXISTS (SELECT 1 FROM {held} p
                        WHERE p.period_id = %s AND p.product_id = e.product_id AND p.lot = e.lot AND p.quantity <> 0)
        UNION
        SELECT * FROM expired e
         WHERE EXISTS (SELECT 1 FROM {movement} m
                        WHERE m.hospital_id = %s AND m.unit_id IS NULL AND m.product_id = e.product_id
                          AND m.lot = e.lot AND m.occurred_at >= %s AND m.occurred_at < %s)
    """  # table names come from the code; every value is a parameter
    params = [hospital.pk, connection.ops.adapt_datefield_value(as_of), snapshot.pk, hospital.pk,
              connection.ops.adapt_datetimefield_value(snapshot.ends_at), connection.ops.adapt_datetimefield_value(end)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [{"product": product, "lot": lot, "expiry": expiry, "unit_cost": unit_cost}
                for product, lot, expiry, unit_cost in cursor.fetchall()]


# --- totals ----------------------------------------------------------------------------------------


@dataclass
class PeriodTotals:
    received_quantity: int = 0
    received_amount: Decimal = field(default_factory=Decimal)
    consumed_quantity: int = 0
    consumed_amount: Decimal = field(default_factory=Decimal)
    billed_quantity: int = 0
    billed_amount: Decimal = field(default_factory=Decimal)
    expensed_quantity: int = 0
    expensed_amount: Decimal = field(default_factory=Decimal)

    def as_dict(self) -> dict:
        return {
            "received": {"quantity": self.received_quantity, "amount": str(self.received_amount)},
            "consumed": {"quantity": self.consumed_quantity, "amount": str(self.consumed_amount)},
            "billed": {"quantity": self.billed_quantity, "amount": str(self.billed_amount)},
            "expensed": {"quantity": self.expensed_quantity, "amount": str(self.expensed_amount)},
        }


def period_totals(hospital: Hospital, start: datetime.datetime, end: datetime.datetime, lines: list[dict]) -> PeriodTotals:
    """Received (RECEIPT movements, at unit cost or at the cost of the layer each lot receipt
    opened), consumed (not refunded) and billed (the rows of `billed_line_rows`)."""
    receipts = Movement.objects.filter(hospital=hospital, kind=Movement.Kind.RECEIPT, occurred_at__gte=start,
                                       occurred_at__lt=end, to_location__isnull=False)
    received = receipts.aggregate(
        total_quantity=Coalesce(Sum("quantity"), 0),
        unit_amount=Sum("unit__unit_cost", output_field=MONEY),
    )
    lot_amount = LotMovementLayer.objects.filter(movement__in=receipts.filter(unit__isnull=True)).aggregate(
        total=Sum(ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY))
    )["total"]
    received["total_amount"] = cents(received["unit_amount"]) + cents(lot_amount)
    consumed = Consumption.objects.filter(
        hospital=hospital, occurred_at__gte=start, occurred_at__lt=end, refunded_at__isnull=True
    ).aggregate(
        total_quantity=Coalesce(Sum("quantity"), 0),
        total_amount=Sum(ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)),
    )
    # 科室领用即消耗: issued to departments at the cost of the layers drawn, never billed.
    expensed = LotMovementLayer.objects.filter(
        movement__hospital=hospital, movement__kind=Movement.Kind.DEPARTMENT_EXPENSE, movement__occurred_at__gte=start,
        movement__occurred_at__lt=end,
    ).aggregate(total_quantity=Coalesce(Sum("quantity"), 0),
                total_amount=Sum(ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)))
    return PeriodTotals(
        received["total_quantity"], cents(received["total_amount"]), consumed["total_quantity"],
        cents(consumed["total_amount"]), sum(line["quantity"] for line in lines),
        cents(sum((line["amount"] for line in lines), Decimal(0))), expensed["total_quantity"],
        cents(expensed["total_amount"]),
    )


# --- runs ------------------------------------------------------------------------------------------


def runs_visible_to(user: User) -> QuerySet[ReconciliationRun]:
    """The reconciliation runs of the user's hospital (every hospital for an alliance superuser)."""
    return visible_to(user, ReconciliationRun.objects.select_related("hospital", "requested_by")).order_by(
        "-period_start", "-period_end", "-started_at", "-pk"
    )


# --- evidence --------------------------------------------------------------------------------------


def uses_of_encounters(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, encounters: set[str]
) -> QuerySet[Consumption]:
    """The consumptions of the period (not refunded) of these encounters, oldest first: evidence rows."""
    return (
        Consumption.objects.filter(hospital=hospital, occurred_at__gte=start, occurred_at__lt=end,
                                   refunded_at__isnull=True, encounter__in=encounters)
        .select_related("product", "unit")
        .order_by("occurred_at", "pk")
    )


def stock_at_places(hospital: Hospital, places: set[tuple[int, int]]) -> tuple[list[Unit], list[LotBalance]]:
    """Units in stock and lot balances at these (product, location) places: evidence of a mismatch."""
    if not places:
        return [], []
    products, locations = {product for product, _ in places}, {location for _, location in places}
    units = Unit.objects.filter(
        hospital=hospital, product__in=products, location__in=locations, status__in=IN_STOCK_STATUSES
    ).order_by("serial", "pk")
    lots = LotBalance.objects.filter(hospital=hospital, product__in=products, location__in=locations).order_by(
        "lot", "pk"
    )
    return (
        [unit for unit in units if (unit.product_id, unit.location_id) in places],
        [lot for lot in lots if (lot.product_id, lot.location_id) in places],
    )


def agreements_by_product(hospital: Hospital, product_ids: set[int]) -> dict[int, list[SupplyAgreement]]:
    """Every supply agreement (the price history) of these products, oldest first."""
    found: dict[int, list[SupplyAgreement]] = {}
    for agreement in SupplyAgreement.objects.filter(hospital=hospital, product__in=product_ids).select_related(
        "supplier"
    ).order_by("valid_from", "pk"):
        found.setdefault(agreement.product_id, []).append(agreement)
    return found
