"""Storing a reconciliation run's 进销存 table (StockFlowRow), in the table's order, in one go.

A large hospital's table has ~90,000 rows a run: on PostgreSQL they are written with one COPY
(psycopg's `cursor.copy`, binary), elsewhere with bulk_create. The caller writes them in the
transaction that marks the run DONE; after that they are final (the migration's trigger).
Read them with inventory.selectors.flow_table.
"""
import operator
from collections.abc import Sequence

from django.db import connection

from inventory.models import ReconciliationRun, StockFlowRow
from inventory.selectors.reconciliation import QUANTITY_COLUMNS, FlowRow

COLUMNS = ("run_id", "position", "product_id", "location_id", *QUANTITY_COLUMNS, "closing")
_TYPES = ("int8", "int4", "int8", "int8", *["int4"] * (len(QUANTITY_COLUMNS) + 1))
BATCH_SIZE = 2000  # bulk_create, off PostgreSQL
_quantities = operator.attrgetter(*QUANTITY_COLUMNS)


def store_flow_rows(run: ReconciliationRun, flows: Sequence[FlowRow]) -> int:
    """Write `flows` (the table, in its order) as the run's rows; the number written."""
    rows = (
        (run.pk, position, row.product_id, row.location_id, *_quantities(row), row.closing)
        for position, row in enumerate(flows)
    )
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(StockFlowRow._meta.db_table)
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)
    else:
        StockFlowRow.objects.bulk_create(
            (StockFlowRow(**dict(zip(COLUMNS, row, strict=True))) for row in rows), batch_size=BATCH_SIZE)
    return len(flows)
