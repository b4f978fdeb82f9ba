"""Supplier evaluation pages (供应商评价, `/purchasing/evaluation/…`): indicator sets and their editor,
runs with score entry, weighting, finalising, the ranking, per-indicator table, trend chart and
report downloads; and, in the supplier portal, a supplier's own results (`/portal/evaluations/`).
Every rule is `services.evaluation`; administrators and SPD operators write, auditors read.
"""
import datetime
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import EvaluationRun, Indicator, IndicatorSet, Role, Supplier
from inventory.selectors.evaluation import (
    first_level,
    own_values,
    portal_evaluations,
    run_matrix,
    supplier_trends,
)
from inventory.selectors.scope import visible_to
from inventory.services.evaluation import (
    IndicatorInput,
    ScoreInput,
    create_run,
    enter_scores,
    finalise_run,
    indicator_inputs,
    load_default_set,
    missing_values,
    new_set_version,
    parse_score,
    refresh_computed,
    replace_indicators,
    set_method,
)
from inventory.services.reports import content_type
from inventory.web.access import EVALUATION_READERS, may, web_page
from inventory.web.evaluation_chart import trend_chart
from inventory.web.problems import problems_of
from inventory.web.views.portal import portal_page

READERS = EVALUATION_READERS
WRITERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})
REPORT_FORMATS = ("csv", "xlsx", "pdf")


def _writer(request: HttpRequest) -> Actor:
    if request.method != "POST" or not may(request.user, WRITERS):
        raise PermissionDenied
    return Actor(user=request.user)


def _date(text: str) -> datetime.date | None:
    try:
        return parse_date(text or "")
    except ValueError:
        return None


@web_page(READERS)
def index(request: HttpRequest) -> HttpResponse:
    """The hospital's indicator sets and runs; load the default set, start a run."""
    problems = []
    if request.method == "POST":
        actor = _writer(request)
        try:
            if request.POST.get("action") == "load-default":
                created = load_default_set(actor=actor, hospital=request.user.hospital)
                messages.success(request, _("The default indicator set is loaded."))
                return redirect("web:evaluation-set", pk=created.pk)
            run = _start_run(request, actor)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            return redirect("web:evaluation-run", pk=run.pk)
    sets = visible_to(request.user, IndicatorSet.objects.all()).order_by("name", "-version")
    return render(request, "web/evaluation/index.html", {
        "sets": sets, "runs": visible_to(request.user, EvaluationRun.objects.select_related("indicator_set"))[:200],
        "may_write": may(request.user, WRITERS), "problems": problems, "weightings": EvaluationRun.Weighting.choices,
        "scorings": EvaluationRun.Scoring.choices, "suppliers": Supplier.objects.filter(is_active=True).order_by("name"),
        "today": timezone.localdate(), "posted": request.POST if request.method == "POST" else {},
    })


def _start_run(request: HttpRequest, actor: Actor) -> EvaluationRun:
    indicator_set = visible_to(request.user, IndicatorSet.objects.all()).filter(
        pk=request.POST.get("indicator_set") if (request.POST.get("indicator_set") or "").isdigit() else None).first()
    start, end = _date(request.POST.get("period_start", "")), _date(request.POST.get("period_end", ""))
    if indicator_set is None or start is None or end is None:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("choose an indicator set and give the period"))
    supplier_ids = [value for value in request.POST.getlist("suppliers") if value.isdigit()]
    return create_run(
        actor=actor, hospital=request.user.hospital, indicator_set=indicator_set, name=request.POST.get("name", ""),
        period_start=start, period_end=end, suppliers=list(Supplier.objects.filter(pk__in=supplier_ids)) or None,
        weighting=request.POST.get("weighting", "EXPERT"), scoring=request.POST.get("scoring", "TOPSIS"),
    )


@web_page(READERS)
def set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The set editor: indicators with source, direction, weight and range; add, remove, reweigh,
    or make a new version of a frozen set."""
    indicator_set = get_object_or_404(visible_to(request.user, IndicatorSet.objects.all()), pk=pk)
    problems = []
    if request.method == "POST":
        actor = _writer(request)
        try:
            if request.POST.get("action") == "new-version":
                created = new_set_version(actor=actor, indicator_set=indicator_set)
                messages.success(request, _("Version %(version)s is made: change it here.") % {"version": created.version})
                return redirect("web:evaluation-set", pk=created.pk)
            replace_indicators(actor=actor, indicator_set=indicator_set, indicators=_edited(request, indicator_set))
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, _("The indicators are saved."))
            return redirect("web:evaluation-set", pk=indicator_set.pk)
    tops = first_level(indicator_set)
    return render(request, "web/evaluation/set.html", {
        "indicator_set": indicator_set, "tops": [(top, list(top.children.order_by("position", "pk"))) for top in tops],
        "may_edit": may(request.user, WRITERS) and not indicator_set.is_frozen,
        "may_write": may(request.user, WRITERS), "problems": problems,
        "sources": Indicator.Source.choices, "directions": Indicator.Direction.choices,
        "posted": request.POST if request.method == "POST" else {},
    })


def _decimal(text: str, default: Decimal) -> Decimal:
    try:
        value = Decimal((text or "").strip())
    except ArithmeticError:
        return default
    return value if value.is_finite() else default


def _edited(request: HttpRequest, indicator_set: IndicatorSet) -> list[IndicatorInput]:
    """The set's indicators with the posted change: weights, a removal, or one more indicator."""
    rows = indicator_inputs(indicator_set)
    action = request.POST.get("action")
    if action == "remove":
        code = request.POST.get("code", "")
        return [row for row in rows if row.code != code and row.parent != code]
    if action == "weights":
        return [IndicatorInput(**{**row.__dict__, "weight": _decimal(request.POST.get(f"weight-{row.code}", ""),
                                                                       Decimal(-1))}) for row in rows]
    if action == "add":
        return [*rows, IndicatorInput(
            code=request.POST.get("code", "").strip(), name=request.POST.get("name", "").strip(),
            parent=request.POST.get("parent", ""), source=request.POST.get("source", Indicator.Source.ENTERED),
            direction=request.POST.get("direction", Indicator.Direction.BENEFIT),
            weight=_decimal(request.POST.get("weight", "1"), Decimal(-1)),
            score_min=_decimal(request.POST.get("score_min", "0"), Decimal(0)),
            score_max=_decimal(request.POST.get("score_max", "100"), Decimal(0)),
        )]
    raise Refused(Refusal.INVALID_REQUEST, detail=_("unknown action"))


@web_page(READERS)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A run: score entry while a draft, the method, finalising; the ranking, every indicator's
    value, the trend chart and the report files."""
    run = get_object_or_404(visible_to(request.user, EvaluationRun.objects.select_related(
        "indicator_set", "finalised_by", "created_by")), pk=pk)
    problems = []
    if request.method == "POST":
        actor = _writer(request)
        try:
            done = _act_on_run(request, actor, run)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, done)
            return redirect("web:evaluation-run", pk=run.pk)
        run.refresh_from_db()
    indicators, rows = run_matrix(run)
    weights = dict(run.weights.values_list("indicator_id", "weight"))
    for indicator in indicators:
        indicator.run_weight = weights.get(indicator.pk)
    runs, trends = supplier_trends(hospital_id=run.hospital_id, supplier_ids=[row.participant.supplier_id for row in rows],
                                   until=run.period_end)
    chart = trend_chart(runs, [(row.participant.supplier_id, row.participant.supplier.name,
                                trends.get(row.participant.supplier_id, [])) for row in rows])
    return render(request, "web/evaluation/run.html", {
        "run": run, "indicators": indicators, "rows": rows, "chart": chart, "trend_runs": runs,
        "reports": [(report_format, getattr(run, f"{report_format}_sha256")) for report_format in REPORT_FORMATS],
        "missing": _missing(run),
        "may_write": may(request.user, WRITERS) and not run.is_final, "problems": problems,
        "weightings": EvaluationRun.Weighting.choices, "scorings": EvaluationRun.Scoring.choices,
        "tops": first_level(run.indicator_set),
        "ahp_text": "\n".join(" ".join(f"{value:g}" for value in row) for row in run.ahp_matrix),
    })


def _missing(run: EvaluationRun) -> list:
    problems = [] if run.is_final else missing_values(run)
    return problems_of(Refused(problems)) if problems else []


def _act_on_run(request: HttpRequest, actor: Actor, run: EvaluationRun) -> str:
    action = request.POST.get("action")
    if action == "scores":
        indicators = {indicator.pk: indicator for indicator in run.indicator_set.indicators.all()}
        suppliers = {participant.supplier_id: participant.supplier
                     for participant in run.participants.select_related("supplier")}
        scores = []
        for name, text in request.POST.items():
            parts = name.split("-")
            if len(parts) != 3 or parts[0] != "score" or not parts[1].isdigit() or not parts[2].isdigit():
                continue
            supplier, indicator = suppliers.get(int(parts[1])), indicators.get(int(parts[2]))
            if supplier is None or indicator is None or not indicator.is_entered:
                continue
            scores.append(ScoreInput(supplier, indicator, parse_score(text)))
        enter_scores(actor=actor, run=run, scores=scores)
        return _("The scores are saved.")
    if action == "method":
        set_method(actor=actor, run=run, weighting=request.POST.get("weighting", ""),
                   scoring=request.POST.get("scoring", ""), ahp_matrix=_matrix(request.POST.get("ahp_matrix", "")))
        return _("The method is saved.")
    if action == "refresh":
        refresh_computed(actor=actor, run=run)
        return _("The computed values are collected again.")
    if action == "finalise":
        finalise_run(actor=actor, run=run)
        return _("The evaluation is finalised.")
    raise Refused(Refusal.INVALID_REQUEST, detail=_("unknown action"))


def _matrix(text: str) -> list[list[float]]:
    """A pairwise matrix typed one row a line, values apart by spaces; 1/3 may be written as such."""
    rows = []
    for line in text.strip().splitlines()[:10]:
        row = []
        for word in line.replace(",", " ").split()[:10]:
            try:
                top, _slash, bottom = word.partition("/")
                value = float(top) / float(bottom) if bottom else float(top)
            except (ValueError, ZeroDivisionError):
                raise Refused(Refusal.INVALID_REQUEST, detail=_("%(text)s is not a number") % {"text": word}) from None
            row.append(value)
        rows.append(row)
    return rows


@web_page(READERS)
def report(request: HttpRequest, pk: int, report_format: str) -> FileResponse:
    """A finalised run's stored report as stored; X-Content-SHA256 is the hash recorded with it."""
    run = get_object_or_404(visible_to(request.user, EvaluationRun.objects.all()), pk=pk)
    stored = getattr(run, f"report_{report_format}", None) if report_format in REPORT_FORMATS else None
    if not stored:
        raise Http404
    response = FileResponse(stored.open("rb"), as_attachment=True, content_type=content_type(report_format),
                            filename=f"evaluation-{run.pk}.{report_format}")
    response["X-Content-SHA256"] = getattr(run, f"{report_format}_sha256")
    return response


@portal_page
def portal_results(request: HttpRequest) -> HttpResponse:
    """A supplier's own results: its rank and score and its own values, never another supplier's."""
    entries = list(portal_evaluations(request.user).order_by("-run__period_end", "-pk")[:50])
    return render(request, "web/portal/evaluations.html", {
        "entries": [(entry, own_values(entry)) for entry in entries],
    })

