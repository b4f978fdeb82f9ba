"""进销存 reconciliation for people: the runs by period, one run's summary, findings, stock table,
reports with their SHA-256, and a chart of use against billing.

Everyone who reads the hospital's books (READERS: auditors included) reads every run and downloads
its reports; administrators and SPD operators (RECONCILERS, as in the API) reconcile a period from
the list or re-run one from its page. `inventory.services.reconciliation.run_reconciliation` decides
everything (one current run per period, what a re-run keeps); its refusals are shown as problems.
A period reconciled from the list runs in the background (a year takes longer than a page should
wait): the person follows it on the job's page (web/views/jobs.py) and is sent to the run when it is
done — at once when tasks run in process. Auditors, SPD operators and administrators record what each
finding turned out to be (inventory.services.findings); the run page counts the findings still open,
sorts them by amount, and exports them with their dispositions on demand, beside the signed reports.
"""
import datetime
import json
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.errors import Refused
from inventory.models import BackgroundJob, Finding, FindingDisposition, Hospital, ReconciliationRun, Role
from inventory.selectors.charts import daily_use_and_billing
from inventory.selectors.flow_table import flow_table, search_flow_table
from inventory.selectors.reconciliation import runs_visible_to
from inventory.selectors.scope import sees_all_hospitals
from inventory.services.background import request_job
from inventory.services.findings import open_findings, record_disposition, with_current_disposition
from inventory.services.reconciliation import (
    billing_grace_days,
    check_period,
    nightly_day,
    unsettled_days,
)
from inventory.services.reports import content_type
from inventory.web.access import READERS, may, web_page
from inventory.web.charts import difference_chart, findings_chart, use_and_billing_chart
from inventory.web.operations import hospital_for
from inventory.web.problems import ShownProblem, problems_of

# Who may reconcile a period or re-run one: the API's MASTER_DATA_EDITORS.
RECONCILERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})
# Who records what a finding turned out to be: auditors too (the one thing they write).
DISPOSERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR, Role.AUDITOR})
EXPORT_FORMATS = ("csv", "xlsx")
REPORT_FORMATS = ("csv", "xlsx", "pdf")
RUNS_PER_PAGE = 50
FINDINGS_PER_PAGE = 50
STOCK_ROWS_PER_PAGE = 50
CHART_DAYS = 30  # a shorter run is shown with the days before it, up to this many
Status = ReconciliationRun.Status


# --- forms ----------------------------------------------------------------------------------------


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class RunFilterForm(forms.Form):
    """The list's filters, read from the query string."""

    CURRENT_CHOICES = (
        ("", gettext_lazy("Current and superseded")), ("yes", gettext_lazy("Current only")),
        ("no", gettext_lazy("Superseded only")),
    )

    period_from = forms.DateField(label=gettext_lazy("Periods ending on or after"), required=False,
                                  widget=_date_input())
    period_to = forms.DateField(label=gettext_lazy("Periods starting on or before"), required=False,
                                widget=_date_input())
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False,
                               choices=[("", gettext_lazy("All statuses")), *Status.choices])
    current = forms.ChoiceField(label=gettext_lazy("Current or superseded"), required=False, choices=CURRENT_CHOICES)

    def filter(self, runs: QuerySet[ReconciliationRun]) -> QuerySet[ReconciliationRun]:
        """`runs` narrowed by the valid filters (an invalid one filters nothing and is shown)."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("period_from"):
            runs = runs.filter(period_end__gte=data["period_from"])
        if data.get("period_to"):
            runs = runs.filter(period_start__lte=data["period_to"])
        if data.get("status"):
            runs = runs.filter(status=data["status"])
        if data.get("current"):
            runs = runs.filter(is_current=data["current"] == "yes")
        return runs


class RunRequestForm(forms.Form):
    """A period to reconcile: one day, or a range of days (end day included)."""

    period_start = forms.DateField(label=gettext_lazy("First day"), widget=_date_input())
    period_end = forms.DateField(label=gettext_lazy("Last day"), required=False, widget=_date_input(),
                                 help_text=gettext_lazy("Empty: the first day only"))

    def clean(self) -> dict:
        data = super().clean()
        if data.get("period_start") and not data.get("period_end"):
            data["period_end"] = data["period_start"]
        if data.get("period_start") and data.get("period_end") and data["period_end"] < data["period_start"]:
            self.add_error("period_end", _("The last day is before the first day."))
        return data


class FindingFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Type"), required=False)

    def __init__(self, data: object, *, counts: dict[str, int]) -> None:
        super().__init__(data)
        self.fields["kind"].choices = [
            ("", _("All types")),
            *[(kind, f"{label} ({counts.get(kind, 0)})") for kind, label in Finding.Kind.choices],
        ]

    def chosen_kind(self) -> str:
        return self.cleaned_data.get("kind", "") if self.is_valid() else ""


class FindingOrderForm(forms.Form):
    """How the findings are listed: in report order or largest amount first; all, open or disposed of."""

    SORTS = (("", gettext_lazy("Report order")), ("amount", gettext_lazy("Largest amount first")))
    STATES = (("", gettext_lazy("Open and disposed of")), ("open", gettext_lazy("Open only")),
              ("disposed", gettext_lazy("Disposed of only")))

    sort = forms.ChoiceField(label=gettext_lazy("Order"), required=False, choices=SORTS)
    state = forms.ChoiceField(label=gettext_lazy("Disposition"), required=False, choices=STATES)

    def apply(self, findings: QuerySet[Finding]) -> QuerySet[Finding]:
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("state") == "open":
            findings = findings.filter(current_outcome__isnull=True)
        elif data.get("state") == "disposed":
            findings = findings.filter(current_outcome__isnull=False)
        if data.get("sort") == "amount":
            findings = findings.order_by("-amount", "pk")
        return findings


class StockRowFilterForm(forms.Form):
    """The 进销存 table's filters: a product and a location, by code or name (part of either)."""

    product = forms.CharField(label=gettext_lazy("Product"), required=False, max_length=100)
    location = forms.CharField(label=gettext_lazy("Location"), required=False, max_length=100)

    def apply(self, rows: QuerySet | list[dict]) -> QuerySet | list[dict]:
        data = self.cleaned_data if self.is_valid() else {}
        return search_flow_table(rows, product=data.get("product") or "", location=data.get("location") or "")

    @property
    def active(self) -> bool:
        return bool(self.is_valid() and (self.cleaned_data.get("product") or self.cleaned_data.get("location")))


class DispositionForm(forms.Form):
    """What a finding turned out to be, with a note (the service checks both again)."""

    outcome = forms.ChoiceField(label=gettext_lazy("Disposition"), choices=FindingDisposition.Outcome.choices)
    note = forms.CharField(label=gettext_lazy("Note"), max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}))


# --- what the pages show --------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCount:
    kind: str
    label: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Pager:
    """A page of one of several paginated tables on a page: its own query parameter and anchor."""

    page: Page
    previous_url: str
    next_url: str


@dataclass(frozen=True)
class Report:
    format: str
    label: str
    url: str
    sha256: str
    size: int | None


def _kind_counts(findings: dict | None, *, all_kinds: bool) -> list[KindCount]:
    """The run's findings by type (summary["findings"]), in the report's order."""
    by_kind = (findings or {}).get("by_kind", {})
    counts = [
        KindCount(kind, str(label), by_kind.get(kind, {}).get("count", 0),
                  Decimal(by_kind.get(kind, {}).get("amount", "0")))
        for kind, label in Finding.Kind.choices
    ]
    return counts if all_kinds else [count for count in counts if count.count]


def _pager(request: HttpRequest, items: object, *, param: str, size: int, anchor: str) -> Pager:
    page = Paginator(items, size).get_page(request.GET.get(param))

    def url(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return f"?{query.urlencode()}#{anchor}"

    return Pager(
        page, url(page.previous_page_number()) if page.has_previous() else "",
        url(page.next_page_number()) if page.has_next() else "",
    )


def _reports(run: ReconciliationRun) -> list[Report]:
    reports = []
    for report_format in REPORT_FORMATS:
        stored = getattr(run, f"report_{report_format}")
        if not stored:
            continue
        try:
            size = stored.size
        except OSError:  # the row names a file the storage no longer holds: the download says so
            size = None
        reports.append(Report(
            report_format, report_format.upper(),
            reverse("web:reconciliation-report", kwargs={"pk": run.pk, "report_format": report_format}),
            getattr(run, f"{report_format}_sha256"), size,
        ))
    return reports


def _report_number() -> Subquery:
    """A finding's number in the reports (their findings are numbered 1… in the order stored), so
    that a filtered page still names a finding as the printed report does."""
    earlier = Finding.objects.filter(run=OuterRef("run"), pk__lte=OuterRef("pk")).order_by()
    return Subquery(earlier.values("run").annotate(count=Count("pk")).values("count")[:1])


def _chart_range(run: ReconciliationRun) -> tuple[datetime.date, datetime.date]:
    last = run.period_end
    return min(run.period_start, last - datetime.timedelta(days=CHART_DAYS - 1)), last


# --- pages ----------------------------------------------------------------------------------------


@web_page(READERS)
def run_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, RunRequestForm(initial={"period_start": nightly_day()}))


def _render_list(
    request: HttpRequest, run_form: RunRequestForm, problems: list[ShownProblem] | None = None, status: int = 200
) -> HttpResponse:
    form = RunFilterForm(request.GET)
    # The list reads one key of each summary, not the whole of it (which holds the stock table).
    runs = form.filter(runs_visible_to(request.user)).defer("summary").annotate(
        findings_summary=KeyTransform("findings", "summary"),
    ).select_related("superseded_by")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    for run in page:
        run.kinds = _kind_counts(run.findings_summary, all_kinds=False)
    return render(request, "web/reconciliation/list.html", {
        "form": form, "page": page, "run_form": run_form, "can_run": may(request.user, RECONCILERS),
        "all_hospitals": sees_all_hospitals(request.user), "nightly_day": nightly_day(),
        "grace_days": billing_grace_days(), "problems": problems if problems is not None else problems_of(form),
    }, status=status)


@require_POST
@web_page(RECONCILERS)
def start_run(request: HttpRequest) -> HttpResponse:
    """Reconcile a period in the background, or open its run when it already has one (a re-run is
    asked for on it). Sent to the run when it is done by the time the page answers (tasks in
    process), else to the job's page, which follows it."""
    form = RunRequestForm(request.POST)
    if not form.is_valid():
        return _render_list(request, form, problems_of(form), status=400)
    period = form.cleaned_data["period_start"], form.cleaned_data["period_end"]
    try:
        hospital = hospital_for(request)
        check_period(*period)
    except Refused as refused:
        return _render_list(request, form, problems_of(refused), status=refused.status)
    before = ReconciliationRun.objects.filter(
        hospital=hospital, period_start=period[0], period_end=period[1], is_current=True, status=Status.DONE,
    ).values_list("pk", flat=True).first()
    if days := unsettled_days(*period):
        messages.warning(request, _unsettled_message(days))
    return reconcile_in_background(request, hospital=hospital, period=period, before=before)


def reconcile_in_background(
    request: HttpRequest, *, hospital: Hospital, period: tuple[datetime.date, datetime.date],
    before: int | None, rerun: bool = False,
) -> HttpResponse:
    """Queue the period's reconciliation (a re-run with `rerun`) as a background job; answer the
    run's page when it is done by now (tasks in process), else the job's page, which follows it.
    `before` is the period's current DONE run, if any (a run again opened says so)."""
    job = request_job(kind=BackgroundJob.Kind.RECONCILIATION, requested_by=request.user, hospital=hospital, params={
        "period_start": period[0].isoformat(), "period_end": period[1].isoformat(), "existing_run": before,
        "rerun": rerun,
    })
    if job.status != BackgroundJob.Status.READY:
        return redirect("web:job", pk=job.pk)
    run = ReconciliationRun.objects.get(pk=job.result["run"])
    if run.pk == before:
        messages.info(request, _("This period was already reconciled: here is its run. Re-run it to reconcile "
                                 "the period again with today's data."))
    else:
        messages.success(request, _reconciled_message(run))
    return redirect("web:reconciliation-run", pk=run.pk)


def _unsettled_message(days: int) -> str:
    return _("The HIS may still be settling %(days)s day(s) of this period (it has %(grace)s days after a "
             "day's use): use billed late will show as 漏收 until the period is re-run.") % {
        "days": days, "grace": billing_grace_days(),
    }


@web_page(RECONCILERS)
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """Reconcile the run's period again: a new current run; this one is kept, superseded.

    The run page's button opens a review (which period, what this run found, what the re-run will
    replace); only its confirmation (`step=confirm`, posted) reconciles."""
    run = get_object_or_404(runs_visible_to(request.user), pk=pk)
    if request.method != "POST" or request.POST.get("step") != "confirm":
        findings = (run.summary or {}).get("findings", {})
        return render(request, "web/reconciliation/rerun.html", {
            "run": run, "findings": findings.get("count", 0),
            "amount": f"¥{Decimal(findings.get('amount', '0')):,.2f}",
        })
    return reconcile_in_background(request, hospital=run.hospital, period=(run.period_start, run.period_end),
                                   before=run.pk, rerun=True)


def _reconciled_message(run: ReconciliationRun) -> str:
    findings = run.summary.get("findings", {})
    return _("Run %(run)s reconciled %(start)s – %(end)s: %(count)s findings, %(amount)s at stake.") % {
        "run": run.pk, "start": run.period_start.isoformat(), "end": run.period_end.isoformat(),
        "count": findings.get("count", 0), "amount": f"¥{Decimal(findings.get('amount', '0')):,.2f}",
    }


@web_page(READERS)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(runs_visible_to(request.user), pk=pk)
    return _render_detail(request, run)


def _render_detail(
    request: HttpRequest, run: ReconciliationRun, problems: list[ShownProblem] | None = None, status: int = 200
) -> HttpResponse:
    summary = run.summary or {}
    kinds = _kind_counts(summary.get("findings"), all_kinds=True)
    kind_form = FindingFilterForm(request.GET, counts={count.kind: count.count for count in kinds})
    findings = with_current_disposition(
        run.findings.select_related("product", "unit", "location").order_by("pk").annotate(number=_report_number())
    ).prefetch_related(Prefetch(
        "dispositions", queryset=FindingDisposition.objects.select_related("recorded_by").order_by("recorded_at", "pk"),
    ))
    if kind := kind_form.chosen_kind():
        findings = findings.filter(kind=kind)
    order_form = FindingOrderForm(request.GET)
    findings = order_form.apply(findings)
    findings_pager = _pager(request, findings, param="page", size=FINDINGS_PER_PAGE, anchor="findings")
    for finding in findings_pager.page:
        finding.evidence_text = json.dumps(finding.evidence, ensure_ascii=False, indent=1) if finding.evidence else ""
    stock_form = StockRowFilterForm(request.GET)
    stock_pager = _pager(request, stock_form.apply(flow_table(run)), param="rows",
                         size=STOCK_ROWS_PER_PAGE, anchor="stock-table")
    first_day, last_day = _chart_range(run)
    grace = datetime.timedelta(days=summary.get("billing_grace_days", billing_grace_days()))
    days = daily_use_and_billing(run.hospital, first_day, last_day, grace=grace)
    chart = use_and_billing_chart(
        days,
        labels=(_("Used on patients"), _("Billed by the HIS"), _("This run's period")),
        shaded=(run.period_start, run.period_end),
    )
    later = getattr(run, "superseded_by", None)
    return render(request, "web/reconciliation/detail.html", {
        "run": run, "summary": summary, "totals": summary.get("totals"), "kinds": kinds, "kind": kind,
        "kind_form": kind_form, "findings": findings_pager, "stock": stock_pager, "chart": chart,
        "reports": _reports(run), "superseded_by": later, "can_run": may(request.user, RECONCILERS),
        "all_hospitals": sees_all_hospitals(request.user),
        "problems": problems if problems is not None else problems_of(kind_form),
        "difference": difference_chart(days),
        "findings_chart": findings_chart([(count.kind, count.label, count.count, count.amount) for count in kinds]),
        "order_form": order_form, "stock_form": stock_form, "open_count": open_findings(run).count(),
        "can_dispose": may(request.user, DISPOSERS), "disposition_form": DispositionForm(),
        "export_formats": EXPORT_FORMATS, "back": request.get_full_path(),
    }, status=status)


@require_POST
@web_page(DISPOSERS)
def record_finding_disposition(request: HttpRequest, pk: int) -> HttpResponse:
    """Record what a finding turned out to be; back to the run page where it was, at the finding."""
    finding = get_object_or_404(
        Finding.objects.filter(run__in=runs_visible_to(request.user)).select_related("run"), pk=pk,
    )
    form = DispositionForm(request.POST)
    form.is_valid()  # the service decides; the form only reads the fields
    try:
        disposition = record_disposition(
            finding=finding, outcome=form.cleaned_data.get("outcome", request.POST.get("outcome", "")),
            note=form.cleaned_data.get("note", request.POST.get("note", "")), recorded_by=request.user,
        )
    except Refused as refused:
        for problem in refused.problems:
            messages.error(request, problem.detail)
    else:
        messages.success(request, _("Finding %(number)s: %(outcome)s recorded.") % {
            "number": finding.pk, "outcome": disposition.get_outcome_display(),
        })
    back = request.POST.get("next", "")
    run_url = reverse("web:reconciliation-run", args=[finding.run_id])
    if not back.startswith(run_url):  # only back to this run's page, never elsewhere
        back = run_url
    return redirect(f"{back.split('#')[0]}#finding-{finding.pk}")


@require_POST
@web_page(READERS)
def export_findings(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's findings with their dispositions as CSV or XLSX, made in the background now. The
    signed reports stay as they were stored: dispositions change after them."""
    run = get_object_or_404(runs_visible_to(request.user), pk=pk)
    file_format = request.POST.get("format", "")
    if file_format not in EXPORT_FORMATS:
        raise Http404
    job = request_job(kind=BackgroundJob.Kind.FINDINGS_EXPORT, requested_by=request.user, hospital=run.hospital,
                      params={"run": run.pk, "format": file_format})
    return redirect("web:job", pk=job.pk)


@web_page(READERS)
def reports_status(request: HttpRequest, pk: int) -> JsonResponse:
    """Whether the run's reports are stored yet: the run page polls it while they are rendered by
    their task, and shows them when they are (reconciliation.js)."""
    run = get_object_or_404(runs_visible_to(request.user).defer("summary"), pk=pk)
    return JsonResponse({"status": run.status, "ready": run.has_reports})


@web_page(READERS)
def report(request: HttpRequest, pk: int, report_format: str) -> FileResponse:
    """A stored report as stored, byte for byte; X-Content-SHA256 is the hash recorded with it."""
    run = get_object_or_404(runs_visible_to(request.user), pk=pk)
    stored = getattr(run, f"report_{report_format}", None) if report_format in REPORT_FORMATS else None
    if not stored:
        raise Http404
    try:
        handle = stored.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        handle, as_attachment=True, content_type=content_type(report_format),
        filename=f"reconciliation-{run.pk}-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}.{report_format}",
    )
    response["X-Content-SHA256"] = getattr(run, f"{report_format}_sha256")
    return response
