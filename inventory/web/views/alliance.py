"""County alliance (医共体) pages: transfers between members, central orders, allocation statements.

- `/alliance/transfers/` — the transfers the person's hospital sends or receives (emergency
  allocations flagged), and a new transfer by scanning what is sent;
- `/alliance/transfers/<id>/` — one transfer from the person's side: approve / reject (receiver),
  cancel / dispatch (sender), count by scanning and receive (receiver);
- central orders: `central_purchasing.py`;
- `/alliance/statements/` — allocation statements: issued by the centre, read by each member.

Every rule is in the services (`transfers`, `central_purchasing`, `alliance_settlement`).
"""
import datetime
import uuid

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from devices.identification import ParseError, parse_udi
from inventory.errors import Refusal, Refused
from inventory.models import AllianceTransfer, AllianceTransferLine, Hospital, Location, Product, Unit
from inventory.selectors import alliance_transfers as selectors
from inventory.services import alliance_settlement, central_purchasing, transfers
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.problems import problems_of

STATEMENT_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   "pdf": "application/pdf"}


@web_page(READERS)
def transfer_list(request: HttpRequest) -> HttpResponse:
    direction = request.GET.get("direction", "") if request.GET.get("direction") in ("in", "out") else ""
    state = request.GET.get("status", "") if request.GET.get("status") in AllianceTransfer.Status.values else ""
    problems, code, form = [], 200, {"codes": "", "reason": "", "kind": "ORDINARY"}
    hospital = request.user.hospital
    can_send = hospital is not None and bool(hospital.alliance) and may(request.user, STOCK_HANDLERS)
    if request.method == "POST" and can_send:
        form = {key: request.POST.get(key, "") for key in ("codes", "reason", "kind", "to_hospital", "source")}
        try:
            transfer = _create_from_form(request, form)
        except Refused as refused:
            problems, code = problems_of(refused), refused.status
        else:
            messages.success(request, _("Transfer %(number)s created.") % {"number": transfer.issue_number})
            return redirect("web:alliance-transfer", pk=transfer.pk)
    rows = selectors.transfer_list(request.user, status=state, direction=direction)[:200]
    return render(request, "web/alliance/transfers.html", {
        "transfers": [(transfer, transfers.side_of(request.user, transfer)) for transfer in rows],
        "direction": direction, "status": state, "statuses": AllianceTransfer.Status.choices,
        "can_send": can_send, "problems": problems, "form": form,
        "members": transfers.alliance_members(hospital) if hospital else [],
        "sources": Location.objects.filter(hospital=hospital, kind__in=transfers.SOURCE_KINDS, is_active=True)
        if hospital else [],
        "can_act_for_alliance": transfers.can_act_for_alliance(request.user), "form_id": uuid.uuid4().hex,
    }, status=code)


def _create_from_form(request: HttpRequest, form: dict) -> AllianceTransfer:
    """A transfer from the new-transfer form: the receiving member, the source store and one scanned
    code per line (a unit's UDI, or a lot label followed by a quantity)."""
    hospital = request.user.hospital
    receiver = transfers.alliance_members(hospital).filter(pk=_int(form.get("to_hospital"))).first()
    source = Location.objects.filter(hospital=hospital, pk=_int(form.get("source"))).first()
    if receiver is None or source is None:
        raise Refused(Refusal.NOT_FOUND, what="hospital" if receiver is None else "location")
    destination = central_purchasing.member_receiving_location(receiver)
    if destination is None:
        raise Refused(Refusal.NOT_FOUND, what="location")
    units, lots = [], []
    for raw in form["codes"].splitlines():
        parts = raw.strip().rsplit(" ", 1)
        if not parts[0]:
            continue
        code, quantity = (parts[0], _int(parts[1])) if len(parts) == 2 and parts[1].isdigit() else (raw.strip(), 1)
        try:
            parsed = parse_udi(code)
        except ParseError as error:
            raise Refused(Refusal.UDI_UNPARSEABLE, reason=str(error)) from None
        if parsed.serial:
            unit = Unit.objects.filter(hospital=hospital, di=parsed.di, serial=parsed.serial).first()
            if unit is None:
                raise Refused(Refusal.NOT_FOUND, what="unit")
            units.append(unit)
        else:
            product = Product.objects.filter(hospital=hospital, udi_di=parsed.di).first()
            if product is None:
                raise Refused(Refusal.PRODUCT_UNKNOWN, di=parsed.di)
            lots.append(transfers.TransferLot(product, parsed.lot, quantity or 1))
    kind = form["kind"] if form["kind"] in (AllianceTransfer.Kind.ORDINARY, AllianceTransfer.Kind.EMERGENCY) \
        else AllianceTransfer.Kind.ORDINARY
    return transfers.create_transfer(
        user=request.user, source_location=source, to_hospital=receiver, destination=destination, units=units,
        lots=lots, kind=kind, reason=form["reason"][:500],
        idempotency_key=f"web-transfer-{request.POST.get('form_id') or uuid.uuid4().hex}"[:128],
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


@web_page(READERS)
def transfer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    transfer = get_object_or_404(transfers.transfers_visible_to(request.user), pk=pk)
    side = transfers.side_of(request.user, transfer)
    problems = []
    if request.method == "POST":
        try:
            _act(request, transfer)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            return redirect("web:alliance-transfer", pk=transfer.pk)
        transfer.refresh_from_db()
    lines = list(transfer.lines.select_related("product", "receiving_product", "unit").order_by("pk"))
    user = request.user
    sender, receiver = transfers.works_for(user, transfer.from_hospital), transfers.works_for(user, transfer.to_hospital)
    status = AllianceTransfer.Status
    return render(request, "web/alliance/transfer.html", {
        "transfer": transfer, "side": side, "problems": problems,
        "lines": [(line, line.receiving_product if side == "receipt" else line.product) for line in lines],
        "can_decide": receiver and transfer.status == status.PENDING_APPROVAL,
        "can_cancel": sender and transfer.status in (status.PENDING_APPROVAL, status.APPROVED),
        "can_dispatch": sender and transfer.status == status.APPROVED,
        "can_receive": receiver and transfer.status == status.IN_TRANSIT,
        "discrepancies": AllianceTransferLine.Discrepancy.choices, "actions": AllianceTransferLine.Action.choices,
        "form_id": uuid.uuid4().hex,
    }, status=400 if problems else 200)


def _act(request: HttpRequest, transfer: AllianceTransfer) -> None:
    action, user, post = request.POST.get("action"), request.user, request.POST
    if action == "approve":
        transfers.approve_transfer(user=user, transfer=transfer)
    elif action == "reject":
        transfers.reject_transfer(user=user, transfer=transfer, reason=post.get("reason", ""))
    elif action == "cancel":
        transfers.cancel_transfer(user=user, transfer=transfer, reason=post.get("reason", ""))
    elif action == "dispatch":
        transfers.dispatch_transfer(user=user, transfer=transfer, idempotency_key=f"web-dispatch-{transfer.pk}")
    elif action == "scan":
        line = transfers.scan_transfer_item(user=user, transfer=transfer, code=post.get("code", ""),
                                            quantity=_int(post.get("quantity")) or None)
        messages.success(request, _("Counted: %(item)s (%(count)s of %(quantity)s).") % {
            "item": f"SN {line.unit.serial}" if line.unit_id else line.lot, "count": line.scanned_quantity,
            "quantity": line.quantity})
    elif action == "receive":
        decisions = {}
        for line in transfer.lines.all():
            received = _int(post.get(f"received-{line.pk}"))
            if received is not None and received != line.scanned_quantity or post.get(f"discrepancy-{line.pk}"):
                decisions[line.pk] = transfers.LineDecision(
                    received=line.scanned_quantity if received is None else received,
                    discrepancy=post.get(f"discrepancy-{line.pk}", ""), action=post.get(f"action-{line.pk}", ""),
                    reason=post.get(f"reason-{line.pk}", ""))
        transfers.receive_transfer(user=user, transfer=transfer, decisions=decisions,
                                   idempotency_key=f"web-receive-{post.get('form_id') or uuid.uuid4().hex}"[:128])
        messages.success(request, _("Transfer received into your books."))
    else:
        raise Refused(Refusal.INVALID_REQUEST, detail="action")


@web_page(READERS)
def statements(request: HttpRequest) -> HttpResponse:
    """Allocation statements: the centre issues them per member and month; a member reads its own."""
    problems = []
    acts = transfers.can_act_for_alliance(request.user)
    hospital = request.user.hospital
    if request.method == "POST" and acts:
        member = transfers.alliance_members(hospital).filter(pk=_int(request.POST.get("member"))).first() \
            if hospital else Hospital.objects.filter(pk=_int(request.POST.get("member"))).first()
        try:
            month = datetime.date.fromisoformat(f"{request.POST.get('month', '')}-01")
        except ValueError:
            month = None
        try:
            if member is None or month is None:
                raise Refused(Refusal.INVALID_REQUEST, detail=_("choose a member and a month"))
            statement = alliance_settlement.issue_allocation_statement(user=request.user, member=member, month=month)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, _("Statement issued: %(total)s.") % {"total": statement.total})
            return redirect(f"{reverse('web:allocation-statements')}#statement-{statement.pk}")
    return render(request, "web/alliance/statements.html", {
        "statements": selectors.statements_visible_to(request.user)[:200], "can_issue": acts, "problems": problems,
        "members": transfers.alliance_members(hospital) if hospital and acts else [],
    }, status=400 if problems else 200)


@web_page(READERS)
def statement_file(request: HttpRequest, pk: int, file_format: str) -> FileResponse:
    statement = get_object_or_404(selectors.statements_visible_to(request.user), pk=pk)
    if file_format not in STATEMENT_TYPES:
        raise Http404
    return FileResponse(getattr(statement, f"report_{file_format}").open("rb"), as_attachment=True,
                        content_type=STATEMENT_TYPES[file_format],
                        filename=f"allocation-{statement.member.code}-{statement.month:%Y-%m}.{file_format}")
