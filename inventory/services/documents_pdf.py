"""The printable documents of stock orders, with signature lines: 移库单 (transfer / delivery slip),
退货单 (return note) and 报损单 (scrap record), as PDF.

A document names the hospital, the order's number, when and by whom it was done, where the goods
went (destination, supplier or written off) and why, then its lines — product, serial or lot,
quantity, unit cost, value and where each came from — with their totals, and ends with the lines
the people concerned sign on paper. The document is in Chinese, like the reconciliation reports
(`inventory.services.reports`), and uses reportlab's built-in CID font STSong-Light: no font file.

`order_document` reads an order into an `OrderDocument` (one query for the lines, one for the
lot costs); `render_order_pdf` draws it and reads nothing.
"""
import io
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import LotBalance, Movement, StockOrder

FONT = "STSong-Light"
TITLES = {
    StockOrder.Kind.TRANSFER: "移库单（出库/配送单）",
    StockOrder.Kind.RETURN_TO_SUPPLIER: "退货单",
    StockOrder.Kind.SCRAP: "报损单",
}
# Who signs each document, left to right.
SIGNATURES = {
    StockOrder.Kind.TRANSFER: ("发出人", "配送人", "接收人"),
    StockOrder.Kind.RETURN_TO_SUPPLIER: ("经办人", "仓库负责人", "供应商签收"),
    StockOrder.Kind.SCRAP: ("经办人", "科室负责人", "审批（设备科/SPD）"),
}
LINES_HEADER = ["序号", "院内码", "产品名称", "规格", "序列号/批号", "数量", "单价", "金额", "原库位"]
LINE_WIDTHS = [10, 20, 40, 22, 30, 12, 18, 20, 18]  # mm, 190 in all: A4 portrait within 10 mm margins


@dataclass(frozen=True)
class OrderDocument:
    """What a printed order shows; `lines` rows are in LINES_HEADER order, values as text."""

    kind: str
    title: str
    hospital: str
    number: str
    when: str
    by: str
    facts: list[tuple[str, str]]
    lines: list[list[str]]
    quantity: int
    value: Decimal
    signatures: tuple[str, ...]


def order_document(order: StockOrder, *, reason: str = "") -> OrderDocument:
    """The document of a transfer, return or scrap; `reason` is the label of its reason code."""
    if order.kind not in TITLES:
        raise ValueError(f"stock orders of kind {order.kind} have no printed document")
    movements = list(
        Movement.objects.filter(document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk)
        .select_related("unit", "product", "from_location").order_by("pk")
    )
    lot_costs = _lot_costs(movements)
    lines, quantity, value = [], 0, Decimal("0")
    for number, movement in enumerate(movements, start=1):
        product = movement.product
        if movement.unit is not None:
            identity, cost = f"SN {movement.unit.serial}", movement.unit.unit_cost
        else:
            identity = f"批号 {movement.lot}"
            cost = lot_costs.get((movement.product_id, movement.lot, movement.from_location_id), Decimal("0"))
        amount = cost * movement.quantity
        quantity += movement.quantity
        value += amount
        lines.append([
            str(number), product.internal_code, product.name, product.specification, identity, str(movement.quantity),
            _money(cost), _money(amount), movement.from_location.name if movement.from_location else "",
        ])
    facts = []
    if order.kind == StockOrder.Kind.TRANSFER:
        facts.append(("调入库位", order.to_location.name if order.to_location else ""))
    if order.supplier is not None:
        facts.append(("供应商", order.supplier.name))
    if order.reason_code:
        facts.append(("原因", reason or order.reason_code))
    if order.note:
        facts.append(("备注", order.note))
    return OrderDocument(
        kind=order.kind, title=TITLES[order.kind], hospital=order.hospital.name, number=f"{order.pk:08d}",
        when=f"{timezone.localtime(order.occurred_at):%Y-%m-%d %H:%M}", by=_person(order), facts=facts, lines=lines,
        quantity=quantity, value=value, signatures=SIGNATURES[order.kind],
    )


def order_document_pdf(order: StockOrder, *, reason: str = "") -> bytes:
    return render_order_pdf(order_document(order, reason=reason))


def _lot_costs(movements: list[Movement]) -> dict[tuple[int, str, int], Decimal]:
    """The unit cost of each lot line, from the balance it came out of (lot movements carry none)."""
    keys = {(m.product_id, m.lot, m.from_location_id) for m in movements if m.unit_id is None}
    if not keys:
        return {}
    condition = Q()
    for product, lot, location in keys:
        condition |= Q(product_id=product, lot=lot, location_id=location)
    return {
        (balance.product_id, balance.lot, balance.location_id): balance.unit_cost
        for balance in LotBalance.objects.filter(condition)
    }


def _person(order: StockOrder) -> str:
    user = order.created_by
    if user is not None:
        return f"{user.last_name}{user.first_name}".strip() or user.username
    return order.created_by_device.name if order.created_by_device else ""


def _money(value: Decimal) -> str:
    return f"¥{value:,.2f}"


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def render_order_pdf(document: OrderDocument) -> bytes:
    """The document on A4 portrait: heading, facts, the lines with their total, signature lines."""
    font = _font()
    title_style = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1, spaceAfter=2)
    hospital_style = ParagraphStyle("hospital", fontName=font, fontSize=11, leading=16, alignment=1, spaceAfter=6)
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer, pagesize=A4, invariant=1, leftMargin=10 * mm, rightMargin=10 * mm, topMargin=12 * mm,
        bottomMargin=14 * mm, title=f"{document.title} {document.number}", author="SPD", creator="SPD",
        subject=document.hospital,
    )

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(10 * mm, 7 * mm, f"{document.hospital} · {document.title} No.{document.number}")
        canvas.drawRightString(A4[0] - 10 * mm, 7 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    def cell(text: str, width: float) -> str | Paragraph:
        if pdfmetrics.stringWidth(text, font, 8) <= width * mm - 6:
            return text
        return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), cell_style)

    head = [
        ["单号", f"No.{document.number}", "日期", document.when],
        ["经办人", document.by, "", ""],
        *[[label, value, "", ""] for label, value in document.facts],
    ]
    head_table = Table([[cell(value, width) for value, width in zip(row, (22, 73, 22, 73), strict=True)]
                        for row in head], colWidths=[22 * mm, 73 * mm, 22 * mm, 73 * mm])
    head_table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font, 9), ("VALIGN", (0, 0), (-1, -1), "TOP")]))

    total = ["", "合计", "", "", "", str(document.quantity), "", _money(document.value), ""]
    rows = [[cell(value, width) for value, width in zip(row, LINE_WIDTHS, strict=True)]
            for row in [LINES_HEADER, *document.lines, total]]
    lines_table = Table(rows, colWidths=[width * mm for width in LINE_WIDTHS], repeatRows=1)
    lines_table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f4f4f4")),
        ("ALIGN", (5, 1), (7, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))

    signatures = Table(
        [[f"{who}：＿＿＿＿＿＿＿＿" for who in document.signatures],
         ["日期：＿＿＿＿＿＿＿＿" for _ in document.signatures]],
        colWidths=[63 * mm] * len(document.signatures),
    )
    signatures.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font, 9), ("TOPPADDING", (0, 0), (-1, -1), 12)]))

    story = [
        Paragraph(document.hospital, hospital_style),
        Paragraph(document.title, title_style),
        Spacer(1, 3 * mm),
        head_table,
        Spacer(1, 4 * mm),
        lines_table,
        Spacer(1, 12 * mm),
        signatures,
    ]
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
