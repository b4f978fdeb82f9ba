"""File downloads of tables: CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX.

Cells that a spreadsheet would run as a formula (text starting with = + - @) are quoted with a
leading apostrophe: a product name or a scanned code must never execute.
"""
import csv
import datetime
import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

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
from inventory.web.forms import StockFilterForm

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: object) -> object:
    """The value as a spreadsheet should hold it: text that could be a formula is quoted."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return value
    return safe_text(str(value))


class _Echo:
    def write(self, value: str) -> str:
        return value


def write_csv(path: Path, header: Iterable[object], rows: Iterable[Iterable[object]]) -> None:
    """Rows as a CSV file at `path` (UTF-8 with BOM, as the download), for a background job."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        handle.write("\ufeff")
        writer.writerow([str(label) for label in header])
        for row in rows:
            writer.writerow([_csv_cell(value) for value in row])


def write_xlsx(path: Path, header: Iterable[object], rows: Iterable[Iterable[object]], *, sheet: str = "Sheet1") -> None:
    """Rows as an XLSX file at `path`, for a background job."""
    _workbook(header, rows, sheet).save(path)


def csv_response(filename: str, header: Iterable[object], rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    """Stream rows as a CSV download; the header's labels may be lazy translations."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([str(label) for label in header])
        for row in rows:
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(
    filename: str, header: Iterable[object], rows: Iterable[Iterable[object]], *, sheet: str = "Sheet1"
) -> HttpResponse:
    """Rows as an XLSX download (one sheet, bold header, dates and numbers typed)."""
    buffer = io.BytesIO()
    _workbook(header, rows, sheet).save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _workbook(header: Iterable[object], rows: Iterable[Iterable[object]], sheet: str) -> Workbook:
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    header_cells = []
    for label in header:
        cell = WriteOnlyCell(worksheet, value=str(label))
        cell.font = Font(bold=True)
        header_cells.append(cell)
    worksheet.append(header_cells)
    for row in rows:
        worksheet.append([_xlsx_cell(value) for value in row])
    return workbook


def _xlsx_cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime.date, datetime.datetime)):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)  # XLSX has no time zones; callers pass local times
        return value
    return safe_text(str(value))


# --- the stock page's exports as a background job ------------------------------------------------

STOCK_EXPORTS = {"units", "lots"}
WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


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
