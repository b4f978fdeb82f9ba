"""A stocktake's papers: the count sheet (盘点表) per location, and the variance report (盘点差异表).

The count sheet is printed for the people counting: blind by default (no expected quantity, so the
count is not copied from the books), sorted by shelf (the location and the locations under it, by
code), with empty columns to write the count, a quality remark and a signature.

The variance report of an approved session is stored as CSV, XLSX and PDF with the SHA-256 of each
file, as the reconciliation reports are (`inventory.services.reports`): the files are rendered from
the session alone, byte for byte the same when rendered again, and the PDF names the CSV by its
hash, so a printed copy can be tied to the data.
"""
import csv
import hashlib
import io

from django.core.files.base import ContentFile
from django.utils import timezone
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import Location, StocktakeSession
from inventory.services.reports import _font
from inventory.spreadsheets import reproducible_xlsx, safe_text

VARIANCE_HEADER = [
    "序号", "库位", "院内码", "产品名称", "序列号/批号", "所有权", "账面数", "实盘数", "复盘数", "差异", "单价", "差异金额",
    "质量备注", "盘点人", "复盘人", "调整原因", "台账记录",
]
SHEET_HEADER = ["序号", "货位", "院内码", "产品名称", "规格", "序列号/批号", "有效期", "账面数", "实盘数", "备注"]
OWNERS = {"HOSPITAL": "自有", "SUPPLIER": "寄售"}


def _lines(session: StocktakeSession):
    return session.lines.select_related("location", "product", "unit", "counted_by", "recounted_by").order_by(
        "location__code", "product__internal_code", "lot", "unit__serial", "pk")


def variance_rows(session: StocktakeSession) -> list[list]:
    """One row per line, in shelf order, in VARIANCE_HEADER order."""
    rows = []
    for number, line in enumerate(_lines(session), start=1):
        expected = line.expected_at_count if line.expected_at_count is not None else line.expected_quantity
        variance = line.variance or 0
        where = line.location.code if not line.found_at_id else f"{line.location.code} → {line.found_at.code}"
        rows.append([
            number, where, line.product.internal_code, line.product.name,
            f"SN {line.unit.serial}" if line.unit_id else f"批号 {line.lot}", OWNERS.get(line.owner, line.owner),
            expected, line.counted_quantity, line.recount_quantity, variance, line.unit_cost,
            line.unit_cost * variance, line.get_quality_display() if line.quality else "",
            line.counted_by.username if line.counted_by else "", line.recounted_by.username if line.recounted_by else "",
            line.get_adjustment_reason_display() if line.adjustment_reason else "",
            f"#{line.movement_id}" if line.movement_id else "",
        ])
    return rows


def render_variance_reports(session: StocktakeSession) -> dict[str, bytes]:
    rows = variance_rows(session)
    data = render_csv(rows)
    return {"csv": data, "xlsx": render_xlsx(session, rows),
            "pdf": render_pdf(session, rows, csv_sha256=hashlib.sha256(data).hexdigest())}


def store_variance_reports(session: StocktakeSession) -> StocktakeSession:
    """Write the session's three variance reports to its files, with the SHA-256 of each."""
    for report_format, data in render_variance_reports(session).items():
        field = getattr(session, f"report_{report_format}")
        field.save(f"stocktake-{session.pk}.{report_format}", ContentFile(data), save=False)
        setattr(session, f"{report_format}_sha256", hashlib.sha256(data).hexdigest())
    session.save(update_fields=[
        "report_csv", "report_xlsx", "report_pdf", "csv_sha256", "xlsx_sha256", "pdf_sha256",
    ])
    return session


def render_csv(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(VARIANCE_HEADER)
    for row in rows:
        writer.writerow(["" if value is None else safe_text(value) if isinstance(value, str) else value
                         for value in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def render_xlsx(session: StocktakeSession, rows: list[list]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="盘点差异")
    sheet.append(VARIANCE_HEADER)
    for row in rows:
        sheet.append([safe_text(value) if isinstance(value, str) else value for value in row])
    return reproducible_xlsx(workbook, session.approved_at or session.created_at)


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=15, leading=19, spaceAfter=6),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK"),
        "note": ParagraphStyle("note", fontName=font, fontSize=9, leading=12, wordWrap="CJK", spaceBefore=4),
    }


def _table(header: list[str], rows: list[list], widths: list[float], styles: dict) -> Table:
    def cell(value: object) -> Paragraph:
        text = "" if value is None else str(value)
        return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), styles["cell"])

    table = Table([[cell(value) for value in header], *[[cell(value) for value in row] for row in rows]],
                  colWidths=[width * mm for width in widths], repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def render_pdf(session: StocktakeSession, rows: list[list], *, csv_sha256: str) -> bytes:
    styles = _styles()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1, leftMargin=8 * mm, rightMargin=8 * mm,
                                 topMargin=10 * mm, bottomMargin=10 * mm, title=f"盘点差异表 #{session.pk}",
                                 author="SPD", creator="SPD")
    summary = session.summary or {}
    approved = timezone.localtime(session.approved_at).strftime("%Y-%m-%d %H:%M") if session.approved_at else "—"
    story = [
        Paragraph(f"盘点差异表 · {session.hospital.name} · 盘点单 #{session.pk}", styles["title"]),
        Paragraph(
            f"账面时点 {timezone.localtime(session.snapshot_at):%Y-%m-%d %H:%M}；审批 {approved}"
            f"（{session.approved_by.username if session.approved_by else '—'}）；行数 {summary.get('lines', len(rows))}，"
            f"差异行 {summary.get('variances', '—')}，准确率 {summary.get('accuracy', '—')}%，"
            f"差异金额（绝对值）{summary.get('variance_value', '—')}，净额 {summary.get('net_value', '—')}",
            styles["note"]),
        Spacer(1, 4 * mm),
        _table(VARIANCE_HEADER, [row for row in rows if row[9] or "→" in str(row[1])] or [["—"] * 17],
               [8, 26, 16, 34, 24, 10, 12, 12, 12, 10, 14, 16, 14, 16, 16, 14, 14], styles),
        Paragraph(f"全部 {len(rows)} 行明细见 CSV 文件，其 SHA-256 为 {csv_sha256}。", styles["note"]),
        Spacer(1, 8 * mm),
        Paragraph("盘点人：____________　　复盘人：____________　　审批人：____________", styles["note"]),
    ]
    document.build(story)
    return buffer.getvalue()


def count_sheet_pdf(session: StocktakeSession, location: Location) -> bytes:
    """The count sheet of `location` and the session's locations under it, sorted by shelf; the
    expected quantity only when the session is not blind."""
    styles = _styles()
    codes = _under(session, location)
    lines = [line for line in _lines(session) if line.location_id in codes]
    rows = []
    for number, line in enumerate(lines, start=1):
        rows.append([
            number, line.location.code, line.product.internal_code, line.product.name, line.product.specification,
            f"SN {line.unit.serial}" if line.unit_id else f"批号 {line.lot}", line.expiry or "",
            "" if session.blind else line.expected_quantity, "", "",
        ])
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, invariant=1, leftMargin=8 * mm, rightMargin=8 * mm,
                                 topMargin=10 * mm, bottomMargin=10 * mm, title=f"盘点表 #{session.pk} {location.code}",
                                 author="SPD", creator="SPD")
    mode = "盲盘（不显示账面数）" if session.blind else "明盘"
    story = [
        Paragraph(f"盘点表 · {location.name}（{location.code}）· 盘点单 #{session.pk}", styles["title"]),
        Paragraph(f"{session.hospital.name}；{mode}；账面时点 {timezone.localtime(session.snapshot_at):%Y-%m-%d %H:%M}；"
                  f"共 {len(rows)} 行。未列出的物品请另行记录并扫码录入。", styles["note"]),
        Spacer(1, 4 * mm),
        _table(SHEET_HEADER, rows or [["—"] * 10], [8, 20, 18, 40, 22, 30, 18, 12, 14, 12], styles),
        Spacer(1, 8 * mm),
        Paragraph("盘点人：____________　　监盘人：____________　　日期：____________", styles["note"]),
    ]
    document.build(story)
    return buffer.getvalue()


def _under(session: StocktakeSession, location: Location) -> set[int]:
    """`location` and the session's locations below it."""
    in_session = {row[0]: row[1] for row in session.locations.values_list("pk", "parent")}
    found, changed = {location.pk}, True
    while changed:
        more = {pk for pk, parent in in_session.items() if parent in found and pk not in found}
        found |= more
        changed = bool(more)
    return found

