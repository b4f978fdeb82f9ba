"""Central purchasing pages (集中采购), for who acts for the alliance (`transfers.can_act_for_alliance`;
anyone else gets a 404):

- `/alliance/central-orders/` — place a central order (a supplier, lines of the lead hospital's
  products with a quantity per member); the central orders with each member's share, what the
  regional warehouse received, what was distributed and what the member took in; distribute a
  member's open share;
- `/alliance/central-orders/plan/` — a central plan from members' demand: tick members' open
  suggestions and requisition shortfalls, see the proposal per supplier with each member's share
  and what cannot be planned (a product without a 医保 code: give an exemption reason and propose
  again), and place it.

Every rule is in the services (`central_purchasing`, `central_planning`).
"""
import datetime
import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.errors import Problem, Refusal, Refused
from inventory.models import CentralOrder, Hospital, Product, Supplier
from inventory.selectors import alliance_transfers as selectors
from inventory.selectors.central_demand import members_open_demand
from inventory.selectors.stock import find_product
from inventory.services import central_planning, central_purchasing, transfers
from inventory.services.purchasing import PlanLineOrdering
from inventory.web.access import READERS, web_page
from inventory.web.nhsa_exemptions import products_to_exempt, typed_exemptions
from inventory.web.problems import problems_of

LINE_ROWS = 5  # empty lines offered by the order form


def _alliance(request: HttpRequest) -> str:
    """The alliance the person acts for (an alliance administrator bound to no hospital: `?alliance=`,
    else the first alliance with a lead hospital)."""
    if request.user.hospital_id:
        return request.user.hospital.alliance
    named = request.GET.get("alliance") or request.POST.get("alliance")
    if named:
        return named
    lead = Hospital.objects.filter(is_lead=True).exclude(alliance="").order_by("pk").first()
    return lead.alliance if lead else ""


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _require_alliance_actor(request: HttpRequest) -> str:
    if not transfers.can_act_for_alliance(request.user):
        raise Http404
    return _alliance(request)


@web_page(READERS)
def central_orders(request: HttpRequest) -> HttpResponse:
    """Place a central order; the central orders with each member's share; distribute a member's share."""
    alliance = _require_alliance_actor(request)
    members = list(Hospital.objects.filter(alliance=alliance, is_lead=False).order_by("name", "pk"))
    form = _order_form({}, members)
    problems = []
    if request.method == "POST" and request.POST.get("action") == "place":
        form = _order_form(request.POST, members)
        try:
            central = _place(request, alliance, form)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, _("Central order %(number)s placed.") % {"number": central.purchase_order.number})
            return redirect(f"{reverse('web:central-orders')}#order-{central.pk}")
    elif request.method == "POST":
        order = get_object_or_404(selectors.central_orders_visible_to(request.user), pk=_int(request.POST.get("order")))
        member = Hospital.objects.filter(pk=_int(request.POST.get("member")), alliance=order.alliance).first()
        try:
            if member is None:
                raise Refused(Refusal.NOT_FOUND, what="hospital")
            transfer = central_purchasing.distribute_central_order(
                user=request.user, central_order=order, member=member,
                idempotency_key=f"web-distribute-{request.POST.get('form_id') or uuid.uuid4().hex}-{member.pk}"[:128])
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, _("Transfer %(number)s created.") % {"number": transfer.issue_number})
            return redirect("web:alliance-transfer", pk=transfer.pk)
    orders = list(selectors.central_orders_visible_to(request.user).prefetch_related(
        "allocations__member", "allocations__order_line__product")[:100])
    received = selectors.central_order_receipts([order.pk for order in orders])
    for order in orders:
        for allocation in order.allocations.all():
            allocation.received_by_member = received.get(
                (order.pk, allocation.member_id, allocation.order_line.product_id), 0)
    return render(request, "web/alliance/central_orders.html", {
        "orders": orders, "problems": problems, "form_id": uuid.uuid4().hex, "form": form, "members": members,
        "suppliers": Supplier.objects.filter(is_active=True).order_by("name"),
        "warehouses": central_purchasing.regional_warehouses(alliance), "alliance": alliance,
        "suggest_url": _lead_products_url(alliance),
    }, status=400 if problems else 200)


def _lead_products_url(alliance: str) -> str:
    """Where the order form's product fields find the lead hospital's products as one types."""
    lead = central_purchasing.lead_hospital(alliance)
    return f"{reverse('web:product-suggestions')}?hospital={lead.pk if lead else 0}"


def _order_form(data, members: list[Hospital]) -> dict:
    """The order form as typed (kept when refused): header fields and LINE_ROWS lines, each with a
    quantity per member."""
    rows = max(LINE_ROWS, sum(1 for key in data if key.startswith("product-")))
    return {
        "supplier": data.get("supplier", ""), "regional_warehouse": data.get("regional_warehouse", ""),
        "promised_date": data.get("promised_date", ""), "note": data.get("note", ""),
        "lines": [{
            "row": row,
            **{key: data.get(f"{key}-{row}", "").strip() for key in (
                "product", "platform_reference", "emergency_reason", "nhsa_exemption_reason")},
            "quantities": [(member, data.get(f"quantity-{row}-{member.pk}", "").strip()) for member in members],
        } for row in range(rows)],
    }


def _place(request: HttpRequest, alliance: str, form: dict) -> CentralOrder:
    """The central order of the form: what the page alone can tell (an unknown product code, a
    quantity that is not a number, no supplier) is refused here; every other rule by the service."""
    lead = central_purchasing.lead_hospital(alliance)
    supplier = Supplier.objects.filter(pk=_int(form["supplier"]), is_active=True).first()
    warehouse = central_purchasing.regional_warehouses(alliance).filter(pk=_int(form["regional_warehouse"])).first()
    problems: list[Problem] = []
    if supplier is None or warehouse is None or lead is None:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": _("choose a supplier and a regional warehouse")}))
    try:
        promised = datetime.date.fromisoformat(form["promised_date"])
    except ValueError:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": _("give the promised delivery date")}))
    lines = []
    catalog = Product.objects.filter(hospital=lead, is_active=True)
    for number, line in enumerate([line for line in form["lines"] if line["product"]
                                   or any(value for _member, value in line["quantities"])], start=1):
        product = find_product(catalog, line["product"]) if line["product"] and lead else None
        if product is None:
            problems.append(Problem(Refusal.PRODUCT_UNKNOWN, {"di": line["product"] or "—"}, number))
        quantities = {}
        for member, value in line["quantities"]:
            if value and _int(value) is None:
                problems.append(Problem(Refusal.CENTRAL_ORDER_INVALID, {"reason": _(
                    "line %(line)s: the quantity for %(member)s must be a whole number of at least 1") % {
                    "line": number, "member": member}}, number))
            elif value:
                quantities[member] = _int(value)
        if product is not None:
            lines.append(central_purchasing.CentralLineInput(
                product, quantities, platform_reference=line["platform_reference"][:64],
                emergency_reason=line["emergency_reason"][:500],
                nhsa_exemption_reason=line["nhsa_exemption_reason"][:500]))
    if problems:
        raise Refused(problems)
    return central_purchasing.place_central_order(
        user=request.user, supplier=supplier, regional_warehouse=warehouse, lines=lines, promised_date=promised,
        note=form["note"][:500])


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()][:2000]


@web_page(READERS)
def central_plan(request: HttpRequest) -> HttpResponse:
    """GET: members' open demand to tick. POST `propose`: the proposal for the ticked needs. POST
    `place`: the central orders of the proposal (recomputed at that moment, each source once)."""
    alliance = _require_alliance_actor(request)
    suggestions = _ids(request.POST.getlist("suggestion"))
    requisition_lines = _ids(request.POST.getlist("requisition_line"))
    action = request.POST.get("action") if request.method == "POST" else ""
    problems, proposal = [], None
    entered = {key: value for key, value in request.POST.items()
               if key.startswith(("platform_reference-", "emergency_reason-"))}
    exemptions = typed_exemptions(request)
    form = {"regional_warehouse": request.POST.get("regional_warehouse", ""), "note": request.POST.get("note", ""),
            "promised_date": request.POST.get("promised_date", "")
            or str(timezone.localdate() + datetime.timedelta(days=7))}
    try:
        if action == "place":
            placed = _place_plan(request, alliance, suggestions, requisition_lines, exemptions, form)
            numbers = ", ".join(order.purchase_order.number for order in placed.placed)
            messages.success(request, _("Central orders placed: %(numbers)s.") % {"numbers": numbers})
            return redirect("web:central-orders")
        if action == "propose":
            proposal = central_planning.propose_central_plan(
                user=request.user, alliance=alliance, suggestions=suggestions, requisition_lines=requisition_lines,
                nhsa_exemptions=exemptions)
    except Refused as refused:
        problems = problems_of(refused)
        if action == "place":
            proposal = _proposal_or_none(request, alliance, suggestions, requisition_lines, exemptions)
    proposed_orders = [(order, [
        (line, entered.get(f"platform_reference-{line.product.pk}", ""), entered.get(f"emergency_reason-{line.product.pk}", ""),
         exemptions.get(line.product.pk, ""))
        for line in order.lines]) for order in proposal.orders] if proposal else []
    return render(request, "web/alliance/central_plan.html", {
        "demand": members_open_demand(alliance) if proposal is None else [], "proposal": proposal,
        "proposed_orders": proposed_orders,
        "to_exempt": products_to_exempt(p for entry in proposal.unplanned for p in entry.problems) if proposal else [],
        "problems": problems, "suggestions": suggestions, "requisition_lines": requisition_lines, "form": form,
        "warehouses": central_purchasing.regional_warehouses(alliance),
    }, status=400 if problems else 200)


def _proposal_or_none(request: HttpRequest, alliance: str, suggestions: list[int], requisition_lines: list[int],
                      exemptions: dict[int, str]):
    """The proposal again after a refused placement, to correct it in place (none if nothing is plannable)."""
    try:
        return central_planning.propose_central_plan(user=request.user, alliance=alliance, suggestions=suggestions,
                                                     requisition_lines=requisition_lines, nhsa_exemptions=exemptions)
    except Refused:
        return None


def _place_plan(request: HttpRequest, alliance: str, suggestions: list[int], requisition_lines: list[int],
                exemptions: dict[int, str], form: dict) -> central_planning.CentralPlan:
    warehouse = central_purchasing.regional_warehouses(alliance).filter(pk=_int(form["regional_warehouse"])).first()
    try:
        promised = datetime.date.fromisoformat(form["promised_date"])
    except ValueError:
        promised = None
    if warehouse is None or promised is None:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("choose a regional warehouse and the promised delivery date"))
    orderings = {}
    for key, value in request.POST.items():
        kind, _dash, product = key.rpartition("-")
        if kind in ("platform_reference", "emergency_reason") and product.isdigit() and value.strip():
            current = orderings.get(int(product), PlanLineOrdering())
            orderings[int(product)] = PlanLineOrdering(
                value.strip()[:64] if kind == "platform_reference" else current.platform_reference,
                value.strip()[:500] if kind == "emergency_reason" else current.emergency_reason)
    return central_planning.place_central_plan(
        user=request.user, regional_warehouse=warehouse, promised_date=promised, suggestions=suggestions,
        requisition_lines=requisition_lines, orderings=orderings, nhsa_exemptions=exemptions, note=form["note"][:500])
