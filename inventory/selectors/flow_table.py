"""Reading a reconciliation run's 进销存 table: every consumer (the run's page, the API, the reports
and their data hash) reads it here, as rows with the keys of `FlowRow.as_dict`, in the table's order.

A run's rows are in StockFlowRow (written by inventory.services.flow_table); the product's and the
location's code and name are read with them from the catalog. Runs made before that table existed
kept theirs in the summary's "inventory" list, which is read as it was stored (names of that day).
"""
from django.db.models import F, Q, QuerySet

from inventory.models import ReconciliationRun, StockFlowRow
from inventory.selectors.reconciliation import QUANTITY_COLUMNS

LEGACY_KEY = "inventory"  # where a run made before StockFlowRow existed holds its table
NAMES = {
    "product_code": F("product__internal_code"), "product_name": F("product__name"),
    "location_code": F("location__code"), "location_name": F("location__name"),
}
SEARCHED = {"product": ("product__internal_code", "product__name"), "location": ("location__code", "location__name")}


def stores_table_in_summary(run: ReconciliationRun) -> bool:
    """A run made before the 进销存 table had a table of its own: its rows are in its summary."""
    return LEGACY_KEY in (run.summary or {})


def flow_table(run: ReconciliationRun) -> QuerySet | list[dict]:
    """The run's 进销存 table, one dict per row (`FlowRow.as_dict`'s keys), in the table's order: a
    lazy queryset of the stored rows (pages slice it), or the summary's list for an older run."""
    if stores_table_in_summary(run):
        return run.summary[LEGACY_KEY]
    return (StockFlowRow.objects.filter(run=run).order_by("position")
            .values("product_id", "location_id", *QUANTITY_COLUMNS, "closing", **NAMES))


def flow_table_rows(run: ReconciliationRun) -> list[dict]:
    """The whole table, fetched (the reports)."""
    return list(flow_table(run))


def flow_row_count(run: ReconciliationRun) -> int:
    table = flow_table(run)
    return len(table) if isinstance(table, list) else StockFlowRow.objects.filter(run=run).count()


def search_flow_table(rows: QuerySet | list[dict], *, product: str = "", location: str = "") -> QuerySet | list[dict]:
    """The rows whose product and location contain these texts (part of a code or name, any case)."""
    for field, wanted in (("product", product.strip()), ("location", location.strip())):
        if not wanted:
            continue
        code, name = SEARCHED[field]
        if isinstance(rows, QuerySet):
            rows = rows.filter(Q(**{f"{code}__icontains": wanted}) | Q(**{f"{name}__icontains": wanted}))
        else:
            folded = wanted.casefold()
            rows = [row for row in rows if folded in str(row.get(f"{field}_code", "")).casefold()
                    or folded in str(row.get(f"{field}_name", "")).casefold()]
    return rows
