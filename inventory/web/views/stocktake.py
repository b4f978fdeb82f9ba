"""Stocktakes (盘点) for people: the sessions, a count page for a phone or tablet, approval, papers.

The count page has one scan field (a keyboard or serial scanner types into it and presses Enter):
a unit's UDI counts the unit where the page says the person stands; a lot's label (no serial)
counts that lot with the quantity typed beside it, in any of the product's packaging units. A lot
without a label is counted by choosing the product and typing the lot. Every post answers with a
redirect back to the page and its problems in the messages area: the scan field has the focus
again for the next scan. `inventory.services.stocktake` decides every rule.
"""
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.errors import Refusal, Refused
from inventory.models import Location, Product, StocktakeLine, StocktakeSession, TrackingMode
from inventory.selectors.stock import StockScope
from inventory.selectors.stocktake import expected_hidden, sessions_visible_to
from inventory.selectors.units import resolve_scan
from inventory.services import stocktake
from inventory.services.idempotency import run_once
from inventory.services.reports import content_type
from inventory.services.stocktake_reports import count_sheet_pdf
from inventory.web.access import CLINICAL, STOCK_HANDLERS, may, web_page
from inventory.web.charts import BarInput, bar_chart
from inventory.web.operations import hospital_for, new_form_key, posted_key, scanned_code
from inventory.web.problems import flash_problems, problems_of, scan_response, wants_json
from inventory.web.views.station import gs_substitute_of

# Who counts (a nurse in her departments only) and who approves: as the service says.
COUNTERS = CLINICAL
APPROVERS = STOCK_HANDLERS
REPORT_FORMATS = ("csv", "xlsx", "pdf")
SESSIONS_SHOWN = 100


@web_page()
def session_list(request: HttpRequest) -> HttpResponse:
    """The sessions the person may see, newest first, and (for counters) the form to start one."""
    sessions = sessions_visible_to(request.user).prefetch_related("locations")[:SESSIONS_SHOWN]
    scope = StockScope.of(request.user)
    return render(request, "web/stocktake/list.html", {
        "sessions": sessions, "may_count": may(request.user, COUNTERS),
        "locations": scope.locations().filter(is_active=True).order_by("code"),
        "products": _products(request),
    })


@web_page(COUNTERS)
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    scope = StockScope.of(request.user)
    locations = list(scope.locations().filter(pk__in=_ids(request.POST.getlist("locations"))))
    product = None
    if request.POST.get("product"):
        product = _products(request).filter(pk__in=_ids([request.POST["product"]])).first()
    try:
        session = stocktake.start_count(
            user=request.user, hospital=hospital_for(request), locations=locations, product=product,
            lot=request.POST.get("lot", "").strip()[:64], blind=request.POST.get("blind") == "on",
            freeze_outgoing=request.POST.get("freeze_outgoing") == "on", note=request.POST.get("note", "")[:500],
        )
    except Refused as refused:
        flash_problems(request, refused)
        return redirect("web:stocktakes")
    return redirect("web:stocktake", session.pk)


@web_page()
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(sessions_visible_to(request.user).prefetch_related("locations"), pk=pk)
    lines = list(session.lines.select_related("location", "product", "unit", "counted_by", "recounted_by",
                                              "found_at", "movement"))
    for line in lines:
        line.needs_recount_now = stocktake.needs_recount(line)
    hidden = expected_hidden(session)
    return render(request, "web/stocktake/detail.html", {
        "session": session, "lines": lines, "hidden": hidden, "locations": list(session.locations.all()),
        "may_count": may(request.user, COUNTERS) and session.status == StocktakeSession.Status.COUNTING,
        "may_recount": may(request.user, COUNTERS) and session.is_open,
        "may_approve": may(request.user, APPROVERS) and session.status == StocktakeSession.Status.SUBMITTED,
        "approve_key": new_form_key("stocktake-approve"), "products": _products(request),
        "qualities": StocktakeLine.Quality.choices[1:], "reasons": StocktakeLine.Adjustment.choices,
        "findings": session.findings.select_related("supplier", "product", "unit"),
        "here": _int(request.GET.get("at")), "reports": session.csv_sha256 and REPORT_FORMATS,
    })


@web_page(COUNTERS)
@require_POST
def scan(request: HttpRequest, pk: int) -> HttpResponse:
    """A scanned unit, or a scanned lot label with the quantity typed beside it. scan-field.js asks
    for JSON (a refusal is shown at the field, a count reloads the page); a plain post is redirected."""
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    location = _location(session, request.POST.get("location"))
    back = f"{reverse('web:stocktake', args=[session.pk])}?at={location.pk if location else ''}#scan"
    try:
        if location is None:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("choose where you are counting"))
        code = scanned_code(request, request.POST.get("code", ""))
        if not code.strip():
            raise Refused(Refusal.NOTHING_SCANNED)
        resolution = resolve_scan(session.hospital, code, separator=gs_substitute_of(request))
        quality, note = request.POST.get("quality", ""), request.POST.get("note", "")[:500]
        if resolution.unit is not None:
            line = stocktake.count_unit(session=session, user=request.user, unit=resolution.unit, location=location,
                                        quality=quality, note=note)
        elif resolution.product is not None and resolution.product.tracking == TrackingMode.LOT and resolution.udi.lot:
            line = stocktake.count_lot(
                session=session, user=request.user, product=resolution.product, lot=resolution.udi.lot,
                location=location, quantity=_quantity(request.POST.get("quantity")),
                packaging_unit=request.POST.get("packaging_unit", "").strip(), quality=quality, note=note,
            )
        elif resolution.product is not None and resolution.product.tracking == TrackingMode.LOT:
            raise Refused(Refusal.LOT_MISSING)
        else:
            raise Refused([resolution.problem])
    except Refused as refused:
        if wants_json(request):
            return scan_response(ok=False, problems=problems_of(refused), status=refused.status)
        flash_problems(request, refused)
        return redirect(back)
    messages.success(request, _("Counted: %(item)s") % {"item": _describe(line)})
    if wants_json(request):  # scan-field.js: reload the page, which shows the line counted
        return scan_response(ok=True, message=_("Counted: %(item)s") % {"item": _describe(line)},
                             redirect=back.removesuffix("#scan"))
    return redirect(back)


@web_page(COUNTERS)
@require_POST
def count_lot(request: HttpRequest, pk: int) -> HttpResponse:
    """A lot counted without scanning its label: product, lot and quantity typed."""
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    location = _location(session, request.POST.get("location"))
    back = f"{reverse('web:stocktake', args=[session.pk])}?at={location.pk if location else ''}#scan"
    product = _products(request).filter(pk__in=_ids([request.POST.get("product", "")])).first()
    try:
        if location is None or product is None:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("choose the location and the product"))
        line = stocktake.count_lot(
            session=session, user=request.user, product=product, lot=request.POST.get("lot", "").strip()[:64],
            location=location, quantity=_quantity(request.POST.get("quantity")),
            packaging_unit=request.POST.get("packaging_unit", "").strip(), quality=request.POST.get("quality", ""),
            note=request.POST.get("note", "")[:500],
        )
    except Refused as refused:
        flash_problems(request, refused)
        return redirect(back)
    messages.success(request, _("Counted: %(item)s") % {"item": _describe(line)})
    return redirect(back)


@web_page(COUNTERS)
@require_POST
def line_action(request: HttpRequest, pk: int, line: int) -> HttpResponse:
    """Confirm a daily check's line as expected, or record a recount."""
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    row = get_object_or_404(session.lines.select_related("session", "location", "product"), pk=line)
    try:
        if request.POST.get("action") == "confirm":
            stocktake.confirm_line(line=row, user=request.user, quality=request.POST.get("quality", ""))
        else:
            stocktake.recount_line(line=row, user=request.user, quantity=_quantity(request.POST.get("quantity")),
                                   packaging_unit=request.POST.get("packaging_unit", "").strip(),
                                   note=request.POST.get("note", "")[:500])
            messages.success(request, _("Recount recorded: %(item)s") % {"item": _describe(row)})
    except Refused as refused:
        flash_problems(request, refused)
    return redirect(f"{reverse('web:stocktake', args=[session.pk])}#line-{row.pk}")


@web_page(COUNTERS)
@require_POST
def session_action(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit, approve or cancel the session."""
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    action = request.POST.get("action")
    try:
        if action == "submit":
            stocktake.submit(session=session, user=request.user)
            messages.success(request, _("The count is submitted: the variances are shown below."))
        elif action == "approve":
            reasons = {
                int(name.removeprefix("reason-")): value for name, value in request.POST.items()
                if name.startswith("reason-") and name.removeprefix("reason-").isdigit() and value
            }
            run_once(hospital=session.hospital, key=posted_key(request, "stocktake-approve"),
                     operation="stocktake:approve", payload={"session": session.pk, "reasons": sorted(reasons.items())},
                     perform=lambda: stocktake.approve(session=session, user=request.user, reasons=reasons))
            messages.success(request, _("Approved: the variances are posted to the ledger."))
        elif action == "cancel":
            stocktake.cancel(session=session, user=request.user)
            messages.success(request, _("The count is cancelled: nothing was posted."))
        else:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("unknown action"))
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:stocktake", session.pk)


@web_page()
def sheet(request: HttpRequest, pk: int, location: int) -> HttpResponse:
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    where = get_object_or_404(session.locations.all(), pk=location)
    response = HttpResponse(count_sheet_pdf(session, where), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="stocktake-{session.pk}-{where.code}.pdf"'
    return response


@web_page()
def report(request: HttpRequest, pk: int, report_format: str) -> FileResponse:
    """A stored variance report as stored; X-Content-SHA256 is the hash recorded with it."""
    session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
    stored = getattr(session, f"report_{report_format}", None) if report_format in REPORT_FORMATS else None
    if not stored:
        raise Http404
    response = FileResponse(stored.open("rb"), as_attachment=True, content_type=content_type(report_format),
                            filename=f"stocktake-{session.pk}.{report_format}")
    response["X-Content-SHA256"] = getattr(session, f"{report_format}_sha256")
    return response


@web_page()
def location_history(request: HttpRequest, pk: int) -> HttpResponse:
    """A location's approved counts as a trend: accuracy and the value of the variances."""
    location = get_object_or_404(StockScope.of(request.user).locations(), pk=pk)
    rows = stocktake.location_history(location=location)
    charts = None
    if rows:
        def link(row: dict) -> str:
            return reverse("web:stocktake", args=[row["session"]])

        charts = {
            "accuracy": bar_chart([BarInput(f"#{row['session']}", Decimal(str(row["accuracy"])),
                                            _("Count #%(n)s: %(a)s%% of lines without variance")
                                            % {"n": row["session"], "a": row["accuracy"]}, link(row))
                                   for row in rows]),
            "value": bar_chart([BarInput(f"#{row['session']}", row["variance_value"],
                                         _("Count #%(n)s: variances worth %(v)s") % {"n": row["session"],
                                                                                     "v": row["variance_value"]},
                                         link(row)) for row in rows]),
        }
    return render(request, "web/stocktake/history.html", {"location": location, "rows": rows, "charts": charts})


def _describe(line: StocktakeLine) -> str:
    if line.unit_id:
        return f"{line.product.name} SN {line.unit.serial}"
    return f"{line.product.name} {_('lot')} {line.lot} × {line.counted_quantity}"


def _products(request: HttpRequest):
    hospital_id = request.user.hospital_id
    return Product.objects.filter(hospital_id=hospital_id, tracking=TrackingMode.LOT, is_active=True).order_by(
        "internal_code")


def _location(session: StocktakeSession, raw: str | None) -> Location | None:
    value = _int(raw)
    return session.locations.filter(pk=value).first() if value else None


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


def _ids(raws: list[str]) -> list[int]:
    return [value for raw in raws if (value := _int(raw))]


def _quantity(raw: str | None) -> int | Decimal:
    try:
        value = Decimal((raw or "").strip())
    except InvalidOperation:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("quantity: type the quantity counted")) from None
    if not value.is_finite() or abs(value) > 10**9:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("quantity: type the quantity counted"))
    return int(value) if value == value.to_integral_value() else value
