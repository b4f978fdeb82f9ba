"""Purchase plans from demand (采购计划): an SPD operator ticks open replenishment suggestions and
requisition shortfalls, gets a plan grouped per supplier — the needs that cannot be planned listed
with their reasons — and orders it (one purchase order per supplier).

Every rule is `services.purchasing` (`plan_from_demand`, `order_plan`); what there is to buy is
`selectors.purchase_demand`.
"""
import datetime
from collections import defaultdict

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import PlanDemandSource, PurchasePlan, PurchasePlanLine, ReplenishmentSuggestion, RequisitionLine
from inventory.selectors.purchase_demand import open_suggestions, requisition_shortfalls
from inventory.selectors.scope import visible_to
from inventory.services.purchasing import PlanLineOrdering, order_plan, plan_from_demand
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.problems import flash_problems


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()][:1000]


@web_page(STOCK_HANDLERS)
def plan_from_demand_page(request: HttpRequest) -> HttpResponse:
    """GET: what there is to buy, to tick. POST: the plan from the ticked needs."""
    hospital = request.user.hospital
    if request.method == "POST":
        suggestions = ReplenishmentSuggestion.objects.filter(hospital=hospital, pk__in=_ids(request.POST.getlist("suggestion")))
        lines = RequisitionLine.objects.filter(requisition__hospital=hospital,
                                               pk__in=_ids(request.POST.getlist("requisition_line")))
        try:
            plan = plan_from_demand(
                actor=Actor(user=request.user), hospital=hospital, suggestions=list(suggestions),
                requisition_lines=list(lines), source="demand", note=request.POST.get("note", "")[:500],
            )
        except Refused as error:
            flash_problems(request, error)
            return redirect("web:purchase-plan-new")
        messages.success(request, _("Purchase plan %(plan)s is drafted.") % {"plan": plan})
        return redirect("web:purchase-plan", pk=plan.pk)
    return render(request, "web/purchasing/plan_new.html", {
        "suggestions": open_suggestions(hospital)[:500], "shortfalls": requisition_shortfalls(hospital)[:500],
        "plans": visible_to(request.user, PurchasePlan.objects.all()).order_by("-created_at", "-pk")[:20],
    })


@web_page(READERS)
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A plan grouped per supplier with the agreement and price of each line, its sources, and what was not planned."""
    lines = PurchasePlanLine.objects.select_related("product", "agreement__supplier").prefetch_related(
        Prefetch("sources", PlanDemandSource.objects.order_by("pk"))).order_by("line_no")
    plan = get_object_or_404(
        visible_to(request.user, PurchasePlan.objects.all()).prefetch_related(Prefetch("lines", lines), "orders"), pk=pk
    )
    groups: dict[object, list[PurchasePlanLine]] = defaultdict(list)
    for line in plan.lines.all():
        groups[line.agreement.supplier if line.agreement else None].append(line)
    suppliers = [
        {"supplier": supplier, "lines": group,
         "value": sum((line.quantity * line.agreement.unit_price for line in group if line.agreement), 0)}
        for supplier, group in groups.items()
    ]
    return render(request, "web/purchasing/plan.html", {
        "plan": plan, "suppliers": suppliers, "orders": plan.orders.order_by("pk"),
        "may_order": may(request.user, STOCK_HANDLERS) and plan.status == PurchasePlan.Status.DRAFT,
        "tomorrow": timezone.localdate() + datetime.timedelta(days=1),
    })


@require_POST
@web_page(STOCK_HANDLERS)
def plan_order(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_object_or_404(visible_to(request.user, PurchasePlan.objects.all()), pk=pk)
    try:
        promised = datetime.date.fromisoformat(request.POST.get("promised_date", ""))
    except ValueError:
        messages.error(request, _("Give the promised delivery date."))
        return redirect("web:purchase-plan", pk=plan.pk)
    try:
        orderings = {
            line_no: PlanLineOrdering(request.POST.get(f"platform_reference-{line_no}", ""),
                                      request.POST.get(f"emergency_reason-{line_no}", ""))
            for line_no in plan.lines.values_list("line_no", flat=True)
            if f"platform_reference-{line_no}" in request.POST
        }
        orders = order_plan(actor=Actor(user=request.user), plan=plan, promised_date=promised, orderings=orderings)
    except Refused as error:
        flash_problems(request, error)
    else:
        messages.success(request, _("%(count)s purchase orders placed.") % {"count": len(orders)})
    return redirect("web:purchase-plan", pk=plan.pk)
