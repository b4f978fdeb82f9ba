"""A consignment settlement statement as the supplier downloads it: CSV, XLSX or PDF.

The same lines as the portal shows (`selectors.portal_statements`: no encounter, no department),
a totals row, and on the PDF the statement's facts and every step of its exchange (who, when, why).
CSV and XLSX cells go through `inventory.spreadsheets` (text that looks like a formula is quoted);
the PDF uses reportlab's built-in CID font like the other printed documents.
"""
import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone, translation
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import SupplierSettlement
from inventory.selectors.portal_statements import COLUMNS, person, statement_events, statement_lines
from inventory.services.documents_pdf import _font, _money
from inventory.spreadsheets import XLSX_TYPE, csv_cell, workbook

FORMATS = ("csv", "xlsx", "pdf")
TOTAL = "合计"
WIDTHS = [10, 20, 48, 30, 52, 26, 20, 22, 12, 18, 20]  # mm, 278 in all: A4 landscape within 10 mm margins


@dataclass(frozen=True)
class StatementFile:
    content: bytes
    content_type: str
    filename: str


def statement_file(settlement: SupplierSettlement, file_format: str) -> StatementFile:
    """The statement in `file_format` (csv, xlsx or pdf)."""
    lines = statement_lines(settlement)
    rows = [line.as_row() for line in lines]
    total = ["", TOTAL, "", "", "", "", "", "", sum(line.quantity for line in lines), "",
             sum((line.amount for line in lines), Decimal("0.00"))]
    name = f"settlement-{settlement.pk}-{settlement.period_start:%Y%m%d}-{settlement.period_end:%Y%m%d}"
    if file_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for row in [*rows, total]:
            writer.writerow([csv_cell(value) for value in row])
        return StatementFile(("\ufeff" + buffer.getvalue()).encode("utf-8"), "text/csv; charset=utf-8", f"{name}.csv")
    if file_format == "xlsx":
        buffer = io.BytesIO()
        workbook(COLUMNS, [*rows, total], "寄售结算单").save(buffer)
        return StatementFile(buffer.getvalue(), XLSX_TYPE, f"{name}.xlsx")
    if file_format == "pdf":
        with translation.override("zh-hans"):  # the printed statement is in Chinese, whoever downloads it
            return StatementFile(_pdf(settlement, rows, total), "application/pdf", f"{name}.pdf")
    raise ValueError(f"unknown statement file format {file_format!r}")


def _pdf(settlement: SupplierSettlement, rows: list[list], total: list) -> bytes:
    font = _font()
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1, spaceAfter=4)
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10, wordWrap="CJK")

    def text(value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, str):
            return Paragraph(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), cell_style)
        return _money(value) if isinstance(value, Decimal) else str(value)

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=landscape(A4), invariant=1, leftMargin=10 * mm, rightMargin=10 * mm, topMargin=12 * mm,
        bottomMargin=12 * mm, title=f"寄售结算单 {settlement.pk}", author="SPD", creator="SPD",
    )
    facts = Table([
        ["医院", settlement.hospital.name, "供应商", settlement.supplier.name],
        ["结算单号", str(settlement.pk), "结算期间", f"{settlement.period_start} 至 {settlement.period_end}"],
        ["状态", str(settlement.get_stage_display()), "", ""],
    ], colWidths=[25 * mm, 110 * mm, 25 * mm, 118 * mm])
    facts.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font, 9)]))
    lines = Table(
        [list(COLUMNS), *[[text(value) for value in row] for row in rows], [text(value) for value in total]],
        colWidths=[width * mm for width in WIDTHS], repeatRows=1,
    )
    lines.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("ALIGN", (8, 1), (10, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    steps = [["步骤", "时间", "经办人", "原因"]] + [
        [str(event.get_kind_display()), f"{timezone.localtime(event.at):%Y-%m-%d %H:%M}", person(event.by), text(event.reason)]
        for event in statement_events(settlement)
    ]
    history = Table(steps, colWidths=[50 * mm, 40 * mm, 40 * mm, 148 * mm])
    history.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font, 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey)]))
    document.build([
        Paragraph("寄售结算单", title), facts, Spacer(1, 4 * mm), lines, Spacer(1, 6 * mm), history,
    ])
    return buffer.getvalue()
