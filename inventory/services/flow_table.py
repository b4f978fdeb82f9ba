"""Storing a reconciliation run's 进销存 table (StockFlowRow), in the table's order, in one go.

A large hospital's table has ~90,000 rows a run. On PostgreSQL a run's table goes from the ledger
into StockFlowRow without leaving the database (`insert_flow_rows`): the aggregate of
`inventory.selectors.reconciliation.flow_sums_sql`, its empty rows left out, numbered in the
table's order (location code, then product code, compared by code point as Python compares
strings: the "C" collation) — no row passes through Python. Rows computed in Python
(`stock_flows`) are written with one COPY (psycopg's `cursor.copy`, binary), elsewhere with
bulk_create (`store_flow_rows`). The caller writes them in the transaction that marks the run DONE;
after that they are final (the migration's trigger). Read them with inventory.selectors.flow_table.

A closed month's flows (PeriodFlow, the table's columns received through processed of every place
with a flow) are stored alike by the close, from the rows of its 月报 (`store_month_flows`).
"""
import datetime
import operator
from collections.abc import Sequence

from django.db import connection

from inventory.models import ClosedPeriod, Hospital, Location, PeriodFlow, Product, ReconciliationRun, StockFlowRow
from inventory.selectors.reconciliation import (
    FLOW_SUMS_WORK_MEM,
    QUANTITY_COLUMNS,
    FlowRow,
    flow_sums_sql,
    ledger_read_for_flows,
    without_jit,
)
from inventory.services.sql_rows import write_rows

COLUMNS = ("run_id", "position", "product_id", "location_id", *QUANTITY_COLUMNS, "closing")
_TYPES = ("int8", "int4", "int8", "int8", *["int4"] * (len(QUANTITY_COLUMNS) + 1))
_quantities = operator.attrgetter(*QUANTITY_COLUMNS)


def store_flow_rows(run: ReconciliationRun, flows: Sequence[FlowRow]) -> int:
    """Write `flows` (the table, in its order) as the run's rows; the number written."""
    rows = (
        (run.pk, position, row.product_id, row.location_id, *_quantities(row), row.closing)
        for position, row in enumerate(flows)
    )
    write_rows(StockFlowRow, COLUMNS, _TYPES, rows)
    return len(flows)


MONTH_FLOW_COLUMNS = QUANTITY_COLUMNS[1:]  # without the opening
_MONTH_COLUMNS = ("period_id", "product_id", "location_id", *MONTH_FLOW_COLUMNS)
_MONTH_TYPES = ("int8", "int8", "int8", *["int4"] * len(MONTH_FLOW_COLUMNS))
_flows = operator.attrgetter(*MONTH_FLOW_COLUMNS)


def store_month_flows(period: ClosedPeriod, flows: Sequence[FlowRow]) -> int:
    """Write the flows of the closed month `period` (its table, `flows`) as its PeriodFlow rows: the
    rows with a flow, without their opening; the number written."""
    rows = [(period.pk, row.product_id, row.location_id, *values)
            for row in flows if any(values := _flows(row))]
    write_rows(PeriodFlow, _MONTH_COLUMNS, _MONTH_TYPES, rows)
    return len(rows)


def _closing_sql() -> str:
    """The closing as SQL over the quantity columns, with the signs of `FlowRow.closing`."""
    terms = []
    for name in QUANTITY_COLUMNS:
        sign = FlowRow(0, 0, **{name: 1}).closing
        assert sign in (1, -1), name
        terms.append(f"{'+' if sign > 0 else '-'} f.{name}")
    return " ".join(terms).lstrip("+ ")


def insert_flow_rows(run: ReconciliationRun, hospital: Hospital, start: datetime.datetime,
                     end: datetime.datetime) -> int:
    """Write the 进销存 table of [start, end) as the run's rows straight from the ledger (PostgreSQL):
    the rows and the order of `stock_flows` (tested equal); the number written.

    The aggregate's non-empty rows are numbered into StockFlowRow. When it reads a long stretch of the
    ledger (more than SHORT_LEDGER_READ from the opening snapshot, or from the first movement), it goes
    into a temporary table first: `CREATE TABLE … AS` may run in parallel, as the aggregate does alone;
    an `INSERT … SELECT` may not, and took ~1.7× as long over a year's movements.
    A day after a recent snapshot reads a few days' movements: one `INSERT … SELECT`, without writing
    and reading back the temporary table's ~90,000 rows. Either way in one savepoint, the temporary
    table dropped after (and on commit, or with the savepoint on an error)."""
    sums, params = flow_sums_sql(hospital, start, end)
    read = ledger_read_for_flows(hospital, start, end)
    quote = connection.ops.quote_name
    columns = ", ".join(f"f.{name}" for name in QUANTITY_COLUMNS)
    source = f"({sums})" if read is not None and read <= SHORT_LEDGER_READ else _SUMS_TABLE
    sql = f"""
        INSERT INTO {quote(StockFlowRow._meta.db_table)} ({', '.join(COLUMNS)})
        SELECT %s, ROW_NUMBER() OVER (ORDER BY l.code COLLATE "C", p.internal_code COLLATE "C",
                                      f.location_id, f.product_id) - 1,
               f.product_id, f.location_id, {columns}, {_closing_sql()}
          FROM {source} f
          JOIN {quote(Product._meta.db_table)} p ON p.id = f.product_id
          JOIN {quote(Location._meta.db_table)} l ON l.id = f.location_id
         WHERE NOT ({' AND '.join(f"f.{name} = 0" for name in QUANTITY_COLUMNS)})
    """  # table and column names come from the code; every value is a parameter
    with connection.cursor() as cursor, without_jit(cursor, work_mem=FLOW_SUMS_WORK_MEM):
        if source != _SUMS_TABLE:
            cursor.execute(sql, [run.pk, *params])
            return cursor.rowcount
        cursor.execute(f"CREATE TEMPORARY TABLE {_SUMS_TABLE} ON COMMIT DROP AS {sums}", params)
        cursor.execute(sql, [run.pk])
        written = cursor.rowcount
        cursor.execute(f"DROP TABLE {_SUMS_TABLE}")
    return written


# On the one-year dataset (under load), by one statement: the day after the snapshot ~0.08 s sooner (0.1 s
# less CPU), 4 and 8 days after it as fast or faster, 15 days even, 29 days ~2 % slower.
SHORT_LEDGER_READ = datetime.timedelta(days=8)
_SUMS_TABLE = "spd_run_flow_sums"  # temporary, in the session's own schema
