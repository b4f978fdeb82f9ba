"""The acceptance record (验收单) of a delivery note as a PDF to print, compare with the paper
delivery note (送货单) and sign: the hospital, the supplier, the note's number, every line with its
decision and how it was verified (scanned by whom and when, or accepted without scanning and why),
the totals per product, who received and accepted it, and signature lines.

Printed in Chinese, the language the signed paper is filed in, with reportlab's built-in CID font
STSong-Light (as the reconciliation reports in services/reports.py: no font file needed).
"""
import datetime
import io

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import DeliveryNote, User
from inventory.selectors.receiving import ACCEPT, REJECT, AcceptanceReview, ReviewLine

TITLE = "医用耗材验收单"
FONT = "STSong-Light"
VERDICTS = {ACCEPT: "验收通过", REJECT: "拒收"}
STATUS = {
    DeliveryNote.Status.RECEIVED: "待验收",
    DeliveryNote.Status.PARTLY_ACCEPTED: "部分验收（尚有未扫码核对的行）",
    DeliveryNote.Status.ACCEPTED: "验收完成",
}
LINES_HEADER = ["行", "产品编码", "产品名称 / 规格", "序列号 / 批号", "有效期", "数量", "单价", "金额", "结论", "核对", "原因"]
TOTALS_HEADER = ["产品编码", "产品名称 / 规格", "行数", "送货数量", "验收数量", "拒收数量", "未核对数量", "验收金额"]
SIGNATURES = ["送货人（签字）", "验收人（签字）", "库管复核（签字）", "日期"]


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _person(user: User | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.username


def _when(moment: datetime.datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _money(value: object) -> str:
    return f"{value:,.2f}"


def _check(review: ReviewLine) -> str:
    """How the line was verified: scanned by whom and when, or accepted without a scan and why."""
    if review.record is not None and review.record.accepted_without_scan:
        return f"免扫码验收（{_person(review.record.decided_by)}）：{review.record.without_scan_reason}"
    if review.line.scanned_at:
        return f"已扫码 {_person(review.line.scanned_by)} {_when(review.line.scanned_at)}"
    return "未扫码"


def _verdict(review: ReviewLine) -> str:
    if not review.decided:
        return "待定（未扫码核对）" if review.verdict not in VERDICTS else f"待定（预计{VERDICTS[review.verdict]}）"
    text = VERDICTS[review.verdict]
    return f"{text}（赠送）" if review.record.is_gift else text


def render_acceptance_record(review: AcceptanceReview, *, printed_by: User) -> bytes:
    """The acceptance record of `review.note` as PDF bytes (A4 landscape)."""
    note = review.note
    font = _font()
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
    title_style = ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=4, alignment=1)
    heading = ParagraphStyle("heading", fontName=font, fontSize=11, leading=14, spaceBefore=6, spaceAfter=3)

    def cell(value: object) -> Paragraph:
        text = "" if value is None else str(value)
        return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), cell_style)

    def table(rows: list[list], widths: list[float], *, header: bool = True, bold_last: bool = False) -> Table:
        result = Table([[cell(value) for value in row] for row in rows], colWidths=[w * mm for w in widths],
                       repeatRows=1 if header else 0)
        style = [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
        if bold_last:
            style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f3f3f3")))
        result.setStyle(TableStyle(style))
        return result

    hospital = note.hospital
    details = [
        ["医院", hospital.name, "供应商", note.supplier.name],
        ["送货单号", note.number, "状态", STATUS.get(note.status, note.status)],
        ["送达时间", _when(note.delivered_at), "收货库位", note.receiving_location.name],
        ["收货人", _person(note.received_by),
         "到货温度", f"{note.temperature_c} °C" if note.temperature_c is not None else "—"],
        ["验收人", _person(note.accepted_by), "验收时间", _when(note.accepted_at)],
    ]
    lines = [LINES_HEADER] + [
        [
            review_line.line.line_no,
            review_line.line.product.internal_code if review_line.line.product else "?",
            (f"{review_line.line.product.name} {review_line.line.product.specification}".strip()
             if review_line.line.product else f"不在目录中：{review_line.line.raw_udi}"),
            " ".join(part for part in (
                f"SN {review_line.line.serial}" if review_line.line.serial else "",
                f"批号 {review_line.line.lot}" if review_line.line.lot else "",
            ) if part),
            review_line.line.expiry.isoformat() if review_line.line.expiry else "",
            review_line.line.quantity,
            _money(review_line.line.unit_price),
            _money(review_line.amount),
            _verdict(review_line),
            _check(review_line),
            "；".join(reason["detail"] for reason in review_line.reasons),
        ]
        for review_line in review.lines
    ]
    totals = review.totals
    products = [TOTALS_HEADER] + [
        [p.code, f"{p.name} {p.specification}".strip(), p.lines, p.delivered, p.accepted, p.rejected, p.unverified,
         _money(p.accepted_amount)]
        for p in review.products
    ] + [["合计", "", totals.lines, totals.delivered, totals.accepted, totals.rejected, totals.unverified,
          _money(totals.accepted_amount)]]
    signatures = [[label, ""] for label in SIGNATURES]

    buffer = io.BytesIO()
    page = landscape(A4)
    document = SimpleDocTemplate(
        buffer, pagesize=page, leftMargin=10 * mm, rightMargin=10 * mm, topMargin=12 * mm, bottomMargin=14 * mm,
        title=f"{TITLE} {note.number}", author="SPD", creator="SPD", subject=f"{hospital.name} {note.number}",
    )
    printed = f"打印：{_person(printed_by)} {_when(timezone.now())}"

    def footer(canvas: object, doc: object) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(10 * mm, 7 * mm, f"{TITLE} · {hospital.name} · 送货单 {note.number} · {printed}")
        canvas.drawRightString(page[0] - 10 * mm, 7 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    story = [
        Paragraph(f"{hospital.name} {TITLE}", title_style),
        table(details, [25, 105, 25, 110], header=False),
        Paragraph(f"明细（{len(review.lines)} 行）", heading),
        table(lines, [8, 22, 50, 32, 18, 10, 18, 20, 30, 42, 27]),
        Paragraph("按产品合计（与纸质送货单核对）", heading),
        table(products, [25, 90, 15, 22, 22, 22, 22, 30], bold_last=True),
        Spacer(1, 8 * mm),
        table(signatures, [40, 90], header=False),
    ]
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
