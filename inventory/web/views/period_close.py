"""The monthly close (月结) for people: the hospital's months with their state and blockers, the
close with a review step, and the 月报 of each closed month.

Everyone who reads the hospital's books (READERS: auditors included) sees the months and downloads
the reports; administrators and SPD operators close. The close button opens a review — the month,
what still blocks it, what the snapshot will hold (read from the ledger, nothing written) — and
only its confirmation (`step=confirm`, posted) closes. `inventory.services.period_close` decides.
"""
import datetime

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from inventory.errors import Refused
from inventory.models import ClosedPeriod, Role
from inventory.selectors.periods import ledger_fold, snapshot_before
from inventory.selectors.scope import visible_to
from inventory.services.period_close import close_month, first_day, month_blockers, month_bounds, month_states
from inventory.web.access import READERS, may, web_page
from inventory.web.operations import hospital_for
from inventory.web.problems import problems_of

CLOSERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})


@web_page(READERS)
def month_list(request: HttpRequest) -> HttpResponse:
    try:
        hospital = hospital_for(request)
    except Refused as refused:
        return render(request, "web/periods/list.html", {"problems": problems_of(refused), "months": []},
                      status=refused.status)
    return render(request, "web/periods/list.html", {
        "months": month_states(hospital), "can_close": may(request.user, CLOSERS),
    })


def _month_of(request: HttpRequest) -> datetime.date | None:
    try:
        return first_day(datetime.date.fromisoformat(request.POST.get("month") or request.GET.get("month") or ""))
    except ValueError:
        return None


@web_page(CLOSERS)
def close(request: HttpRequest) -> HttpResponse:
    """The review of a month's close (GET, or POST without confirmation), then the close itself."""
    month = _month_of(request)
    if month is None:
        raise Http404
    try:
        hospital = hospital_for(request)
    except Refused as refused:
        return render(request, "web/periods/list.html", {"problems": problems_of(refused), "months": []},
                      status=refused.status)
    acknowledge = request.POST.get("acknowledge_his_backlog") == "on"
    if request.method == "POST" and request.POST.get("step") == "confirm":
        try:
            period = close_month(hospital=hospital, month=month, user=request.user, acknowledge_his_backlog=acknowledge,
                                 note=request.POST.get("note", "")[:500])
        except Refused as refused:
            return _review(request, hospital, month, problems_of(refused), status=refused.status)
        messages.success(request, _("%(month)s is closed: its books are final.") % {"month": f"{month:%Y-%m}"})
        return redirect(f"{reverse('web:periods')}#month-{period.month:%Y-%m}")
    return _review(request, hospital, month, [])


def _review(request: HttpRequest, hospital, month: datetime.date, problems: list, status: int = 200) -> HttpResponse:
    start, end = month_bounds(month)
    blockers = month_blockers(hospital, month)
    balances = ledger_fold(hospital, end, snapshot_before(hospital.pk, start)) if not blockers or all(
        b.acknowledgeable for b in blockers) else []
    return render(request, "web/periods/close.html", {
        "month": month, "blockers": blockers, "problems": problems,
        "only_acknowledgeable": bool(blockers) and all(b.acknowledgeable for b in blockers),
        "closable": all(b.acknowledgeable for b in blockers),
        "rows": len(balances), "quantity": sum(r.quantity for r in balances),
        "value": f"¥{sum(r.value for r in balances):,.2f}" if balances else "¥0.00",
    }, status=status)


@web_page(READERS)
def report(request: HttpRequest, pk: int) -> FileResponse:
    """The 月报 as stored, byte for byte; X-Content-SHA256 is the hash recorded at close."""
    period = get_object_or_404(visible_to(request.user, ClosedPeriod.objects.all()), pk=pk)
    try:
        handle = period.report_csv.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    response = FileResponse(handle, as_attachment=True, content_type="text/csv",
                            filename=f"monthly-report-{period.hospital_id}-{period.month:%Y-%m}.csv")
    response["X-Content-SHA256"] = period.csv_sha256
    return response
