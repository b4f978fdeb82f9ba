"""Tables as spreadsheet files: CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX.

Cells that a spreadsheet would run as a formula (text starting with = + - @) are quoted with a
leading apostrophe: a product name or a scanned code must never execute. Used by downloads
(`inventory/web/export.py`) and by background jobs that write report files.
"""
import csv
import datetime
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

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


def csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return value
    return safe_text(str(value))


def write_csv(path: Path, header: Iterable[object], rows: Iterable[Iterable[object]]) -> None:
    """Rows as a CSV file at `path` (UTF-8 with BOM, as the download), for a background job."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        handle.write("\ufeff")
        writer.writerow([str(label) for label in header])
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])


def write_xlsx(path: Path, header: Iterable[object], rows: Iterable[Iterable[object]], *, sheet: str = "Sheet1") -> None:
    """Rows as an XLSX file at `path`, for a background job."""
    workbook(header, rows, sheet).save(path)


def workbook(header: Iterable[object], rows: Iterable[Iterable[object]], sheet: str) -> Workbook:
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    header_cells = []
    for label in header:
        cell = WriteOnlyCell(worksheet, value=str(label))
        cell.font = Font(bold=True)
        header_cells.append(cell)
    worksheet.append(header_cells)
    for row in rows:
        worksheet.append([xlsx_cell(value) for value in row])
    return workbook


def xlsx_cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime.date, datetime.datetime)):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)  # XLSX has no time zones; callers pass local times
        return value
    return safe_text(str(value))


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}
