"""File downloads of tables: CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX.

Cells that a spreadsheet would run as a formula (text starting with = + - @) are quoted with a
leading apostrophe: a product name or a scanned code must never execute.
"""
import csv
import datetime
import io
from collections.abc import Iterable
from decimal import Decimal

from django.http import HttpResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

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
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _xlsx_cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime.date, datetime.datetime)):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)  # XLSX has no time zones; callers pass local times
        return value
    return safe_text(str(value))
