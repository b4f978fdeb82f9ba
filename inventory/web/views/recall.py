"""Recalls (召回) and implant records (植入物登记) for people.

The list opens a recall (prefilled from a unit when reached from its trace page, `?unit=`); a
recall's page shows its progress and every affected item, quarantines or returns stock by scan,
records each patient's follow-up and closes it. Stock handlers work recalls; everyone of the
hospital reads them (a nurse: the items of her departments); the regulator's export is for the
hospital-wide roles. `inventory.services.recall` decides.
"""
import datetime

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from inventory.errors import Refusal, Refused
from inventory.models import Location, Product, Recall
from inventory.selectors.recall import (
    followed_in_members,
    implant_uses_visible_to,
    recall_items_visible_to,
    recall_listing,
    recalls_visible_to,
)
from inventory.selectors.stock import StockScope
from inventory.services import recall as recalls
from inventory.web.access import CLINICAL, REVIEW_READERS, STOCK_HANDLERS, may, web_page
from inventory.web.operations import hospital_for
from inventory.web.problems import problems_of


def _form_defaults(request: HttpRequest) -> dict:
    unit_pk = request.GET.get("unit", "")
    if unit_pk.isdigit():
        unit = StockScope.of(request.user).traceable_units().filter(pk=int(unit_pk)).select_related("product").first()
        if unit is not None:
            return {"scope": Recall.Scope.LOT if unit.lot else Recall.Scope.SERIALS, "product": unit.product_id,
                    "lot": unit.lot, "serials": unit.serial, "unit": unit}
    return {"scope": Recall.Scope.LOT}


@web_page()
def recall_list(request: HttpRequest) -> HttpResponse:
    problems, status, form = [], 200, _form_defaults(request)
    can_open = may(request.user, STOCK_HANDLERS)
    if request.method == "POST":
        if not can_open:
            raise Http404
        form = {key: request.POST.get(key, "") for key in
                ("scope", "product", "udi_di", "lot", "serials", "reason", "source", "notice_reference", "notice_date")}
        try:
            recall = _open(request, form)
        except Refused as refused:
            problems, status = problems_of(refused), refused.status
        else:
            messages.success(request, _("Recall %(recall)s is open: its stock is locked.") % {"recall": recall.label})
            return redirect("web:recall", pk=recall.pk)
    products = []
    if can_open and request.user.hospital_id:
        products = Product.objects.filter(hospital_id=request.user.hospital_id).order_by("internal_code")[:500]
    return render(request, "web/recalls/list.html", {
        "recalls": recalls_visible_to(request.user)[:200], "can_open": can_open, "form": form, "problems": problems,
        "products": products, "scopes": Recall.Scope.choices, "sources": Recall.Source.choices,
        "today": datetime.date.today(),
    }, status=status)


def _open(request: HttpRequest, form: dict) -> Recall:
    hospital = hospital_for(request)
    product = None
    if form["product"].isdigit():
        product = Product.objects.filter(hospital=hospital, pk=int(form["product"])).first()
    try:
        notice_date = datetime.date.fromisoformat(form["notice_date"])
    except ValueError:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("notice date: a date is required"), field="notice_date") from None
    if form["scope"] not in Recall.Scope.values or form["source"] not in Recall.Source.values:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("what is recalled and its source are required"), field="scope")
    if not form["reason"].strip():
        raise Refused(Refusal.INVALID_REQUEST, detail=_("reason: required"), field="reason")
    return recalls.open_recall(
        hospital=hospital, user=request.user, scope=form["scope"], product=product, udi_di=form["udi_di"],
        lot=form["lot"][:64], serials=[s[:64] for s in form["serials"].replace(",", " ").split()],
        reason=form["reason"][:2000], source=form["source"], notice_reference=form["notice_reference"][:100],
        notice_date=notice_date,
    )


@web_page()
def recall_detail(request: HttpRequest, pk: int) -> HttpResponse:
    recall = get_object_or_404(recalls_visible_to(request.user), pk=pk)
    problems, status = [], 200
    if request.method == "POST":
        try:
            _work(request, recall)
        except Refused as refused:
            problems, status = problems_of(refused), refused.status
        else:
            return redirect("web:recall", pk=recall.pk)
    recalls.refresh(recall)
    recall.refresh_from_db()
    listing = recall_listing(request.user, recall)
    return render(request, "web/recalls/detail.html", {
        "recall": recall, "progress": listing.progress, "problems": problems,
        "followed_in": followed_in_members(recall),
        "stock_items": listing.stock_items, "used_items": listing.used_items,
        "can_work": may(request.user, STOCK_HANDLERS) and recall.status == Recall.Status.OPEN,
        "can_follow_up": recall.status == Recall.Status.OPEN and may(request.user, CLINICAL),
        "can_export": may(request.user, REVIEW_READERS),
        "quarantines": Location.objects.filter(hospital=recall.hospital, kind=Location.Kind.QUARANTINE,
                                               is_active=True).order_by("code"),
    }, status=status)


def _work(request: HttpRequest, recall: Recall) -> None:
    step = request.POST.get("step")
    if step == "follow-up":
        if not may(request.user, CLINICAL):
            raise Http404
        item_pk = request.POST.get("item", "")
        item = recall_items_visible_to(request.user, recall).filter(pk=int(item_pk) if item_pk.isdigit() else 0).first()
        if item is None:
            raise Http404
        recalls.record_follow_up(recall=recall, item=item, user=request.user, follow_up=request.POST.get("follow_up", ""),
                                 note=request.POST.get("note", "")[:2000])
        return
    if not may(request.user, STOCK_HANDLERS):
        raise Http404
    if step == "scan":
        action = request.POST.get("action", "")
        location_pk = request.POST.get("to_location", "")
        to_location = Location.objects.filter(hospital=recall.hospital, pk=int(location_pk)).first() \
            if location_pk.isdigit() else None
        item_pk = request.POST.get("item", "")
        item = recall.items.filter(pk=int(item_pk)).first() if item_pk.isdigit() else None
        code = request.POST.get("code", "").strip()[:300]
        if not code and item is None:
            raise Refused(Refusal.NOTHING_SCANNED)
        handled = recalls.handle_scan(recall=recall, user=request.user, action=action, code=code, item=item,
                                      to_location=to_location, note=request.POST.get("note", "")[:500],
                                      idempotency_key=request.POST.get("idempotency_key") or f"web-{code or item_pk}-{action}")
        messages.success(request, _("%(item)s: %(handling)s") % {
            "item": handled.unit.serial if handled.unit else handled.lot, "handling": handled.get_handling_display()})
    elif step == "close":
        recalls.close_recall(recall=recall, user=request.user, note=request.POST.get("note", "")[:2000])
        messages.success(request, _("Recall %(recall)s is closed.") % {"recall": recall.label})
    else:
        raise Http404


@web_page(REVIEW_READERS)
def recall_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    from inventory.api.recall import file_response

    recall = get_object_or_404(recalls_visible_to(request.user), pk=pk)
    csv_data = recalls.export_csv(recall)
    data = {"csv": lambda: csv_data, "xlsx": lambda: recalls.export_xlsx(recall),
            "pdf": lambda: recalls.export_pdf(recall)}[fmt]()
    return file_response(data, fmt, f"recall-{recall.pk}.{fmt}", recalls.sha256(csv_data))


@web_page()
def implant_list(request: HttpRequest) -> HttpResponse:
    encounter = request.GET.get("encounter", "").strip()[:64]
    uses = implant_uses_visible_to(request.user, encounter)
    return render(request, "web/recalls/implants.html", {
        "encounter": encounter, "rows": recalls.implant_rows(uses[:500]), "header": recalls.IMPLANT_HEADER,
    })


@web_page()
def implant_export(request: HttpRequest, fmt: str) -> HttpResponse:
    from inventory.api.recall import implant_file

    encounter = request.GET.get("encounter", "").strip()[:64]
    if fmt == "pdf" and not encounter:
        messages.error(request, _("Choose an encounter to print its implant record."))
        return redirect(reverse("web:implants"))
    return implant_file(request.user, implant_uses_visible_to(request.user, encounter), fmt, encounter)
