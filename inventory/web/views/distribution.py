"""Picking (拣货), dispatch (配送) and department receipt (科室验收) pages.

- `pick_lists`: the open pick lists and a form to start one from approved requisition lines.
- `pick_list`: the proposal line by line, a scan field to confirm each unit or lot (a lot scan may
  give a quantity), dispatch and cancel, the printable pick list. Usable on a desktop or a tablet.
- `deliveries` / `delivery`: the delivery slips of the nurse's departments (or all, for the
  warehouse); a delivery is received by scanning what arrived (each scan counts an item, kept in
  the session until the receipt is confirmed) or in one step, with short or damaged items recorded.
  Usable at phone width.

Every rule is in `inventory/services/picking.py`; a scan answers JSON to scan-field.js and a page
(after a redirect) to a plain form post.
"""
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.errors import Refusal, Refused
from inventory.models import Delivery, DeliveryItem, Location, PickList, Requisition, RequisitionLine, StockReservation
from inventory.selectors.scope import departments_of, visible_to
from inventory.selectors.units import resolve_scan
from inventory.services import distribution_pdf, picking
from inventory.web.access import CLINICAL, STOCK_HANDLERS, web_page
from inventory.web.operations import hospital_for, new_form_key, posted_key, scanned_code
from inventory.web.problems import flash_problems, problems_of, scan_response, wants_json

SESSION_SCANS = "receipt-scans-{pk}"


def _pick_list(request: HttpRequest, pk: int) -> PickList:
    return get_object_or_404(visible_to(request.user, PickList.objects.select_related("source_location")), pk=pk)


def _delivery(request: HttpRequest, pk: int) -> Delivery:
    deliveries = visible_to(request.user, Delivery.objects.select_related(
        "department", "destination", "pick_list", "in_transit_location"))
    allowed = departments_of(request.user)
    if allowed is not None:
        deliveries = deliveries.filter(department_id__in=allowed)
    return get_object_or_404(deliveries, pk=pk)


def _open_lines(request: HttpRequest) -> QuerySet:
    """Approved requisition lines with something to pick and on no open pick list, urgent first."""
    return (
        RequisitionLine.objects.filter(
            requisition__hospital_id=request.user.hospital_id,
            requisition__status__in=[Requisition.Status.APPROVED, Requisition.Status.PICKING],
        )
        .exclude(pick_list_lines__is_open=True)
        .select_related("requisition__department", "requisition__location", "product")
        .prefetch_related("product__packaging_units")
        .order_by("-requisition__urgency", "requisition__submitted_at", "requisition_id", "pk")
    )


def _sources(request: HttpRequest) -> QuerySet:
    return Location.objects.filter(
        hospital_id=request.user.hospital_id, kind__in=picking.SOURCE_KINDS, is_active=True
    ).order_by("kind", "code")


@web_page(STOCK_HANDLERS)
def pick_lists(request: HttpRequest) -> HttpResponse:
    """Open pick lists, and a new one from the requisition lines waiting to be picked."""
    if request.method == "POST":
        try:
            hospital = hospital_for(request)
            source = get_object_or_404(_sources(request), pk=request.POST.get("source_location") or 0)
            chosen = [int(pk) for pk in request.POST.getlist("lines") if pk.isdigit()]
            lines = list(RequisitionLine.objects.filter(pk__in=chosen, requisition__hospital=hospital))
            pick_list = picking.create_pick_list(
                user=request.user, hospital=hospital, source_location=source, requisition_lines=lines,
                idempotency_key=posted_key(request, "pick-list"),
            )
        except Refused as refused:
            flash_problems(request, refused)
            return redirect("web:picking")
        return redirect("web:pick-list", pk=pick_list.pk)
    lists = visible_to(request.user, PickList.objects.select_related("source_location")).order_by("-created_at")
    lines = [line for line in _open_lines(request) if line.open_quantity > 0]
    return render(request, "web/distribution/pick_lists.html", {
        "open_lists": lists.filter(status=PickList.Status.OPEN), "recent": lists.exclude(status=PickList.Status.OPEN)[:10],
        "lines": lines, "sources": _sources(request), "key": new_form_key("pick-list"),
    })


@web_page(STOCK_HANDLERS)
def pick_list(request: HttpRequest, pk: int) -> HttpResponse:
    """One pick list: what to take (FEFO), what was taken, and the scan field to confirm."""
    pick_list = _pick_list(request, pk)
    lines = list(pick_list.lines.select_related("product", "destination", "requisition_line__requisition")
                 .prefetch_related("product__packaging_units").order_by("pk"))
    held = StockReservation.objects.filter(
        holder_type=StockReservation.Holder.PICK_LIST_LINE, holder_id__in=[line.pk for line in lines], is_active=True,
    ).select_related("unit").order_by("expiry", "lot", "pk")
    rows = []
    for line in lines:
        picked = list(line.picked_items.select_related("unit").order_by("pk"))
        picked_units = {item.unit_id for item in picked if item.unit_id}
        picked_lots: dict[int, int] = {}
        for item in picked:
            if item.lot_balance_id:
                picked_lots[item.lot_balance_id] = picked_lots.get(item.lot_balance_id, 0) + item.quantity
        to_pick = []
        for reservation in held:
            if reservation.holder_id != line.pk:
                continue
            if reservation.unit_id:
                if reservation.unit_id not in picked_units:
                    to_pick.append((reservation, 1))
            elif (left := reservation.quantity - picked_lots.get(reservation.lot_balance_id, 0)) > 0:
                to_pick.append((reservation, left))
        shortfall = line.quantity - line.picked_quantity - sum(quantity for _reservation, quantity in to_pick)
        rows.append({"line": line, "picked": picked, "to_pick": to_pick, "shortfall": max(shortfall, 0) if line.is_open else 0})
    return render(request, "web/distribution/pick_list.html", {
        "pick_list": pick_list, "rows": rows, "key": new_form_key("dispatch"),
        "picked_any": any(row["picked"] for row in rows),
        "deliveries": pick_list.deliveries.select_related("department").order_by("pk"),
    })


@web_page(STOCK_HANDLERS)
@require_POST
def pick_scan(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm one unit or lot by its scanned code (a lot with an optional quantity)."""
    pick_list = _pick_list(request, pk)
    page = reverse("web:pick-list", args=[pick_list.pk])
    raw_quantity = request.POST.get("quantity", "").strip()
    try:
        quantity = None
        if raw_quantity:
            if not raw_quantity.isdigit():
                raise Refused(Refusal.RECEIPT_ITEM_INVALID, field=_("Quantity"), reason=_("a whole number of at least 1"))
            quantity = int(raw_quantity)
        picked = picking.confirm_pick_scan(
            user=request.user, pick_list=pick_list, code=scanned_code(request, request.POST.get("code", "")),
            quantity=quantity,
        )
    except Refused as refused:
        if wants_json(request):
            return scan_response(ok=False, problems=problems_of(refused), status=refused.status)
        flash_problems(request, refused)
        return redirect(page)
    what = f"SN {picked.unit.serial}" if picked.unit_id else _("lot %(lot)s × %(quantity)s") % {
        "lot": picked.lot, "quantity": picked.quantity}
    message = _("Picked: %(product)s %(what)s") % {"product": picked.line.product.name, "what": what}
    if picked.deviates:
        message += " " + _("(instead of the proposed lot %(lot)s)") % {"lot": picked.proposed_lot}
    if wants_json(request):
        messages.success(request, message)
        return scan_response(ok=True, message=message, redirect=page)
    messages.success(request, message)
    return redirect(page)


@web_page(STOCK_HANDLERS)
@require_POST
def pick_list_dispatch(request: HttpRequest, pk: int) -> HttpResponse:
    pick_list = _pick_list(request, pk)
    try:
        picking.dispatch_pick_list(user=request.user, pick_list=pick_list, idempotency_key=posted_key(request, "dispatch"))
    except Refused as refused:
        flash_problems(request, refused)
    else:
        messages.success(request, _("Dispatched: the goods are in transit to the departments."))
    return redirect("web:pick-list", pk=pick_list.pk)


@web_page(STOCK_HANDLERS)
@require_POST
def pick_list_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    pick_list = _pick_list(request, pk)
    try:
        picking.cancel_pick_list(user=request.user, pick_list=pick_list)
    except Refused as refused:
        flash_problems(request, refused)
        return redirect("web:pick-list", pk=pick_list.pk)
    messages.success(request, _("Pick list cancelled; its requisition lines can be picked again."))
    return redirect("web:picking")


@web_page(STOCK_HANDLERS)
def pick_list_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    pick_list = _pick_list(request, pk)
    response = HttpResponse(distribution_pdf.pick_list_pdf(pick_list), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pick_list.number}.pdf"'
    return response


# --- deliveries and receipt -----------------------------------------------------------------------


@web_page(CLINICAL)
def deliveries(request: HttpRequest) -> HttpResponse:
    """Deliveries to receive (in transit) and the last ones received, of the person's departments."""
    scoped = visible_to(request.user, Delivery.objects.select_related("department", "destination", "pick_list"))
    allowed = departments_of(request.user)
    if allowed is not None:
        scoped = scoped.filter(department_id__in=allowed)
    return render(request, "web/distribution/deliveries.html", {
        "in_transit": scoped.filter(status=Delivery.Status.IN_TRANSIT).order_by("dispatched_at"),
        "received": scoped.filter(status=Delivery.Status.RECEIVED).order_by("-received_at")[:20],
    })


def _scans(request: HttpRequest, delivery: Delivery) -> dict[str, int]:
    return request.session.get(SESSION_SCANS.format(pk=delivery.pk), {})


@web_page(CLINICAL)
def delivery(request: HttpRequest, pk: int) -> HttpResponse:
    """Receive a delivery: every item as dispatched unless a row says otherwise."""
    delivery = _delivery(request, pk)
    items = list(delivery.items.select_related("product", "unit").prefetch_related("product__packaging_units")
                 .order_by("pk"))
    if request.method == "POST":
        decisions = {}
        for item in items:
            raw = request.POST.get(f"received-{item.pk}", str(item.quantity)).strip()
            received = int(raw) if raw.isdigit() else raw
            if received == item.quantity:
                continue
            decisions[item.pk] = picking.ItemDecision(
                received=received, discrepancy=request.POST.get(f"discrepancy-{item.pk}", ""),
                action=request.POST.get(f"action-{item.pk}", ""), reason=request.POST.get(f"reason-{item.pk}", ""),
            )
        try:
            picking.receive_delivery(
                user=request.user, delivery=delivery, decisions=decisions, idempotency_key=posted_key(request, "receipt"),
            )
        except Refused as refused:
            flash_problems(request, refused)
            return redirect("web:delivery", pk=delivery.pk)
        request.session.pop(SESSION_SCANS.format(pk=delivery.pk), None)
        messages.success(request, _("Received: delivery %(number)s.") % {"number": delivery.number})
        return redirect("web:delivery", pk=delivery.pk)
    scans = _scans(request, delivery)
    rows = [{"item": item, "scanned": scans.get(str(item.pk), 0),
             "received": scans.get(str(item.pk), 0) if scans else item.quantity} for item in items]
    return render(request, "web/distribution/delivery.html", {
        "delivery": delivery, "rows": rows, "scanning": bool(scans), "key": new_form_key("receipt"),
        "discrepancies": DeliveryItem.Discrepancy.choices, "actions": DeliveryItem.Action.choices,
        "may_receive": picking.may_receive_for(request.user, delivery.department),
    })


@web_page(CLINICAL)
@require_POST
def delivery_scan(request: HttpRequest, pk: int) -> HttpResponse:
    """Count one scanned unit or lot label against the delivery's items (kept until the receipt)."""
    delivery = _delivery(request, pk)
    page = reverse("web:delivery", args=[delivery.pk])
    try:
        if delivery.status != Delivery.Status.IN_TRANSIT:
            raise Refused(Refusal.DELIVERY_ALREADY_RECEIVED, number=delivery.number)
        resolution = resolve_scan(delivery.hospital, scanned_code(request, request.POST.get("code", "")))
        if resolution.product is None:
            raise Refused([resolution.problem])
        key = SESSION_SCANS.format(pk=delivery.pk)
        scans = dict(request.session.get(key, {}))
        item = _matching_item(delivery, resolution, scans)
        if item is None:
            raise Refused(Refusal.PICK_SCAN_NOT_ON_LIST, product=resolution.product)
        scans[str(item.pk)] = scans.get(str(item.pk), 0) + 1
        request.session[key] = scans
    except Refused as refused:
        if wants_json(request):
            return scan_response(ok=False, problems=problems_of(refused), status=refused.status)
        flash_problems(request, refused)
        return redirect(page)
    message = _("Counted: %(product)s %(what)s (%(count)s of %(quantity)s)") % {
        "product": item.product.name, "what": f"SN {item.unit.serial}" if item.unit_id else item.lot,
        "count": scans[str(item.pk)], "quantity": item.quantity,
    }
    messages.success(request, message)
    if wants_json(request):
        return scan_response(ok=True, message=message, redirect=page)
    return redirect(page)


def _matching_item(delivery: Delivery, resolution, scans: dict[str, int]) -> DeliveryItem | None:
    """The item a scan counts for: its unit, or the first item of its lot not yet fully counted."""
    items = delivery.items.filter(product=resolution.product).select_related("product", "unit").order_by("pk")
    if resolution.unit is not None:
        item = items.filter(unit=resolution.unit).first()
        return item if item is not None and not scans.get(str(item.pk)) else None
    for item in items.filter(unit__isnull=True, lot=resolution.udi.lot):
        if scans.get(str(item.pk), 0) < item.quantity:
            return item
    return None


@web_page(CLINICAL)
def delivery_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = _delivery(request, pk)
    response = HttpResponse(distribution_pdf.delivery_pdf(delivery), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{delivery.number}.pdf"'
    return response
