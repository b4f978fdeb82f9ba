"""Read paths of the 进销存 reconciliation: set-based reads over the ledger, the consumptions and
the HIS settlement lines of one hospital and one period.

Every function is one query, or two aggregates merged by key (a movement adds to the location it
goes to and takes from the one it leaves: one GROUP BY per side), or — `period_billing` — a few
statements over a temporary table of the period's HIS lines. None loops over movements,
consumptions or settlement lines issuing queries. The rules that turn these rows into findings, and
why the windows are what they are, are in inventory.services.reconciliation.

Periods are local calendar days in settings.TIME_ZONE, end day included; the functions take the
[start, end) instants of `inventory.selectors.settlements.period_bounds`.
"""
import contextlib
import contextvars
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
    Func,
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
    IN_STOCK_STATUSES,
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
    PeriodFlow,
    PeriodPlaceBalance,
    Product,
    ReconciliationRun,
    SupplierSettlement,
    SupplierSettlementLine,
    SupplyAgreement,
    Unit,
    User,
)
from inventory.selectors.periods import months_with_flows, months_with_totals, snapshot_before
from inventory.selectors.scope import visible_to

MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")
ONE_DAY = datetime.timedelta(days=1)

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
def without_jit(cursor, work_mem: str | None = None) -> Iterator[None]:
    """Run the block's statement without PostgreSQL's JIT compilation (and with this `work_mem`, if
    given), and put the settings back.

    The two whole-stock aggregations of a run cost more than the planner's `jit_above_cost`, and
    EXPLAIN ANALYZE of the benchmark day (November snapshot) showed 339 of 667 ms and 180 of 639 ms
    spent compiling; timed outside EXPLAIN, off saves ~0.05–0.1 s on each (of 0.7–0.9 s). The
    settings are the block's own (`local_setting`: a savepoint), so that nothing else in the caller's
    transaction runs differently, also after an error.

    Inside another such block asking the same `work_mem` (or none), nothing is set again: a whole
    run's reads (`reconcile`) are one block, so that its other statements compile nothing either — a
    year's consignment check was estimated far above the threshold and spent 3.4 s compiling a plan
    that ran in 0.1 s."""
    held = _settings_held.get()
    if connection.vendor != "postgresql" or (held is not None and work_mem in (None, held)):
        yield
        return
    with local_setting(cursor, "jit", "off", **({"work_mem": work_mem} if work_mem else {})):
        token = _settings_held.set(work_mem or "any")
        try:
            yield
        finally:
            _settings_held.reset(token)


_settings_held: contextvars.ContextVar[str | None] = contextvars.ContextVar("spd_without_jit", default=None)


@contextlib.contextmanager
def local_setting(cursor, name: str, value: str, **more: str) -> Iterator[None]:
    """Run the block with PostgreSQL's setting `name` at `value` (and each of `more` at its value),
    then put them back: one statement each way, in a savepoint (a transaction outside one) whose
    rollback restores them when the block raises — a statement after a database error would fail."""
    settings = {name: value, **more}
    with transaction.atomic():
        cursor.execute(
            "SELECT " + ", ".join(["current_setting(%s), set_config(%s, %s, true)"] * len(settings)),
            [param for setting, wanted in settings.items() for param in (setting, setting, wanted)],
        )
        previous = cursor.fetchone()[::2]
        yield
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(settings)),
                       [param for setting, old in zip(settings, previous, strict=True) for param in (setting, old)])


# The period's HIS lines are joined to their charges and uses by id: some thousands of lookups a day
# in indexes the run keeps in memory. At the default random_page_cost (4, a spinning disk's) the
# planner hashed the whole charge and consumption tables instead, a cost that grows with every year
# of history: the five-year ledger's day 1.2-1.7 s against 0.5-0.9 s at 1.1, the one-year day and
# the year unchanged (same lines, differences and totals).
INDEX_LOOKUP_PAGE_COST = "1.1"


# The table's aggregate holds ~90,000 places of 12 sums each (a year's from closed months adds up
# ~500,000 stored rows): in 4 MB, the default, it spilled to disk in 5 to 37 batches. A year's HIS
# lines and uses are sorted in memory in as much (`period_billing`).
FLOW_SUMS_WORK_MEM = READS_WORK_MEM = "64MB"


def snapshot_table(snapshot: ClosedPeriod) -> str:
    """The table holding the closing quantities of `snapshot` by product_id, location_id (and period_id):
    its rows summed per place by the close (PeriodPlaceBalance, ~90,000 on the one-year benchmark), else
    its rows per lot and owner (PeriodBalance, ~200,000), which add up to the same per place."""
    return (PeriodPlaceBalance if snapshot.places_stored else PeriodBalance)._meta.db_table


def flow_sums_sql(hospital: Hospital, start: datetime.datetime, end: datetime.datetime, *,
                  from_closed_months: bool = True) -> tuple[str, list]:
    """The statement of `_flow_sums` and its parameters: its columns are product_id, location_id and
    QUANTITY_COLUMNS in order (a row of every product × location a movement before `end` touched,
    empty ones included). Also the source of the run's stored table (inventory.services.flow_table).

    The opening is the snapshot of the last month closed by `start` plus the movements after it.
    Closed months inside the period whose flows are stored (`PeriodFlow`, `months_with_flows`) are
    added up instead of their movements: the ledger is read only where no closed month covers the
    period — before the first of them and after the last. A closed month that starts before `start`
    (the month of a period starting mid-month) is added whole, and the movements from its start to
    `start`, read anyway for the opening, are taken off its flows. `from_closed_months=False` reads
    every movement of the period (what the stored months must add up to)."""
    snapshot = snapshot_before(hospital.pk, start)
    since = snapshot.ends_at if snapshot else None
    months = months_with_flows(hospital.pk, since, end) if from_closed_months else []
    adapt = connection.ops.adapt_datetimefield_value
    # Each movement counts in the period's flows from `start` on; one of a closed month added whole
    # but before `start` counts negatively (its month's flows hold it).
    subtract_from = months[0].starts_at if months and months[0].starts_at < start else None
    params: list = []
    columns = []
    for _, kinds, how in _FLOW_SQL_COLUMNS:
        listed = _NAMED_KINDS if kinds is None else list(kinds)
        membership = "NOT IN" if kinds is None else "IN"
        summed = _FLOW_SUMS[how]
        if subtract_from is not None:
            summed = f"CASE WHEN occurred_at >= %s THEN {summed} ELSE -({summed}) END"
            params.append(adapt(start))
        columns.append(
            f"COALESCE(SUM({summed}) FILTER (WHERE occurred_at >= %s "
            f"AND kind {membership} ({', '.join(['%s'] * len(listed))}){_FLOW_SIDES.get(how, '')}), 0)"
        )
        params += [adapt(subtract_from or start), *listed]
    movement = Movement._meta.db_table
    same_place = "CASE WHEN from_location_id = to_location_id THEN 1 ELSE 0 END"
    # The stretches of the ledger read: [since, end), or around the closed months added up.
    stretches = [(since, end)]
    if months:
        stretches = [(since, max(start, months[0].starts_at)), (months[-1].ends_at, end)]
    branches, branch_params = [], []
    for place, side in (("to_location_id", "1"), ("from_location_id", "-1")):
        for low, high in stretches:
            branches.append(f"""
            SELECT product_id, {place} AS location_id, {side} AS side, kind, quantity, occurred_at,
                   {same_place} AS same_place
              FROM {movement} WHERE hospital_id = %s AND occurred_at < %s{'' if low is None else ' AND occurred_at >= %s'}
               AND {place} IS NOT NULL""")
            branch_params += [hospital.pk, adapt(high), *([] if low is None else [adapt(low)])]
    ledger = "\n            UNION ALL".join(branches)
    names = ", ".join(f"{value} AS {name}" for value, name in zip(
        ["COALESCE(SUM(side * quantity) FILTER (WHERE COALESCE(occurred_at < %s, TRUE)), 0)", *columns],
        QUANTITY_COLUMNS, strict=True))
    sql = f"""
        SELECT product_id, location_id, {names}
        FROM (
            {ledger}
        ) moves
        GROUP BY product_id, location_id
    """  # table and column names come from the code; every value is a parameter
    params = [adapt(start), *params, *branch_params]
    if snapshot is None and not months:
        return sql, params
    # The snapshot's rows (~200,000 a large hospital's month, one per lot and owner) and the closed
    # months' flows are added to the movements' sums as plain columns: through the filtered sums above,
    # each snapshot row was tested against every column's kinds (the one-year day's aggregate ~20% longer).
    flows = QUANTITY_COLUMNS[1:]
    added, added_params = [], []
    if snapshot is not None:
        added.append(f"""SELECT product_id, location_id, quantity, {', '.join(f'0 AS {name}' for name in flows)}
              FROM {snapshot_table(snapshot)} WHERE period_id = %s""")
        added_params.append(snapshot.pk)
    if months:
        # Summed per place here first: a year's ~490,000 rows of twelve months come in as ~90,000, so
        # that the outer aggregate (serial: it also takes the ledger's, gathered from workers) hashes
        # a quarter of the rows (a year's run: ~0.07 s less of ~0.65 s).
        added.append(f"""SELECT product_id, location_id, 0, {', '.join(f'SUM({name})' for name in flows)}
              FROM {PeriodFlow._meta.db_table} WHERE period_id IN ({', '.join(['%s'] * len(months))})
             GROUP BY product_id, location_id""")
        added_params += [month.pk for month in months]
    sql = f"""
        SELECT product_id, location_id, {', '.join(f'SUM(CAST({name} AS INTEGER)) AS {name}' for name in QUANTITY_COLUMNS)}
        FROM (
            {sql}
            UNION ALL
            {' UNION ALL '.join(added)}
        ) sums
        GROUP BY product_id, location_id
    """
    return sql, [*params, *added_params]


def ledger_read_for_flows(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> datetime.timedelta | None:
    """How much of the ledger `flow_sums_sql` reads for [start, end): the time from the opening snapshot
    to `end` — None when it reads from the ledger's first movement (no month closed by `start`) or adds
    up closed months' flows (then it reads around them)."""
    snapshot = snapshot_before(hospital.pk, start)
    if snapshot is None or months_with_flows(hospital.pk, snapshot.ends_at, end):
        return None
    return end - snapshot.ends_at


def _flow_sums(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> list[tuple]:
    """(product, location, opening, *columns of _FLOW_SQL_COLUMNS) for every product × location a
    movement before `end` touched: one pass over the ledger, each movement counted on both sides.

    The opening starts from the snapshot of the last closed month ending by `start`
    (`PeriodBalance`, see inventory.selectors.periods) and adds only the movements after it."""
    sql, params = flow_sums_sql(hospital, start, end)
    with connection.cursor() as cursor, without_jit(cursor, work_mem=FLOW_SUMS_WORK_MEM):
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
              FROM {snapshot_table(snapshot)} WHERE period_id = %s
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
    with connection.cursor() as cursor, without_jit(cursor), _serial_from(cursor, snapshot):
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [StockDifference(*(int(value) for value in row)) for row in rows]


def _serial_from(cursor, snapshot: ClosedPeriod | None) -> contextlib.AbstractContextManager:
    """From a snapshot, the ledger check runs without parallel workers: the planner's parallel plan
    (partial aggregates sorted and merged) took 0.43 s of CPU on the one-year day, one aggregate 0.24 s,
    and was slower whenever the two cores were not both free (0.33 against 0.24 s with one busy). The
    whole ledger (no month closed) is read in parallel as before."""
    if snapshot is None or connection.vendor != "postgresql":
        return contextlib.nullcontext()
    return local_setting(cursor, "max_parallel_workers_per_gather", "0")


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


# What a billed line row holds (`PeriodBilling`).
LINE_FIELDS = (
    "his_line_id", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount", "settled_at",
    "charge_id", "use_pk", "billed_for",
)
_LINES_TABLE = "spd_run_billed_lines"  # temporary, in the session's own schema


@dataclass
class PeriodBilling:
    """The HIS lines answering the period's use (the lines of `billed_lines`), reduced in SQL to what
    the rules read. Lines are plain rows (LINE_FIELDS), in settlement order, restated in base units.

    - `differences`: each (encounter, charge code) whose used and billed quantities differ, with its
      totals (None on the side with nothing);
    - `lines_of`: the lines of each of those keys (evidence);
    - `suspect_lines`: the positive lines billing a use that may break a code or price rule;
    - `quantity`, `amount`: the billed totals of the period;
    - `used_quantity`, `used_amount`: the used totals of the period (its consumptions not refunded)."""

    differences: list[tuple[UsageTotal | None, BilledTotal | None]]
    lines_of: dict[tuple[str, str], list[dict]]
    suspect_lines: list[dict]
    quantity: int
    amount: Decimal
    used_quantity: int
    used_amount: Decimal


def period_billing(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, grace: datetime.timedelta
) -> PeriodBilling:
    """The period's billing against its use (see `PeriodBilling`), read once per run.

    The lines of `billed_lines`, matched otherwise: one statement puts the lines answering the period
    into a temporary table, each joined once to the use it bills — the use stored with the charge it names (a use of the
    period: a day's are looked up by index), or, for the others, found among the uses of its encounter
    in its window — with whether a code or price rule must look at it (`_MATCH_LINES`); then one
    aggregate compares used and billed per key (`_USAGE_AGAINST_BILLING`) and one scan of the table
    reads the lines the rules need (`_LINES_READ`). A year holds ~300,000 lines and as many uses: none
    of them passes through Python, only the keys, lines and totals the findings need."""
    if connection.vendor != "postgresql":
        return _period_billing_in_python(hospital, start, end, grace)
    adapt = connection.ops.adapt_datetimefield_value
    bounds = [adapt(start), adapt(end)]
    names = _billing_tables()
    # without_jit's savepoint holds the temporary table: gone with it on an error. A year's lines and
    # uses are sorted in memory with 64 MB (on disk in 4 MB, the default).
    with (connection.cursor() as cursor, without_jit(cursor, work_mem=READS_WORK_MEM),
          local_setting(cursor, "random_page_cost", INDEX_LOOKUP_PAGE_COST)):
        cursor.execute(_MATCH_LINES.format(**names), {
            "hospital": hospital.pk, "grace": grace.total_seconds(), "day": ONE_DAY.total_seconds(),
            "start": bounds[0], "end": bounds[1],
            "settled_from": adapt(start - ONE_DAY), "settled_until": adapt(end + grace),
            # Every use a line's window can reach (the windows are within [settled - grace, settled + 1 day)).
            "uses_from": adapt(start - ONE_DAY - grace), "uses_until": adapt(end + grace + ONE_DAY)})
        cursor.execute(_USAGE_AGAINST_BILLING.format(**names), [hospital.pk, *bounds])
        differences, totals = [], None
        for is_totals, encounter, code, product, used, used_amount, billed, billed_amount, lines, linked in (
                cursor.fetchall()):
            if is_totals:
                totals = (used or 0, used_amount or Decimal(0), billed or 0, billed_amount or Decimal(0))
                continue
            differences.append((
                UsageTotal(encounter, code, product, used, used_amount) if used is not None else None,
                BilledTotal(encounter, code, billed, billed_amount, lines, linked) if billed is not None else None))
        keys = [(used or billed)[:2] for used, billed in differences]
        cursor.execute(_LINES_READ.format(**names), [[key[0] for key in keys], [key[1] for key in keys]])
        lines_of: dict[tuple[str, str], list[dict]] = {}
        suspect_lines = []
        for line, suspect, evidence in _line_rows(cursor):
            if suspect:
                suspect_lines.append(line)
            if evidence:
                lines_of.setdefault((line["encounter"], line["billed_for"]), []).append(line)
        cursor.execute(f"DROP TABLE {_LINES_TABLE}")
    used_quantity, used_amount, billed_quantity, billed_amount = totals
    return PeriodBilling(differences, lines_of, suspect_lines, billed_quantity, billed_amount, used_quantity,
                         used_amount)


def _period_billing_in_python(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, grace: datetime.timedelta
) -> PeriodBilling:
    """`period_billing` off PostgreSQL (the embedded SQLite of a demo or a trial): the same result
    from `billed_lines`, the rules' ORM form, summed here. Every positive line billing a use is
    handed to the code and price rules (the SQL's `suspect` filter only spares them the lines that
    break none)."""
    lines = list(billed_lines(hospital, start, end, grace).values(*LINE_FIELDS).order_by("settled_at", "his_line_id"))
    factors = dict(PackagingUnit.objects.filter(product__hospital=hospital, is_billing_unit=True)
                   .values_list("product_id", "factor"))
    product_of_use = dict(Consumption.objects.filter(pk__in={line["use_pk"] for line in lines if line["use_pk"]})
                          .values_list("pk", "product_id"))
    first_of_code: dict[str, int] = {}
    for product, code in Product.objects.filter(pk__in=factors).order_by("-pk").values_list("pk", "his_charge_code"):
        first_of_code[code] = product
    billed: dict[tuple[str, str], list] = {}
    for line in lines:
        product = product_of_use.get(line["use_pk"]) if line["use_pk"] else first_of_code.get(line["billed_for"])
        if (factor := factors.get(product)) is not None:
            line["quantity"] *= factor
            line["unit_price"] = line["unit_price"] / factor
        total = billed.setdefault((line["encounter"], line["billed_for"]), [0, Decimal(0), 0, 0])
        total[0] += line["quantity"]
        total[1] += line["amount"]
        total[2] += 1
        total[3] += line["charge_id"] is not None
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    used = {
        (row["encounter"], row["code"]): UsageTotal(row["encounter"], row["code"], row["used_product"], row["used"],
                                                    row["used_amount"])
        for row in Consumption.objects.filter(hospital=hospital, occurred_at__gte=start, occurred_at__lt=end,
                                              refunded_at__isnull=True)
        .values("encounter", code=F("product__his_charge_code"))
        .annotate(used=Sum("quantity"), used_amount=Sum(amount, output_field=MONEY), used_product=Min("product"))
        .order_by("encounter", "code")
    }
    totals = {key: BilledTotal(*key, *values) for key, values in billed.items()}
    differing = sorted(key for key in used.keys() | totals.keys()
                       if (used[key].quantity if key in used else None) != (totals[key].quantity if key in totals else None))
    differences = [(used.get(key), totals.get(key)) for key in differing]
    differences_keys = set(differing)
    lines_of: dict[tuple[str, str], list[dict]] = {}
    for line in lines:
        if (line["encounter"], line["billed_for"]) in differences_keys:
            lines_of.setdefault((line["encounter"], line["billed_for"]), []).append(line)
    suspect_lines = [line for line in lines if line["use_pk"] in product_of_use and line["quantity"] > 0]
    return PeriodBilling(differences, lines_of, suspect_lines, sum(total[0] for total in billed.values()),
                         sum((total[1] for total in billed.values()), Decimal(0)),
                         sum(total.quantity for total in used.values()),
                         sum((total.summed_amount for total in used.values()), Decimal(0)))


def _billing_tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    names = {"lines": _LINES_TABLE, **{name: quote(model._meta.db_table) for name, model in (
        ("line", HisSettlementLine), ("consumption", Consumption), ("product", Product),
        ("unit", Unit), ("packaging", PackagingUnit))}}
    return {**names, "suspect": _SUSPECT.format(**names).strip(), "unnamed": _UNNAMED_LINES.format(**names)}


# Whether a line (b) billing a use (b.use_…, of product p, billing unit pu) may break a code or price rule of
# services.reconciliation's `_line_finding`: it is positive and has a charge or 医保 code that is not the
# used product's, a price that is not the use's purchase price (per base unit), or bills an item that cost
# nothing or was a gift. Any other line (nearly all) breaks none; those are never read into Python.
_SUSPECT = """
    COALESCE(b.use_pk IS NOT NULL AND b.quantity > 0 AND (
        b.his_charge_code <> p.his_charge_code OR (b.nhsa_code <> '' AND b.nhsa_code <> p.nhsa_code)
        OR b.unit_price <> b.use_price * COALESCE(pu.factor, 1) OR b.use_price = 0
        OR EXISTS (SELECT FROM {unit} g WHERE g.id = b.use_unit AND g.is_gift)), FALSE)
"""

# The lines answering the period's use, each with the use it bills, when that was (`attributed_at`) and the
# charge code it counts for (`billed_for`); `factor` is the billing unit (约定计价单位) of the used product, if
# any; `suspect` as above. One statement, each line joined once to its use. The candidates are the lines settled
# from one day before the period to `grace` after it; only those attributed to the period are kept.
#
# A line naming one of our charges bills that charge's use (the line's `use`, stored with the charge), counts
# for the use's product code and is attributed to its time: it answers the period when that use is in it, so
# only the period's uses are joined (a day's, not every use ever made: the charge's use belongs to the line's
# hospital, the charge's own).
#
# A line naming none (`nearest`) bills the latest use of its encounter and charge code from `grace` before its
# settlement up to it, else the first after it within a day (a settlement given as a date only is that day's
# midnight, before the day's uses), in (occurred_at, pk) order — the rule of `billed_lines`' `_near`; it is
# attributed to that use's time, else to the nearest use of the encounter (any code) in the same windows, else
# to its settlement. Each line is joined to the uses of its encounter in its window (an encounter has a few)
# and those are reduced per line: a use at the settlement instant counts as before it. The use it bills is
# the greatest (or least) array of its time, id, product, unit and price in cents (exact: two decimals), so
# that its columns come with it instead of from a second lookup of each use. Its billing unit is that
# of the product of the use it bills, else of the first product (by id) of its charge code having one.
#
# The lines naming no charge are read from the table each time ({unnamed}), not from a CTE: the planner
# has no statistics of a CTE's columns and, guessing 200 encounters, looked their uses up one by one.
_MATCH_LINES = """
    CREATE TEMPORARY TABLE {lines} ON COMMIT DROP AS
    WITH nearest AS (
        SELECT l.id AS line_id,
               max(ARRAY[(EXTRACT(EPOCH FROM c.occurred_at) * 1000000)::bigint, c.id, c.product_id, c.unit_id,
                         (c.unit_price * 100)::bigint])
                   FILTER (WHERE p.his_charge_code = l.his_charge_code AND c.occurred_at <= l.settled_at) AS code_before,
               max(c.occurred_at)
                   FILTER (WHERE p.his_charge_code = l.his_charge_code AND c.occurred_at <= l.settled_at) AS code_before_at,
               min(ARRAY[(EXTRACT(EPOCH FROM c.occurred_at) * 1000000)::bigint, c.id, c.product_id, c.unit_id,
                         (c.unit_price * 100)::bigint])
                   FILTER (WHERE p.his_charge_code = l.his_charge_code AND c.occurred_at > l.settled_at) AS code_after,
               min(c.occurred_at)
                   FILTER (WHERE p.his_charge_code = l.his_charge_code AND c.occurred_at > l.settled_at) AS code_after_at,
               max(c.occurred_at) FILTER (WHERE c.occurred_at <= l.settled_at) AS any_before,
               min(c.occurred_at) FILTER (WHERE c.occurred_at > l.settled_at) AS any_after
          FROM {unnamed} l
          JOIN {consumption} c ON c.encounter = l.encounter AND c.hospital_id = %(hospital)s
                              AND c.occurred_at >= %(uses_from)s AND c.occurred_at < %(uses_until)s
                              AND c.occurred_at >= l.settled_at - %(grace)s * INTERVAL '1 second'
                              AND c.occurred_at < l.settled_at + %(day)s * INTERVAL '1 second'
          JOIN {product} p ON p.id = c.product_id
         GROUP BY l.id
    ), candidates AS (
        SELECT l.id, l.his_line_id, l.encounter, l.his_charge_code, l.nhsa_code, l.quantity, l.unit_price, l.amount,
               l.settled_at, l.charge_id, u.id AS use_pk, u.occurred_at AS attributed_at, u.product_id AS use_product,
               u.unit_id AS use_unit, u.unit_price AS use_price
          FROM {line} l
          JOIN {consumption} u ON u.id = l.use_id
         WHERE l.hospital_id = %(hospital)s AND l.settled_at >= %(settled_from)s AND l.settled_at < %(settled_until)s
           AND u.hospital_id = %(hospital)s AND u.occurred_at >= %(start)s AND u.occurred_at < %(end)s
        UNION ALL
        SELECT id, his_line_id, encounter, his_charge_code, nhsa_code, quantity, unit_price, amount, settled_at,
               charge_id, used[2], attributed_at, used[3], used[4], used[5] * 0.01
          FROM (
            SELECT l.*, COALESCE(n.code_before, n.code_after) AS used,
                   COALESCE(n.code_before_at, n.code_after_at, n.any_before, n.any_after, l.settled_at) AS attributed_at
              FROM {unnamed} l LEFT JOIN nearest n ON n.line_id = l.id
          ) m
         WHERE attributed_at >= %(start)s AND attributed_at < %(end)s
    )
    SELECT b.id, b.his_line_id, b.encounter, b.his_charge_code, b.nhsa_code, b.quantity, b.unit_price, b.amount,
           b.settled_at, b.charge_id, b.use_pk, b.attributed_at,
           CASE WHEN b.charge_id IS NULL THEN b.his_charge_code
                ELSE COALESCE(p.his_charge_code, b.his_charge_code) END AS billed_for,
           CASE WHEN b.use_pk IS NOT NULL THEN pu.factor
                WHEN b.charge_id IS NULL AND EXISTS (
                    SELECT FROM {packaging} pu JOIN {product} p ON p.id = pu.product_id
                     WHERE p.hospital_id = %(hospital)s AND pu.is_billing_unit)
                THEN (SELECT pu.factor FROM {product} p JOIN {packaging} pu ON pu.product_id = p.id
                       WHERE p.hospital_id = %(hospital)s AND p.his_charge_code = b.his_charge_code
                         AND pu.is_billing_unit
                       ORDER BY p.id LIMIT 1) END AS factor,
           {suspect} AS suspect
      FROM candidates b
      LEFT JOIN {product} p ON p.id = b.use_product
      LEFT JOIN {packaging} pu ON pu.product_id = b.use_product AND pu.is_billing_unit
"""
# The candidate lines naming no charge (a subquery of `_MATCH_LINES`, with its parameters).
_UNNAMED_LINES = """(
    SELECT id, his_line_id, encounter, his_charge_code, nhsa_code, quantity, unit_price, amount, settled_at, charge_id
      FROM {line}
     WHERE hospital_id = %(hospital)s AND settled_at >= %(settled_from)s AND settled_at < %(settled_until)s
       AND charge_id IS NULL)"""

# Used (consumptions of the period not refunded, per encounter and the product's charge code) against
# billed (the lines per encounter and `billed_for`, refunds netting out), both sides in one aggregate: the
# keys that differ, and the row of the empty grouping set — the period's totals, used and billed. Amounts
# are summed as whole cents (every price and amount has two decimals: exact), because a numeric sum keeps
# a state several times an integer's for each of a year's ~293,000 keys — two such aggregates spilled to
# disk in 5 batches each in 64 MB; this one fits.
_USAGE_AGAINST_BILLING = """
    SELECT GROUPING(encounter) = 1 AS totals, encounter, code, MIN(product_id), SUM(used), SUM(used_cents) * 0.01,
           SUM(billed), SUM(billed_cents) * 0.01, COUNT(line), COUNT(charge_id)
      FROM (
        SELECT c.encounter, p.his_charge_code AS code, c.product_id, c.quantity AS used,
               (c.unit_price * c.quantity * 100)::bigint AS used_cents, NULL::integer AS billed,
               NULL::bigint AS billed_cents, NULL::bigint AS line, NULL::bigint AS charge_id
          FROM {consumption} c JOIN {product} p ON p.id = c.product_id
         WHERE c.hospital_id = %s AND c.occurred_at >= %s AND c.occurred_at < %s AND c.refunded_at IS NULL
        UNION ALL
        SELECT encounter, billed_for, NULL, NULL, NULL, quantity * COALESCE(factor, 1), (amount * 100)::bigint, id,
               charge_id
          FROM {lines} b
      ) sides
     GROUP BY GROUPING SETS ((encounter, code), ())
    HAVING GROUPING(encounter) = 1 OR SUM(used) IS DISTINCT FROM SUM(billed)
"""

# The lines the rules read: those of the keys given (the differences: evidence), and the suspect ones.
_LINES_READ = """
    SELECT * FROM (
        SELECT {columns}, suspect,
               (encounter, billed_for) IN (SELECT * FROM unnest(%s::text[], %s::text[])) AS evidence
          FROM {lines} b
    ) line
     WHERE suspect OR evidence
     ORDER BY settled_at, his_line_id
""".replace("{columns}", ", ".join(LINE_FIELDS) + ", factor")


def _line_rows(cursor) -> list[tuple[dict, bool, bool]]:
    """The fetched lines (LINE_FIELDS, the billing unit's factor, then two flags) as rows in base
    units, each with its flags."""
    rows = []
    for *values, factor, suspect, evidence in cursor.fetchall():
        row = dict(zip(LINE_FIELDS, values, strict=True))
        if factor is not None:
            row["quantity"] *= factor
            row["unit_price"] = row["unit_price"] / factor
        rows.append((row, suspect, evidence))
    return rows


# --- consignment, expiry ---------------------------------------------------------------------------


def unsettled_consignment_uses(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, due_before: datetime.datetime
) -> list[Consumption]:
    """Consignment uses of the period, not refunded, on no confirmed statement, that should be:

    either a confirmed statement of their supplier covers the day of use (the use was left off it,
    typically registered after the statement was confirmed), or the use is older than `due_before`
    (settlement overdue). A unit's supplier is the one that delivered it; a lot's is any supplier
    holding a supply agreement for the product valid on the day of use. Each use with its product,
    location and unit (with its supplier), `used_on` (the local day) and `covered`, in time order.

    On PostgreSQL one statement finds them (`_UNSETTLED_CONSIGNMENT`) and only they are loaded; the
    ORM form below joined every unit ever received to look up the suppliers of a few thousand uses
    (a hash of the whole unit table: ~0.6 of ~1 s on a year)."""
    if connection.vendor != "postgresql":
        return list(_unsettled_consignment_queryset(hospital, start, end, due_before))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor, without_jit(cursor):  # its estimate is far above the JIT's threshold
        cursor.execute(_UNSETTLED_CONSIGNMENT.format(**_consignment_tables()), {
            "hospital": hospital.pk, "start": adapt(start), "end": adapt(end), "due": adapt(due_before),
            "zone": timezone.get_default_timezone_name(), "confirmed": SupplierSettlement.Status.CONFIRMED})
        found = cursor.fetchall()
    uses = Consumption.objects.select_related("product", "location", "unit__supplier").in_bulk(
        [pk for pk, _, _ in found])
    for pk, used_on, covered in found:
        uses[pk].used_on, uses[pk].covered = used_on, covered
    return [uses[pk] for pk, _, _ in found]


def _consignment_tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {name: quote(model._meta.db_table) for name, model in (
        ("consumption", Consumption), ("line", SupplierSettlementLine), ("settlement", SupplierSettlement),
        ("unit", Unit), ("agreement", SupplyAgreement))}


# The period's consignment uses on no confirmed statement (a use is on at most one statement line: a
# left join, not an anti-join, which the planner may nest over the lines of every confirmed
# statement), then whether a confirmed statement of the use's supplier covers its day: the unit's
# supplier, looked up for these uses only, or any supplier of a valid agreement of the product.
_UNSETTLED_CONSIGNMENT = """
    WITH uses AS MATERIALIZED (
        SELECT c.id, c.product_id, c.unit_id, c.occurred_at,
               (c.occurred_at AT TIME ZONE %(zone)s)::date AS used_on
          FROM {consumption} c
          LEFT JOIN {line} l ON l.consumption_id = c.id
          LEFT JOIN {settlement} s ON s.id = l.settlement_id
         WHERE c.hospital_id = %(hospital)s AND c.was_consignment AND c.refunded_at IS NULL
           AND c.occurred_at >= %(start)s AND c.occurred_at < %(end)s
           AND (l.id IS NULL OR s.status <> %(confirmed)s)
    )
    SELECT id, used_on, covered FROM (
        SELECT u.id, u.occurred_at, u.used_on,
               CASE WHEN u.unit_id IS NOT NULL THEN EXISTS (
                   SELECT FROM {settlement} s
                    WHERE s.hospital_id = %(hospital)s AND s.status = %(confirmed)s
                      AND s.supplier_id = (SELECT supplier_id FROM {unit} WHERE id = u.unit_id)
                      AND s.period_start <= u.used_on AND s.period_end >= u.used_on)
               ELSE EXISTS (
                   SELECT FROM {settlement} s
                    WHERE s.hospital_id = %(hospital)s AND s.status = %(confirmed)s
                      AND s.period_start <= u.used_on AND s.period_end >= u.used_on
                      AND s.supplier_id IN (SELECT a.supplier_id FROM {agreement} a
                                             WHERE a.product_id = u.product_id AND a.valid_from <= u.used_on
                                               AND a.valid_to >= u.used_on))
               END AS covered
          FROM uses u
    ) checked
     WHERE covered OR occurred_at < %(due)s
     ORDER BY occurred_at, id
"""


def _unsettled_consignment_queryset(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, due_before: datetime.datetime
) -> QuerySet[Consumption]:
    """`unsettled_consignment_uses` in the ORM (off PostgreSQL, and the reference of its test)."""
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
    """Lot quantities past their expiry on `as_of` that were in stock at `end` by the ledger, in order
    of product, lot and location.

    One statement: the lots past their expiry (per product and lot: the earliest expiry, the highest
    cost), joined to their quantities per location at `end` — the last closing snapshot by `end` plus
    the lot movements after it (the whole ledger before `end` when no month is closed).

    LotBalance keeps a row for every lot a place ever held: on the five-year benchmark day 416,260 rows
    past their expiry (115,741 lots, 1,384 rows non-zero) were aggregated and joined to the whole
    snapshot for ~400 lots held. So from a snapshot, where at least NARROW_EXPIRED_FROM rows are past
    their expiry, only the lots the ledger can hold at `end` are aggregated: those with a non-zero row in
    the snapshot or a movement since (the costs and expiries of each such lot still come from all its
    places). Fewer (a young history: 1,464 on the one-year day) are aggregated whole, which costs less
    than hashing the snapshot's lot keys. Either way their snapshot rows are then read by key (the
    snapshot holds every place's stock, ~200,000 rows)."""
    snapshot = snapshot_before(hospital.pk, end)
    balance, movement, held = LotBalance._meta.db_table, Movement._meta.db_table, PeriodBalance._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    opening, opening_params, since, since_params, held_now, held_params = "", [], "", [], "", []
    if snapshot is not None:
        # The snapshot's rows of each expired lot, looked up by its key (not the whole snapshot joined:
        # the planner, expecting as many lots as expired rows, read and sorted it all; OFFSET 0 keeps
        # PostgreSQL from flattening the lookup into such a join).
        if connection.vendor == "postgresql":
            opening = f"""SELECT p.product_id, p.lot, p.location_id, p.quantity
              FROM expired e CROSS JOIN LATERAL (
                   SELECT product_id, lot, location_id, quantity FROM {held}
                    WHERE period_id = %s AND product_id = e.product_id AND lot = e.lot AND quantity <> 0 OFFSET 0) p
            UNION ALL"""
        else:
            opening = f"""SELECT p.product_id, p.lot, p.location_id, p.quantity
              FROM expired e JOIN {held} p ON p.period_id = %s AND p.product_id = e.product_id AND p.lot = e.lot
             WHERE p.quantity <> 0
            UNION ALL"""
        opening_params = [snapshot.pk]
        since, since_params = " AND occurred_at >= %s", [adapt(snapshot.ends_at)]
        if _expired_rows_at_least(hospital, as_of, NARROW_EXPIRED_FROM):
            held_now = f"""
               AND ((product_id, lot) IN (SELECT product_id, lot FROM {held} WHERE period_id = %s AND quantity <> 0)
                    OR (product_id, lot) IN (SELECT product_id, lot FROM moved WHERE unit_id IS NULL))"""
            held_params = [snapshot.pk]
    # From a snapshot, the stretch's movements are found by time, the lot ones among them after: with
    # both conditions the planner also read the index on unit_id IS NULL, i.e. every lot movement of the
    # ledger's history. Without one, the whole ledger before `end` is read: not held in the CTE.
    sql = f"""
        WITH moved AS {'MATERIALIZED ' if snapshot is not None else ''}(
            SELECT product_id, lot, unit_id, to_location_id, from_location_id, quantity FROM {movement}
             WHERE hospital_id = %s AND occurred_at < %s{since}
        ), expired AS MATERIALIZED (
            SELECT product_id, lot, MIN(expiry) AS expiry, MAX(unit_cost) AS unit_cost FROM {balance}
             WHERE hospital_id = %s AND expiry < %s{held_now}
             GROUP BY product_id, lot
        ), net AS (
            {opening}
            SELECT product_id, lot, to_location_id AS location_id, quantity FROM moved
             WHERE unit_id IS NULL AND to_location_id IS NOT NULL
            UNION ALL
            SELECT product_id, lot, from_location_id, -quantity FROM moved
             WHERE unit_id IS NULL AND from_location_id IS NOT NULL
        )
        SELECT e.product_id, e.lot, n.location_id, SUM(n.quantity), e.expiry, e.unit_cost
          FROM expired e JOIN net n ON n.product_id = e.product_id AND n.lot = e.lot
         GROUP BY e.product_id, e.lot, n.location_id, e.expiry, e.unit_cost
        HAVING SUM(n.quantity) > 0
    """  # table names come from the code; every value is a parameter
    params = [hospital.pk, adapt(end), *since_params, hospital.pk, connection.ops.adapt_datefield_value(as_of),
              *held_params, *opening_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Raw rows as the ORM would read them (SQLite returns dates as text, decimals as floats).
    expiry_field, cost_field = LotBalance._meta.get_field("expiry"), LotBalance._meta.get_field("unit_cost")
    cent = Decimal(1).scaleb(-cost_field.decimal_places)
    return [
        LotInStock(product, lot, place, int(quantity), expiry_field.to_python(expiry),
                   cents(cost_field.to_python(unit_cost).quantize(cent)))
        for product, lot, place, quantity, expiry, unit_cost in sorted(rows, key=operator.itemgetter(0, 1, 2))
    ]


# Rows of LotBalance past their expiry from which `expired_lots_in_stock` narrows the lots first (see there).
NARROW_EXPIRED_FROM = 20_000


def _expired_rows_at_least(hospital: Hospital, as_of: datetime.date, count: int) -> bool:
    """Whether the hospital's LotBalance has `count` rows past their expiry on `as_of` (read up to `count`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {LotBalance._meta.db_table} WHERE hospital_id = %s AND expiry < %s"
            " LIMIT %s) rows_past",
            [hospital.pk, connection.ops.adapt_datefield_value(as_of), count],
        )  # the table name comes from the model
        return cursor.fetchone()[0] >= count


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


class MovementTotals(NamedTuple):
    """What the ledger received and expensed to departments in a stretch of time (exact amounts)."""

    received_quantity: int
    received_amount: Decimal
    expensed_quantity: int
    expensed_amount: Decimal


def movement_totals(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> MovementTotals:
    """Received in [start, end) (RECEIPT movements, at unit cost or at the cost of the layer each lot
    receipt opened) and expensed to departments (科室领用即消耗: at the cost of the layers drawn, never
    billed), read from the ledger. What a closed month stores (`ClosedPeriod.received_quantity`…)."""
    receipts = Movement.objects.filter(hospital=hospital, kind=Movement.Kind.RECEIPT, occurred_at__gte=start,
                                       occurred_at__lt=end, to_location__isnull=False)
    # The unit's cost, and the cost of the layers a lot's receipt opened, looked up by id for each receipt
    # (subqueries, as a LEFT JOIN gives them: none for a lot's unit, none for a unit's layers): joined, the
    # planner hashed the whole unit table (~350,000 rows, 0.13 s) for a six-day stretch's ~4,000 receipts,
    # having estimated 25,000, and seq-scanned every lot layer (~400,000, 0.2-0.3 s) for its ~460 lot receipts.
    unit_cost = Subquery(Unit.objects.filter(pk=OuterRef("unit_id")).values("unit_cost"))
    layers_cost = Subquery(LotMovementLayer.objects.filter(movement_id=OuterRef("pk")).order_by().values(
        total=Func(F("quantity") * F("unit_cost"), function="SUM", output_field=MONEY)))
    received = receipts.aggregate(
        total_quantity=Coalesce(Sum("quantity"), 0),
        unit_amount=Sum(unit_cost, output_field=MONEY),
        lot_amount=Sum(Case(When(unit__isnull=True, then=layers_cost), output_field=MONEY)),
    )
    lot_amount = received["lot_amount"]
    expensed = LotMovementLayer.objects.filter(
        movement__hospital=hospital, movement__kind=Movement.Kind.DEPARTMENT_EXPENSE, movement__occurred_at__gte=start,
        movement__occurred_at__lt=end,
    ).aggregate(total_quantity=Coalesce(Sum("quantity"), 0),
                total_amount=Sum(ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)))
    return MovementTotals(received["total_quantity"], cents(received["unit_amount"]) + cents(lot_amount),
                          expensed["total_quantity"], cents(expensed["total_amount"]))


def period_totals(hospital: Hospital, start: datetime.datetime, end: datetime.datetime,
                  billing: PeriodBilling | None = None, *, from_closed_months: bool = True) -> PeriodTotals:
    """Received and expensed (`movement_totals`), and — given `billing`, the period's `period_billing`,
    which summed them with its comparison — consumed (not refunded) and billed.

    The closed months inside the period whose totals are stored are added up instead of their movements
    (as `flow_sums_sql` adds up their flows): the ledger is read only before the first of them and after
    the last; a closed month starting before `start` is added whole and the ledger from its start to
    `start` taken off. `from_closed_months=False` reads every movement of the period (what the stored
    months must add up to)."""
    months = months_with_totals(hospital.pk, start, end) if from_closed_months else []
    stretches = [(start, end, 1)]
    if months:
        first, last = months[0].starts_at, months[-1].ends_at
        stretches = [(start, first, 1) if first >= start else (first, start, -1), (last, end, 1)]
    sums = [sum(getattr(month, name) for month in months) for name in MovementTotals._fields]
    for low, high, sign in stretches:
        if low < high:
            sums = [total + sign * value for total, value in zip(sums, movement_totals(hospital, low, high), strict=True)]
    received_quantity, received_amount, expensed_quantity, expensed_amount = sums
    totals = PeriodTotals(received_quantity, cents(received_amount), expensed_quantity=expensed_quantity,
                          expensed_amount=cents(expensed_amount))
    if billing is not None:
        totals.consumed_quantity, totals.consumed_amount = billing.used_quantity, cents(billing.used_amount)
        totals.billed_quantity, totals.billed_amount = billing.quantity, cents(billing.amount)
    return totals


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


class AgreementPrice(NamedTuple):
    """A supply agreement's price and dates (`agreements_by_product`), `supplier` its supplier's name."""

    supplier_id: int
    supplier: str
    unit_price: Decimal
    valid_from: datetime.date
    valid_to: datetime.date
    is_active: bool


def agreements_by_product(hospital: Hospital, product_ids: set[int]) -> dict[int, list[AgreementPrice]]:
    """Every supply agreement (the price history) of these products, oldest first, as rows."""
    found: dict[int, list[AgreementPrice]] = {}
    for product, *agreement in SupplyAgreement.objects.filter(hospital=hospital, product__in=product_ids).order_by(
        "valid_from", "pk"
    ).values_list("product_id", "supplier_id", "supplier__name", "unit_price", "valid_from", "valid_to", "is_active"):
        found.setdefault(product, []).append(AgreementPrice(*agreement))
    return found
