"""The auditors' reports of a reconciliation run: CSV, XLSX and PDF, stored with their SHA-256.

The CSV and XLSX hold the whole report: the summary (totals received, consumed and billed;
findings by type with their amounts), the findings, and the 进销存 table, one row per product and
location. The PDF — the document auditors print and sign — holds the summary and the findings,
and of the 进销存 table its totals per location with a grand total, then names the detail: its
number of rows and the SHA-256 of the CSV rendered with it. The files are deterministic — the same
run and data give the same bytes — so that the SHA-256 stored with each file (and shown by the
API) can prove that a printed or downloaded report is the stored one, and the signed PDF binds
the detail it does not print:

- every timestamp inside a file is the run's `finished_at` (XLSX document properties, created and
  modified, and the dates of its zip entries; reportlab's `invariant` mode fixes the PDF's own
  dates and id);
- rows come in a fixed order (findings in their stored order, the table by location and product,
  its totals by location in the table's order).

Each report also prints the *data hash*: the SHA-256 of the report's content as canonical JSON,
without the run's id and time. Two runs of the same period over the same data have the same data
hash, whatever their files' hashes.

CSV is UTF-8 with a byte-order mark (Excel then reads it as UTF-8); text that a spreadsheet would
take for a formula is prefixed with an apostrophe, and XLSX cells hold text as text. The PDF uses
reportlab's built-in CID font STSong-Light for Chinese, so no font file is needed.
"""
import csv
import datetime
import hashlib
import io
import json
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import Finding, ReconciliationRun
from inventory.reports_database import REPORTS, reports_reads
from inventory.selectors.flow_table import flow_table_rows
from inventory.spreadsheets import reproducible_xlsx

TITLE = "进销存对账报告"
KIND_LABELS = {
    Finding.Kind.INVENTORY_MISMATCH: "账实不符",
    Finding.Kind.USED_NOT_BILLED: "漏收（已用未收费）",
    Finding.Kind.BILLED_NOT_USED: "虚记（收费未使用）",
    Finding.Kind.BILLED_QTY_EXCEEDS_USED: "多记（收费数量大于使用）",
    Finding.Kind.PRICE_ABOVE_PURCHASE: "高于进价收费",
    Finding.Kind.PRICE_NOT_ADJUSTED: "调价后未调整收费",
    Finding.Kind.MULTI_SUPPLIER_HIGHEST_PRICE: "多家供应商按最高价收费",
    Finding.Kind.ZERO_COST_BILLED: "赠品/零成本耗材收费",
    Finding.Kind.SUBSTITUTION: "串换收费",
    Finding.Kind.CONSIGNMENT_UNSETTLED: "寄售已用未结算",
    Finding.Kind.EXPIRED_IN_STOCK: "过期耗材在库",
    Finding.Kind.SET_PARTNER_MISSING: "配套组件缺用",
}
SUMMARY_HEADER = ["项目", "数量", "金额"]
KINDS_HEADER = ["发现类型", "代码", "条数", "涉及金额"]
FINDINGS_HEADER = [
    "序号", "类型", "院内码", "产品名称", "序列号", "批号", "库位", "就诊号", "收费编码", "应为", "实为", "涉及金额", "说明",
]
INVENTORY_HEADER = [
    "库位编码", "库位", "院内码", "产品名称", "期初", "入库", "调入", "调出", "使用", "退费回库", "退货", "报损", "盘点调整",
    "其他", "科室领用", "加工", "期末",
]
_FIRST_QUANTITY = INVENTORY_HEADER.index("期初")
# The 进销存 of the PDF: per location, its number of rows in the table and each quantity column summed.
LOCATION_TOTALS_HEADER = ["库位编码", "库位", "明细行数", *INVENTORY_HEADER[_FIRST_QUANTITY:]]
INVENTORY_COLUMNS = (
    "location_code", "location_name", "product_code", "product_name", "opening", "received", "transferred_in",
    "transferred_out", "consumed", "refunded", "returned", "scrapped", "adjusted", "other", "expensed", "processed", "closing",
)
_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def content_type(report_format: str) -> str:
    return _FORMATS[report_format]


@dataclass(frozen=True)
class ReportContent:
    """What every format of a run's report shows, in order; values are str, int or Decimal."""

    run_id: int
    hospital: str
    period: str
    finished_at: datetime.datetime
    summary: list[list]
    kinds: list[list]
    findings: list[list]
    inventory: list[list]
    data_sha256: str

    @property
    def header(self) -> list[list]:
        return [
            ["运行编号", self.run_id], ["医院", self.hospital], ["期间", self.period],
            ["完成时间", timezone.localtime(self.finished_at).strftime("%Y-%m-%d %H:%M:%S")],
            ["数据 SHA-256", self.data_sha256],
        ]


def report_content(run: ReconciliationRun) -> ReportContent:
    """The report of a run as rows; the run's findings are read in their stored order, its 进销存 table
    in the table's (inventory.selectors.flow_table: the same rows, stored in their own table or, for
    a run made before, in its summary, give the same content and data hash)."""
    summary = run.summary
    totals, by_kind = summary["totals"], summary["findings"]["by_kind"]
    findings = list(run.findings.select_related("product", "unit", "location").order_by("pk"))
    records = [_finding_record(finding) for finding in findings]
    hospital = summary["hospital"]
    table = flow_table_rows(run)
    canonical = {
        "hospital": hospital["code"], "period": summary["period"], "billing_grace_days": summary["billing_grace_days"],
        "totals": totals, "findings": records, "inventory": table,
    }
    data = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return ReportContent(
        run_id=run.pk, hospital=f"{hospital['code']} {hospital['name']}",
        period=f"{summary['period']['start']} 至 {summary['period']['end']}", finished_at=run.finished_at,
        summary=[
            ["入库", totals["received"]["quantity"], Decimal(totals["received"]["amount"])],
            ["使用（不含退费）", totals["consumed"]["quantity"], Decimal(totals["consumed"]["amount"])],
            ["HIS 收费", totals["billed"]["quantity"], Decimal(totals["billed"]["amount"])],
            *([["科室领用（不计费）", totals["expensed"]["quantity"], Decimal(totals["expensed"]["amount"])]]
              if "expensed" in totals else []),
            ["发现", summary["findings"]["count"], Decimal(summary["findings"]["amount"])],
        ],
        kinds=[
            [KIND_LABELS[kind], kind, by_kind[kind]["count"], Decimal(by_kind[kind]["amount"])]
            for kind in Finding.Kind.values if kind in by_kind  # a run made before a kind existed lacks it
        ],
        findings=[
            [
                number, KIND_LABELS[record["kind"]], record["product_code"], record["product_name"], record["serial"],
                record["lot"], record["location"], record["encounter"], record["his_charge_code"],
                _decimal(record["expected"]), _decimal(record["actual"]), Decimal(record["amount"]), record["message"],
            ]
            for number, record in enumerate(records, start=1)
        ],
        inventory=[[row.get(column, 0) for column in INVENTORY_COLUMNS] for row in table],
        data_sha256=hashlib.sha256(data.encode()).hexdigest(),
    )


def _finding_record(finding: Finding) -> dict:
    """A finding as data, without anything that differs between two runs of the same data."""
    return {
        "kind": finding.kind, "product_code": finding.product.internal_code if finding.product else "",
        "product_name": finding.product.name if finding.product else "",
        "serial": finding.unit.serial if finding.unit else "", "lot": finding.lot,
        "location": finding.location.name if finding.location else "", "encounter": finding.encounter,
        "his_charge_code": finding.his_charge_code,
        "expected": None if finding.expected is None else str(finding.expected),
        "actual": None if finding.actual is None else str(finding.actual),
        "amount": str(finding.amount), "message": finding.message, "evidence": finding.evidence,
    }


def _decimal(value: str | None) -> Decimal | str:
    return "" if value is None else Decimal(value)


# --- storing -------------------------------------------------------------------------------------


def render_reports(content: ReportContent) -> dict[str, bytes]:
    """The three files of a report; the CSV first, since the PDF names it by its SHA-256."""
    csv_data = render_csv(content)
    return {
        "csv": csv_data, "xlsx": render_xlsx(content),
        "pdf": render_pdf(content, csv_sha256=hashlib.sha256(csv_data).hexdigest()),
    }


REPORT_FIELDS = [
    "summary", "report_csv", "report_xlsx", "report_pdf", "csv_sha256", "xlsx_sha256", "pdf_sha256",
]


def ensure_reports(run_pk: int) -> ReconciliationRun | None:
    """Render and store the reports of a DONE run that has none yet; the run (None if it is gone).

    Idempotent — the task that calls it may be delivered twice, and the files are deterministic —
    and under the run's row lock, so that two deliveries do not write the files side by side.

    What the reports say is read on the reports replica when there is one and it shows the run DONE
    (its findings and table came in the same commit), in one snapshot; else on the primary."""
    content = None
    with reports_reads() as alias:
        copy = ReconciliationRun.objects.filter(pk=run_pk).select_related("hospital").first()
        if alias == REPORTS and copy is not None and copy.status == ReconciliationRun.Status.DONE and not copy.has_reports:
            content = report_content(copy)
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update(of=("self",)).filter(pk=run_pk).first()
        if run is not None and run.status == ReconciliationRun.Status.DONE and not run.has_reports:
            store_reports(run, content=content)
            run.save(update_fields=REPORT_FIELDS)
    return run


def store_reports(run: ReconciliationRun, *, content: ReportContent | None = None) -> None:
    """Write the run's three reports to its FileFields with their SHA-256, and the data hash to its
    summary (`content` when read already, e.g. on the replica). The caller saves the run's
    `REPORT_FIELDS` in its transaction. A report already stored under the run's name — from an
    earlier attempt at this run — is replaced, not kept beside it."""
    content = content or report_content(run)
    run.summary = {**run.summary, "data_sha256": content.data_sha256}
    for report_format, data in render_reports(content).items():
        field_file = getattr(run, f"report_{report_format}")
        relative = f"{run.hospital_id}/run-{run.pk}.{report_format}"
        stored_name = field_file.field.generate_filename(run, relative)
        if field_file.storage.exists(stored_name):
            field_file.storage.delete(stored_name)
        field_file.save(relative, ContentFile(data), save=False)
        setattr(run, f"{report_format}_sha256", hashlib.sha256(data).hexdigest())


# --- CSV -----------------------------------------------------------------------------------------

# Text starting like a formula is prefixed with an apostrophe, so that a crafted product name or
# message cannot run as a formula when the file is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render_csv(content: ReportContent) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    sections = [
        [[TITLE], *content.header],
        [["汇总"], SUMMARY_HEADER, *content.summary],
        [KINDS_HEADER, *content.kinds],
        [["发现"], FINDINGS_HEADER, *content.findings],
        [["进销存"], INVENTORY_HEADER, *content.inventory],
    ]
    for number, section in enumerate(sections):
        if number:
            writer.writerow([])
        for row in section:
            writer.writerow([_csv_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX ----------------------------------------------------------------------------------------


def render_xlsx(content: ReportContent) -> bytes:
    """The workbook in openpyxl's write-only mode: rows are streamed to the sheet's XML as they are
    appended, instead of ~1.4 million cell objects (a large hospital's year) built and then saved."""
    workbook = Workbook(write_only=True)
    workbook.properties.title = f"{TITLE} #{content.run_id}"
    top = [[TITLE], *content.header, []]
    totals = [SUMMARY_HEADER, *content.summary, []]
    _fill(workbook.create_sheet("汇总"), [*top, *totals, KINDS_HEADER, *content.kinds], widths=(28, 70, 10, 14),
          bold_rows={1, len(top) + 1, len(top) + len(totals) + 1})
    _fill(workbook.create_sheet("发现"), [FINDINGS_HEADER, *content.findings], bold_rows={1}, freeze=True,
          widths=(6, 22, 12, 28, 16, 12, 16, 14, 12, 10, 10, 12, 80))
    _fill(workbook.create_sheet("进销存"), [INVENTORY_HEADER, *content.inventory], bold_rows={1}, freeze=True,
          widths=(12, 18, 12, 28, *[9] * 11))
    return reproducible_xlsx(workbook, content.finished_at)


def _fill(sheet, rows: list[list], *, bold_rows: set[int], widths: tuple[int, ...], freeze: bool = False) -> None:
    """Append `rows` to a write-only sheet; column widths and frozen panes are set first, as
    write-only mode requires. Plain values need no cell object: only bold cells, amounts (number
    format) and text that openpyxl would take for a formula or an error code are given one."""
    for index, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    if freeze:
        sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    for row_number, row in enumerate(rows, start=1):
        if row_number in bold_rows:
            sheet.append([_xlsx_cell(sheet, value, font=bold) for value in row])
        elif any(isinstance(value, Decimal) or _typed_as_other_than_text(value) for value in row):
            sheet.append([_xlsx_cell(sheet, value) for value in row])
        else:
            sheet.append(row)


def _typed_as_other_than_text(value: object) -> bool:
    """Text that openpyxl, given a plain value, would store as a formula or an error code."""
    return isinstance(value, str) and (value.startswith("=") or value in ERROR_CODES)


def _xlsx_cell(sheet, value: object, *, font: Font | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with
    elif isinstance(value, Decimal):
        cell.number_format = "#,##0.00"
    if font is not None:
        cell.font = font
    return cell


# --- PDF -----------------------------------------------------------------------------------------

FONT = "STSong-Light"
CELL_FONT_SIZE, CELL_LEADING = 7, 9
CELL_PADDING = 12  # reportlab's default left + right cell padding, in points
# Tables are laid out in blocks of this many rows: reportlab splits a table across pages by copying
# its remaining rows, which is quadratic in the table's length (a large hospital's year has
# thousands of findings); blocks keep it linear. Each block starts with the header row.
TABLE_BLOCK_ROWS = 300


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def render_pdf(content: ReportContent, *, csv_sha256: str) -> bytes:
    """The signed report: the 进销存 table only as totals per location, and a statement naming the
    detail by its row count and `csv_sha256`, the SHA-256 of the CSV of the same content."""
    font = _font()
    styles = {
        "title": ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=6),
        "heading": ParagraphStyle("heading", fontName=font, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK"),
        "note": ParagraphStyle("note", fontName=font, fontSize=9, leading=12, wordWrap="CJK", spaceBefore=4),
    }
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=landscape(A4), invariant=1, leftMargin=10 * mm, rightMargin=10 * mm, topMargin=12 * mm,
        bottomMargin=14 * mm, title=f"{TITLE} #{content.run_id}", author="SPD", creator="SPD",
        subject=f"{content.hospital} {content.period}",
    )

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(
            10 * mm, 7 * mm,
            f"{TITLE} · 运行 #{content.run_id} · {content.hospital} · {content.period} · 数据 SHA-256 {content.data_sha256}",
        )
        canvas.drawRightString(landscape(A4)[0] - 10 * mm, 7 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    table_style = TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (0, 0), (-1, -1), font, CELL_FONT_SIZE, CELL_LEADING),
    ])

    def cell(value: object, width: float) -> str | Paragraph:
        """A Paragraph (wrapped, CJK line breaks) only for text that does not fit on one line: a
        plain cell draws the same text in the same font for a fraction of the cost."""
        text = "" if value is None else str(value)
        if "\n" not in text and pdfmetrics.stringWidth(text, font, CELL_FONT_SIZE) <= width - CELL_PADDING:
            return text
        return Paragraph(_text(value), styles["cell"])

    def table(header: list, rows: list[list], widths: list[float]) -> list[Table]:
        widths = [width * mm for width in widths]
        head = [cell(value, width) for value, width in zip(header, widths, strict=True)]
        body = [[cell(value, width) for value, width in zip(row, widths, strict=True)] for row in rows]
        blocks = []
        for start in range(0, max(len(body), 1), TABLE_BLOCK_ROWS):
            block = Table([head, *body[start:start + TABLE_BLOCK_ROWS]], colWidths=widths, repeatRows=1)
            block.setStyle(table_style)
            blocks.append(block)
        return blocks

    story = [
        Paragraph(TITLE, styles["title"]),
        *table(["", ""], content.header, [40, 180]),
        Paragraph("汇总", styles["heading"]),
        *table(SUMMARY_HEADER, content.summary, [50, 30, 40]),
        Spacer(1, 4 * mm),
        *table(KINDS_HEADER, content.kinds, [60, 70, 20, 35]),
        Paragraph(f"发现（{len(content.findings)} 条）", styles["heading"]),
        *table(FINDINGS_HEADER, content.findings or [["无"] + [""] * 12],
               [9, 22, 16, 28, 18, 14, 18, 16, 16, 14, 14, 16, 76]),
        Paragraph("进销存（按库位合计）", styles["heading"]),
        *table(LOCATION_TOTALS_HEADER, inventory_by_location(content.inventory), [24, 38, 16, *[15] * (len(LOCATION_TOTALS_HEADER) - 3)]),
        Paragraph(
            f"进销存明细共 {len(content.inventory)} 行，见本次对账的 CSV / XLSX 报告，CSV 文件 SHA-256：{csv_sha256}",
            styles["note"],
        ),
    ]
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def inventory_by_location(inventory: list[list]) -> list[list]:
    """The 进销存 table summed per location, in the table's order, then a grand-total row (合计)."""
    width = len(LOCATION_TOTALS_HEADER) - 2  # the row count, then the quantities
    by_location: dict[tuple, list[int]] = {}
    for row in inventory:
        totals = by_location.setdefault((row[0], row[1]), [0] * width)
        totals[0] += 1
        for index, value in enumerate(row[_FIRST_QUANTITY:], start=1):
            totals[index] += value
    grand = [sum(totals[index] for totals in by_location.values()) for index in range(width)]
    return [*([code, name, *totals] for (code, name), totals in by_location.items()), ["合计", "", *grand]]


def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
