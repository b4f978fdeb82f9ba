"""The stock page: units (一物一码) and lot balances, filtered, paginated, exported as CSV or XLSX.

The search field takes what people type (a serial, a lot, a product's code or part of its name) or
scan: a UDI whose GS separators arrive as the field's GS mark or as this workstation's substitute
character is read as the scanner meant it. A filter that is invalid shows its message and no list. Exports run in the background from the
page's buttons; `?export=` still answers the file at once, for scripts.
"""
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from inventory.models import BackgroundJob
from inventory.selectors.stock import (
    LOT_COLUMNS,
    UNIT_COLUMNS,
    StockScope,
    filter_lot_balances,
    filter_units,
    lot_export_rows,
    suggest_products,
    unit_export_rows,
)
from inventory.services.background import request_job
from inventory.web.access import web_page
from inventory.web.export import STOCK_EXPORTS, csv_response, xlsx_response
from inventory.web.forms import StockFilterForm
from inventory.web.listing import DEFAULT_PAGE_SIZE, Sort, listing
from inventory.web.problems import problems_of
from inventory.web.views.station import gs_substitute_of

PAGE_SIZE = DEFAULT_PAGE_SIZE  # unless the person chooses another (listing.PAGE_SIZES)
EXPORTS = {"csv": csv_response, "xlsx": xlsx_response}
# The columns each list sorts by; soonest expiry first unless asked otherwise.
UNIT_SORTS = (
    Sort("product", ("product__internal_code",)),
    Sort("serial", ("serial",)),
    Sort("lot", ("lot",)),
    Sort("expiry", ("expiry", "product__internal_code")),
    Sort("status", ("status",)),
    Sort("location", ("location__code",)),
    Sort("supplier", ("supplier__name",)),
    Sort("cost", ("unit_cost",)),
)
LOT_SORTS = (
    Sort("product", ("product__internal_code", "lot")),
    Sort("lot", ("lot",)),
    Sort("expiry", ("expiry", "product__internal_code")),
    Sort("location", ("location__code",)),
    Sort("quantity", ("quantity",)),
    Sort("cost", ("unit_cost",)),
    Sort("value", ("value",)),
)


@web_page()
def units(request: HttpRequest) -> HttpResponse:
    scope = StockScope.of(request.user)
    form = StockFilterForm(request.GET, scope=scope, gs_substitute=gs_substitute_of(request))
    if not form.is_valid():
        return _invalid(request, "web/stock/units.html", form, scope)
    queryset = filter_units(scope, form.filters())
    if (export := EXPORTS.get(request.GET.get("export", ""))) is not None:
        return export(_filename("units", request.GET["export"]), UNIT_COLUMNS, unit_export_rows(queryset))
    return _render(request, "web/stock/units.html", form, queryset, scope, UNIT_SORTS)


@web_page()
def lots(request: HttpRequest) -> HttpResponse:
    scope = StockScope.of(request.user)
    form = StockFilterForm(request.GET, scope=scope, gs_substitute=gs_substitute_of(request))
    if not form.is_valid():
        return _invalid(request, "web/stock/lots.html", form, scope)
    queryset = filter_lot_balances(scope, form.filters())
    if (export := EXPORTS.get(request.GET.get("export", ""))) is not None:
        return export(_filename("lots", request.GET["export"]), LOT_COLUMNS, lot_export_rows(queryset))
    # "3 盒 4 支" beside each quantity: the products' packaging units, read once for the page
    queryset = queryset.prefetch_related("product__packaging_units")
    return _render(request, "web/stock/lots.html", form, queryset, scope, LOT_SORTS)


@require_POST
@web_page()
def export(request: HttpRequest) -> HttpResponse:
    """Export the units or lots as filtered on the page (`query`), as CSV or XLSX, in the
    background: 200,000 units take longer than a page should wait. Answers the job's page."""
    what, file_format = request.POST.get("what", ""), request.POST.get("format", "")
    if what not in STOCK_EXPORTS or file_format not in EXPORTS or request.user.hospital_id is None:
        return HttpResponseBadRequest()
    job = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=request.user,
                      hospital=request.user.hospital,
                      params={"what": what, "format": file_format, "query": request.POST.get("query", "")[:2000]})
    return redirect("web:job", pk=job.pk)


@web_page()
def product_suggestions(request: HttpRequest) -> JsonResponse:
    """The products a product field offers for what has been typed so far (product-field.js); with
    `hospital`, only that hospital's (of those the person sees: e.g. the lead hospital's catalog on
    the central order form of alliance staff, who see every member's)."""
    hospital = request.GET.get("hospital", "")
    products = suggest_products(StockScope.of(request.user), request.GET.get("q", "")[:300],
                                hospital_id=int(hospital) if hospital.isdigit() else None)
    return JsonResponse({"products": [
        {"code": product.internal_code,
         "label": " ".join(part for part in (product.name, product.specification) if part)}
        for product in products
    ]})


def _render(request: HttpRequest, template: str, form: StockFilterForm, queryset: QuerySet, scope: StockScope,
            sorts: tuple[Sort, ...]) -> HttpResponse:
    shown = listing(request, queryset, sorts=sorts, default="expiry", default_page_size=PAGE_SIZE)
    query = shown.query.copy()
    query.pop("page", None)
    return render(request, template, {
        "form": form, "page": shown.page, "listing": shown, "query": query.urlencode(), "scope": scope,
        "problems": problems_of(form),
    })


def _invalid(request: HttpRequest, template: str, form: StockFilterForm, scope: StockScope) -> HttpResponse:
    """A filter that cannot be read shows why, and no list: an unfiltered list would look like the
    answer to the question asked (and no export is made of it either)."""
    return render(request, template, {"form": form, "scope": scope, "problems": problems_of(form), "invalid": True},
                  status=400)


def _filename(what: str, extension: str) -> str:
    return f"stock-{what}-{timezone.localtime():%Y%m%d-%H%M}.{extension}"
