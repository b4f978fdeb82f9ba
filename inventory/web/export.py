"""File downloads of tables (CSV and XLSX, see `inventory/spreadsheets.py` for the cells) and the
stock page's exports as a background job."""
import csv
import io
from collections.abc import Iterable

from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone

from inventory.models import BackgroundJob
from inventory.selectors.stock import (
    LOT_COLUMNS,
    UNIT_COLUMNS,
    StockScope,
    filter_lot_balances,
    filter_units,
    lot_export_rows,
    unit_export_rows,
)
from inventory.services.background import JobResult, Progress, counted, scratch_file
from inventory.spreadsheets import WRITERS, XLSX_TYPE, csv_cell, workbook
from inventory.web.forms import StockFilterForm


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: Iterable[object], rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    """Stream rows as a CSV download; the header's labels may be lazy translations."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([str(label) for label in header])
        for row in rows:
            yield writer.writerow([csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(
    filename: str, header: Iterable[object], rows: Iterable[Iterable[object]], *, sheet: str = "Sheet1"
) -> HttpResponse:
    """Rows as an XLSX download (one sheet, bold header, dates and numbers typed)."""
    buffer = io.BytesIO()
    workbook(header, rows, sheet).save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- the stock page's exports as a background job ------------------------------------------------

STOCK_EXPORTS = {"units", "lots"}


def export_stock(job: BackgroundJob, progress: Progress) -> JobResult:
    """The stock page's units or lots, filtered as the page was (`params["query"]`), as CSV or XLSX,
    seen as the requester sees them (their scope)."""
    what, file_format = job.params["what"], job.params["format"]
    scope = StockScope.of(job.requested_by)
    filters = StockFilterForm(QueryDict(job.params.get("query", "")), scope=scope).filters()
    if what == "units":
        queryset, columns, rows_of = filter_units(scope, filters), UNIT_COLUMNS, unit_export_rows
    else:
        queryset, columns, rows_of = filter_lot_balances(scope, filters), LOT_COLUMNS, lot_export_rows
    total = queryset.count()
    path = scratch_file(f".{file_format}")
    WRITERS[file_format](path, columns, counted(rows_of(queryset), total=total, progress=progress))
    name = f"stock-{what}-{timezone.localtime(job.created_at):%Y%m%d-%H%M}.{file_format}"
    return JobResult(file_name=name, path=path, result={"rows": total})
