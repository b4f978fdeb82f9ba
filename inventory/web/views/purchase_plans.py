"""Purchase plans from demand (采购计划): an SPD operator ticks open replenishment suggestions and
requisition shortfalls, gets a plan grouped per supplier — the needs that cannot be planned listed
with their reasons — and orders it (one purchase order per supplier). A product not planned for
want of a 医保 code is given an exemption reason (on the page, or on the plan for the needs it left
open) and proposed again; the plan line shows the reason and its order line keeps it.

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
from inventory.errors import Refusal, Refused
from inventory.models import (
    PlanDemandSource,
    Product,
    PurchasePlan,
    PurchasePlanLine,
    ReplenishmentSuggestion,
    RequisitionLine,
)
from inventory.selectors.purchase_demand import open_suggestions, requisition_shortfalls, still_unplanned
from inventory.selectors.scope import visible_to
from inventory.services.purchasing import PlanLineOrdering, order_plan, plan_from_demand
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.nhsa_exemptions import products_to_exempt, typed_exemptions
from inventory.web.problems import flash_problems, problems_of


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()][:1000]


@web_page(STOCK_HANDLERS)
def plan_from_demand_page(request: HttpRequest) -> HttpResponse:
    """GET: what there is to buy, to tick. POST: the plan from the ticked needs, with the 医保 code
    exemption reasons typed; refused, the page again with the ticks kept, the reasons, and an
    exemption field for each product not planned for want of a 医保 code."""
    hospital = request.user.hospital
    selected = {"suggestions": _ids(request.POST.getlist("suggestion")),
                "requisition_lines": _ids(request.POST.getlist("requisition_line"))}
    problems, to_exempt = [], []
    if request.method == "POST":
        suggestions = ReplenishmentSuggestion.objects.filter(hospital=hospital, pk__in=selected["suggestions"])
        lines = RequisitionLine.objects.filter(requisition__hospital=hospital, pk__in=selected["requisition_lines"])
        try:
            plan = plan_from_demand(
                actor=Actor(user=request.user), hospital=hospital, suggestions=list(suggestions),
                requisition_lines=list(lines), nhsa_exemptions=typed_exemptions(request), source="demand",
                note=request.POST.get("note", "")[:500],
            )
        except Refused as error:
            problems, to_exempt = problems_of(error), products_to_exempt(error.problems)
        else:
            messages.success(request, _("Purchase plan %(plan)s is drafted.") % {"plan": plan})
            return redirect("web:purchase-plan", pk=plan.pk)
    return render(request, "web/purchasing/plan_new.html", {
        "suggestions": open_suggestions(hospital)[:500], "shortfalls": requisition_shortfalls(hospital)[:500],
        "plans": visible_to(request.user, PurchasePlan.objects.all()).order_by("-created_at", "-pk")[:20],
        "selected": selected, "problems": problems, "to_exempt": to_exempt, "note": request.POST.get("note", ""),
    }, status=400 if problems else 200)


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
        **(_to_plan_again(plan) if may(request.user, STOCK_HANDLERS) else {}),
    })


def _to_plan_again(plan: PurchasePlan) -> dict:
    """The needs of `plan` not planned for want of a 医保 code whose sources are still open and in no
    plan since, to plan again from the plan-from-demand page with an exemption reason for each product."""
    entries = [entry for entry in plan.unplanned
               if any(problem.get("code") == Refusal.NHSA_CODE_MISSING.name for problem in entry.get("problems", []))]
    suggestions, requisition_lines = still_unplanned(
        plan.hospital, suggestions={entry.get("suggestion") for entry in entries} - {None},
        requisition_lines={entry.get("requisition_line") for entry in entries} - {None})
    entries = [entry for entry in entries
               if entry.get("suggestion") in suggestions or entry.get("requisition_line") in requisition_lines]
    products = Product.objects.filter(hospital=plan.hospital_id, pk__in={entry["product"] for entry in entries})
    return {
        "to_exempt": sorted(products, key=lambda product: (product.name, product.pk)),
        "again_suggestions": [entry["suggestion"] for entry in entries if entry.get("suggestion")],
        "again_requisition_lines": [entry["requisition_line"] for entry in entries if entry.get("requisition_line")],
    }


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
