"""Alliance settlement (医共体结算): the centre pays the suppliers, the members bear what they received.

The lead hospital buys centrally (`services.central_purchasing`) and pays its suppliers as any
hospital does (its own supplier settlements). Each month, every member is allocated the cost of
what it received from the centre — read from the member's own ledger: its ALLIANCE_IN movements
of transfers sent by the lead hospital, at their cost (the unit's cost, or the cost layers of a
lot), less its ALLIANCE_OUT movements of transfers it sent back to the lead hospital. So the
allocation is, by construction, the 移入 value of the member's 进销存 from the centre.

The statement (结算分摊单) is stored once per member and month as CSV, XLSX and PDF with the SHA-256
of each; the PDF names the CSV by its hash. It is final: issuing it again returns the one issued.
"""
import datetime
import hashlib
import io
import tempfile
from decimal import Decimal
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from inventory.errors import Refusal, Refused
from inventory.models import AllianceTransfer, AllocationStatement, Hospital, Movement, User
from inventory.services.central_purchasing import lead_hospital
from inventory.services.period_close import MONTH_FORMAT, first_day, month_bounds
from inventory.services.stocktake_reports import _styles, _table
from inventory.services.transfers import can_act_for_alliance
from inventory.spreadsheets import reproducible_xlsx, workbook, write_csv

HEADER = ["序号", "日期", "调拨单号", "调入单号", "集中采购单", "方向", "院内码", "产品名称", "规格", "序列号/批号", "数量",
          "单价", "金额"]
MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")


def allocation_rows(*, member: Hospital, month: datetime.date) -> list[list]:
    """The statement's rows: one per movement of `member`'s ledger that received stock from the
    centre (+) or sent it back (−) in `month`, in time order, valued at cost. One query."""
    centre = lead_hospital(member.alliance)
    if centre is None or centre.pk == member.pk:
        return []
    start, end = month_bounds(month)
    from_centre = AllianceTransfer.objects.filter(from_hospital=centre, to_hospital=member).values("pk")
    to_centre = AllianceTransfer.objects.filter(from_hospital=member, to_hospital=centre).values("pk")
    movements = (
        Movement.objects.filter(hospital=member, occurred_at__gte=start, occurred_at__lt=end,
                                document_type=Movement.DocumentType.ALLIANCE_TRANSFER)
        .filter(Q(kind=Movement.Kind.ALLIANCE_IN, document_id__in=from_centre)
                | Q(kind=Movement.Kind.ALLIANCE_OUT, document_id__in=to_centre))
        .select_related("product", "unit")
        .annotate(layer_value=Sum(ExpressionWrapper(F("layers__quantity") * F("layers__unit_cost"), output_field=MONEY)))
        .order_by("occurred_at", "pk")
    )
    movements = list(movements)
    transfers = {t.pk: t for t in AllianceTransfer.objects.filter(
        pk__in={m.document_id for m in movements}).select_related("central_order__purchase_order")}
    rows = []
    for number, movement in enumerate(movements, start=1):
        transfer = transfers[movement.document_id]
        sign = 1 if movement.kind == Movement.Kind.ALLIANCE_IN else -1
        value = movement.unit.unit_cost if movement.unit_id else Decimal(movement.layer_value or 0)
        value = (value * sign).quantize(CENT)
        quantity = movement.quantity * sign
        unit_price = (value / quantity).quantize(CENT) if quantity else Decimal("0.00")
        rows.append([
            number, timezone.localtime(movement.occurred_at).strftime("%Y-%m-%d %H:%M"), transfer.issue_number,
            transfer.receipt_number,
            transfer.central_order.purchase_order.number if transfer.central_order_id else "",
            "调入" if sign > 0 else "退回中心", movement.product.internal_code, movement.product.name,
            movement.product.specification, f"SN {movement.unit.serial}" if movement.unit_id else f"批号 {movement.lot}",
            quantity, unit_price, value,
        ])
    return rows


def issue_allocation_statement(
    *, user: User, member: Hospital, month: datetime.date, now: datetime.datetime | None = None,
) -> AllocationStatement:
    """Issue `member`'s allocation statement of `month` (over): files and hashes stored; final —
    the one issued is returned if it exists. Only who acts for the alliance issues it."""
    if not can_act_for_alliance(user):
        raise Refused(Refusal.NOT_ALLOWED, action=_("act for the county alliance"))
    if user.hospital_id is not None and (not member.alliance or member.alliance != user.hospital.alliance):
        raise Refused(Refusal.NOT_FOUND, what="hospital")
    centre = lead_hospital(member.alliance)
    if centre is None or centre.pk == member.pk:
        raise Refused(Refusal.ALLIANCE_NOT_MEMBER, hospital=member)
    month = first_day(month)
    _start, end = month_bounds(month)
    if end > (now or timezone.now()):
        raise Refused(Refusal.ALLOCATION_MONTH_NOT_OVER, month=month.strftime(MONTH_FORMAT))
    with transaction.atomic():
        Hospital.objects.select_for_update().filter(pk=member.pk).first()
        if existing := AllocationStatement.objects.filter(member=member, month=month).first():
            return existing
        rows = allocation_rows(member=member, month=month)
        statement = AllocationStatement(
            alliance=member.alliance, centre=centre, member=member, month=month, created_by=user,
            total=sum((row[-1] for row in rows), Decimal("0.00")), lines=len(rows),
        )
        files = render_statement(statement, rows)
        for report_format, data in files.items():
            getattr(statement, f"report_{report_format}").save(
                f"allocation-{member.code}-{month:%Y-%m}.{report_format}", ContentFile(data), save=False)
            setattr(statement, f"{report_format}_sha256", hashlib.sha256(data).hexdigest())
        statement.save()
    return statement


def render_statement(statement: AllocationStatement, rows: list[list]) -> dict[str, bytes]:
    """CSV and XLSX through the spreadsheet writers, and the PDF naming the CSV's hash; the same
    bytes for the same statement."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.csv"
        write_csv(path, HEADER, rows)
        files = {"csv": path.read_bytes()}
    files["xlsx"] = reproducible_xlsx(workbook(HEADER, rows, "结算分摊"), month_bounds(statement.month)[1])
    files["pdf"] = render_pdf(statement, rows, csv_sha256=hashlib.sha256(files["csv"]).hexdigest())
    return files


def render_pdf(statement: AllocationStatement, rows: list[list], *, csv_sha256: str) -> bytes:
    styles = _styles()
    buffer = io.BytesIO()
    title = f"医共体结算分摊单 · {statement.member.name} · {statement.month:%Y-%m}"
    document = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1, leftMargin=8 * mm, rightMargin=8 * mm,
                                 topMargin=10 * mm, bottomMargin=10 * mm, title=title, author="SPD", creator="SPD")
    story = [
        Paragraph(title, styles["title"]),
        Paragraph(f"医共体 {statement.alliance}；结算中心 {statement.centre.name}；成员医院 {statement.member.code} "
                  f"{statement.member.name}；共 {len(rows)} 行，分摊金额合计 {statement.total}（按成本，自中心调入减退回中心）。",
                  styles["note"]),
        Spacer(1, 4 * mm),
        _table(HEADER, rows or [["—"] * len(HEADER)], [9, 24, 26, 26, 26, 14, 18, 40, 22, 26, 10, 16, 18], styles),
        Paragraph(f"明细 CSV 文件的 SHA-256 为 {csv_sha256}。", styles["note"]),
        Spacer(1, 8 * mm),
        Paragraph("中心经办人：____________　　成员医院确认人：____________　　日期：____________", styles["note"]),
    ]
    document.build(story)
    return buffer.getvalue()
