"""Tables as spreadsheet files: CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX.

Writing: cells that a spreadsheet would run as a formula (text starting with = + - @) are quoted with a
leading apostrophe: a product name or a scanned code must never execute. Used by downloads
(`inventory/web/export.py`) and by background jobs that write report files.

Reading: `read_table` gives the rows of an uploaded CSV or XLSX (imports of HIS settlements and
department revenue), refusing with FILE_* codes what it cannot read.
"""
import csv
import datetime
import io
import zipfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from django.utils import timezone
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.writer.excel import ExcelWriter

from inventory.errors import Refusal, Refused

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


def reproducible_xlsx(workbook: Workbook, moment: datetime.datetime) -> bytes:
    """The workbook's bytes, the same at every rendering: the document is dated `moment`, an aware
    time (openpyxl's
    save() stamps it with the clock) and so is every zip entry (zipfile dates them with the clock).
    Hashed report files are rendered again and compared, so nothing in them may depend on when."""
    properties = workbook.properties
    properties.created = properties.modified = moment.astimezone(datetime.UTC).replace(tzinfo=None, microsecond=0)
    properties.creator = properties.lastModifiedBy = "SPD"
    buffer = io.BytesIO()
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    return with_fixed_zip_dates(buffer.getvalue(), timezone.localtime(moment))


def with_fixed_zip_dates(data: bytes, moment: datetime.datetime) -> bytes:
    """The same zip with every entry dated `moment`."""
    stamp = (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=stamp)
            fixed.compress_type, fixed.external_attr = zipfile.ZIP_DEFLATED, entry.external_attr
            target.writestr(fixed, source.read(entry.filename))
    return output.getvalue()


def xlsx_cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, Decimal, datetime.date, datetime.datetime)):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)  # XLSX has no time zones; callers pass local times
        return value
    return safe_text(str(value))


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


# --- reading ------------------------------------------------------------------------------------------


def read_table(data: bytes, filename: str) -> list[tuple[int, list]]:
    """The rows of an uploaded table, `(line or row number, cells)`, by the file's extension: .csv,
    or .xlsx/.xlsm (the first sheet). Another extension is FILE_TYPE_UNSUPPORTED."""
    name = filename.lower()
    if name.endswith(".csv"):
        return csv_rows(data)
    if name.endswith((".xlsx", ".xlsm")):
        return xlsx_rows(data)
    raise Refused(Refusal.FILE_TYPE_UNSUPPORTED)


def csv_rows(data: bytes) -> list[tuple[int, list]]:
    """The rows of a CSV file with their line numbers: UTF-8 (with or without BOM) or GBK/GB18030 as
    Chinese Excel saves it; tab-separated if its first line has tabs and no commas."""
    if b"\x00" in data:  # no UTF-8 or GBK text has NUL bytes; a UTF-16 export (or a binary file) has
        raise Refused(Refusal.FILE_ENCODING_UNKNOWN)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise Refused(Refusal.FILE_ENCODING_UNKNOWN) from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error:
        raise Refused(Refusal.FILE_UNREADABLE, format="CSV") from None


def xlsx_rows(data: bytes) -> list[tuple[int, list]]:
    """The rows of the first sheet of an XLSX file (cell values, formulas read as their cached
    values) with their row numbers."""

    # openpyxl raises whatever its zip and XML layers raise on a damaged or hand-made file (BadZipFile,
    # KeyError, XML ParseError — a SyntaxError —, ValueError…), while opening or, read-only, while reading.
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError, TypeError):
        raise Refused(Refusal.FILE_UNREADABLE, format="XLSX") from None
    try:
        sheet = workbook.worksheets[0]
        return [(number, list(row)) for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    except (KeyError, OSError, ValueError, SyntaxError, TypeError, IndexError, zipfile.BadZipFile):
        raise Refused(Refusal.FILE_UNREADABLE, format="XLSX") from None
    finally:
        workbook.close()
