"""Supplier evaluation (供应商评价): indicator sets, runs, entered scores, finalising.

- `load_default_set` / `create_indicator_set` / `replace_indicators` / `new_set_version`: a
  hospital's indicator sets. A set used by a run is frozen (`EVALUATION_SET_FROZEN`): a change is a
  new version, so a finalised run is always read with the indicators it was scored on.
- `create_run`: a run over a period for the given suppliers (default: those with an order promised
  in the period); the computed indicators are collected at once, the entered ones wait for scores.
- `set_method`: weighting (expert, entropy, AHP with its pairwise matrix: CR ≥ 0.1 refused with the
  CR shown) and scoring (linear weighting or TOPSIS) of a draft run.
- `enter_scores`: evaluators' scores, each in its indicator's range; every problem listed at once.
- `finalise_run`: computed values collected again, refused while any value is missing (every one
  listed), then weights, scores and ranks stored with who and when, and the report files written
  with their SHA-256. A finalised run never changes (`EVALUATION_RUN_FINALISED`); on PostgreSQL
  the database refuses it too, whatever the path (a trigger, migration 0038), on SQLite this
  service's rule is the only one.

The arithmetic is `services.evaluation_maths`; roles: administrators and SPD operators write.
"""
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    EvaluatedSupplier,
    EvaluationRun,
    EvaluationValue,
    EvaluationWeight,
    Hospital,
    Indicator,
    IndicatorSet,
    Role,
    Supplier,
)
from inventory.selectors.evaluation import computed_values, first_level, scored_indicators, suppliers_with_orders
from inventory.services import evaluation_maths

EVALUATORS = (Role.ADMIN, Role.SPD_OPERATOR)
Source = Indicator.Source
Direction = Indicator.Direction
# Computed indicators have one meaning, so one direction.
SOURCE_DIRECTION = {
    Source.ON_TIME_RATE: Direction.BENEFIT, Source.FILL_RATE: Direction.BENEFIT,
    Source.REJECTION_RATE: Direction.COST, Source.UPHELD_COMPLAINTS: Direction.COST,
    Source.CERTIFICATE_LAPSES: Direction.COST,
}


@dataclass(frozen=True)
class IndicatorInput:
    code: str
    name: str
    parent: str = ""  # the code of its first-level indicator; "" for a first-level one
    source: str = Source.ENTERED
    direction: str = Direction.BENEFIT
    weight: Decimal = Decimal(1)
    score_min: Decimal = Decimal(0)
    score_max: Decimal = Decimal(100)


# The eight first-level indicators of the seeds (quality, delivery, service, … price last), each
# with the indicators scored under it, and their expert weights.
DEFAULT_SET_NAME = "供应商综合评价"
DEFAULT_INDICATORS = [
    IndicatorInput("Q", "产品质量", weight=Decimal(25)),
    IndicatorInput("Q1", "验收拒收率", "Q", Source.REJECTION_RATE, Direction.COST, Decimal(1)),
    IndicatorInput("Q2", "临床使用质量评分", "Q", weight=Decimal(1)),
    IndicatorInput("D", "交货能力", weight=Decimal(20)),
    IndicatorInput("D1", "准时交货率", "D", Source.ON_TIME_RATE, Direction.BENEFIT, Decimal(1)),
    IndicatorInput("D2", "订单满足率", "D", Source.FILL_RATE, Direction.BENEFIT, Decimal(1)),
    IndicatorInput("S", "服务水平", weight=Decimal(15)),
    IndicatorInput("S1", "售后与临床支持评分", "S", weight=Decimal(1)),
    IndicatorInput("C", "资质合规", weight=Decimal(10)),
    IndicatorInput("C1", "资质证照过期次数", "C", Source.CERTIFICATE_LAPSES, Direction.COST, Decimal(1)),
    IndicatorInput("R", "信誉与投诉", weight=Decimal(10)),
    IndicatorInput("R1", "成立的书面投诉数", "R", Source.UPHELD_COMPLAINTS, Direction.COST, Decimal(1)),
    IndicatorInput("I", "信息化水平", weight=Decimal(5)),
    IndicatorInput("I1", "UDI 与电子送货单配合评分", "I", weight=Decimal(1)),
    IndicatorInput("E", "应急保障能力", weight=Decimal(5)),
    IndicatorInput("E1", "应急供货评分", "E", weight=Decimal(1)),
    IndicatorInput("P", "价格", weight=Decimal(10)),
    IndicatorInput("P1", "价格水平评分", "P", weight=Decimal(1)),
]


def _require_evaluator(actor: Actor) -> None:
    if not actor.user.has_role(*EVALUATORS):
        raise Refused(Refusal.NOT_ALLOWED, action=_("evaluate suppliers"))


# --- indicator sets ------------------------------------------------------------------------------


def load_default_set(*, actor: Actor, hospital: Hospital) -> IndicatorSet:
    """The seeds' eight first-level indicators as a new set (a new version if the hospital has it)."""
    return create_indicator_set(actor=actor, hospital=hospital, name=DEFAULT_SET_NAME, indicators=DEFAULT_INDICATORS)


def create_indicator_set(
    *, actor: Actor, hospital: Hospital, name: str, indicators: Sequence[IndicatorInput]
) -> IndicatorSet:
    """A new indicator set (version 1, or the next version of a set of that name)."""
    _require_evaluator(actor)
    name = name.strip()
    if not name:
        raise Refused(Refusal.EVALUATION_SET_INVALID, detail=_("a set needs a name"))
    _check_indicators(indicators)
    with transaction.atomic():
        latest = (IndicatorSet.objects.select_for_update().filter(hospital=hospital, name=name)
                  .order_by("-version").first())
        indicator_set = IndicatorSet.objects.create(
            hospital=hospital, name=name, version=latest.version + 1 if latest else 1, created_by=actor.user)
        _write_indicators(indicator_set, indicators)
        return indicator_set


def replace_indicators(*, actor: Actor, indicator_set: IndicatorSet, indicators: Sequence[IndicatorInput]) -> IndicatorSet:
    """Replace the indicators of a set no run has used yet."""
    _require_evaluator(actor)
    _check_indicators(indicators)
    with transaction.atomic():
        indicator_set = IndicatorSet.objects.select_for_update().get(pk=indicator_set.pk)
        if indicator_set.is_frozen:
            raise Refused(Refusal.EVALUATION_SET_FROZEN, set=str(indicator_set))
        indicator_set.indicators.filter(parent__isnull=False).delete()
        indicator_set.indicators.all().delete()
        _write_indicators(indicator_set, indicators)
        return indicator_set


def new_set_version(*, actor: Actor, indicator_set: IndicatorSet) -> IndicatorSet:
    """A copy of the set as its next version, open to changes."""
    return create_indicator_set(
        actor=actor, hospital=indicator_set.hospital, name=indicator_set.name, indicators=indicator_inputs(indicator_set))


def indicator_inputs(indicator_set: IndicatorSet) -> list[IndicatorInput]:
    """The set's indicators as inputs (first-level ones before their children), to copy or edit them."""
    rows = []
    for top in first_level(indicator_set):
        rows.append(_as_input(top))
        rows.extend(_as_input(child) for child in top.children.order_by("position", "pk"))
    return rows


def _as_input(indicator: Indicator) -> IndicatorInput:
    return IndicatorInput(
        code=indicator.code, name=indicator.name, parent=indicator.parent.code if indicator.parent_id else "",
        source=indicator.source, direction=indicator.direction, weight=indicator.weight,
        score_min=indicator.score_min, score_max=indicator.score_max,
    )


def _check_indicators(indicators: Sequence[IndicatorInput]) -> None:
    problems = []

    def bad(detail: str, item: int) -> None:
        problems.append(Problem(Refusal.EVALUATION_SET_INVALID, {"detail": detail}, item))

    codes = [indicator.code.strip() for indicator in indicators]
    tops = {indicator.code.strip() for indicator in indicators if not indicator.parent}
    if not indicators:
        bad(str(_("a set needs at least one indicator")), 0)
    if len(tops) > len(evaluation_maths.RANDOM_INDEX):
        bad(str(_("at most %(count)d first-level indicators") % {"count": len(evaluation_maths.RANDOM_INDEX)}), 0)
    for position, indicator in enumerate(indicators, start=1):
        if not indicator.code.strip() or not indicator.name.strip():
            bad(str(_("every indicator needs a code and a name")), position)
        if codes.count(indicator.code.strip()) > 1:
            bad(str(_("the code %(code)s is used twice") % {"code": indicator.code}), position)
        if indicator.parent and indicator.parent not in tops:
            bad(str(_("%(code)s is under %(parent)s, which is not a first-level indicator of the set")
                    % {"code": indicator.code, "parent": indicator.parent}), position)
        if indicator.source not in Source.values or indicator.direction not in Direction.values:
            bad(str(_("%(code)s has an unknown source or direction") % {"code": indicator.code}), position)
        if indicator.weight < 0:
            bad(str(_("%(code)s has a negative weight") % {"code": indicator.code}), position)
        if indicator.score_max <= indicator.score_min:
            bad(str(_("%(code)s: the highest score must be above the lowest") % {"code": indicator.code}), position)
    if problems:
        raise Refused(problems)


def _write_indicators(indicator_set: IndicatorSet, indicators: Sequence[IndicatorInput]) -> None:
    created: dict[str, Indicator] = {}
    ordered = [row for row in indicators if not row.parent] + [row for row in indicators if row.parent]
    for position, row in enumerate(ordered, start=1):
        source = row.source
        created[row.code.strip()] = Indicator.objects.create(
            indicator_set=indicator_set, parent=created.get(row.parent), code=row.code.strip(), name=row.name.strip(),
            position=position, source=source, direction=SOURCE_DIRECTION.get(source, row.direction),
            weight=row.weight, score_min=row.score_min, score_max=row.score_max,
        )


# --- runs ----------------------------------------------------------------------------------------


def create_run(
    *, actor: Actor, hospital: Hospital, indicator_set: IndicatorSet, name: str, period_start: datetime.date,
    period_end: datetime.date, suppliers: Sequence[Supplier] | None = None,
    weighting: str = EvaluationRun.Weighting.EXPERT, scoring: str = EvaluationRun.Scoring.TOPSIS,
    ahp_matrix: list[list[float]] | None = None,
) -> EvaluationRun:
    """A draft run of the suppliers over the period, its computed values collected; the set is frozen."""
    _require_evaluator(actor)
    if indicator_set.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="indicator set")
    if period_end < period_start:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("the period ends before it starts"))
    name = name.strip() or f"{period_start:%Y-%m-%d}–{period_end:%Y-%m-%d}"
    with transaction.atomic():
        indicator_set = IndicatorSet.objects.select_for_update().get(pk=indicator_set.pk)
        chosen = list(suppliers) if suppliers else suppliers_with_orders(hospital=hospital, start=period_start,
                                                                          end=period_end)
        if not chosen:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("no supplier to evaluate: none had an order promised in "
                                                            "the period; name the suppliers"))
        cr = _check_method(indicator_set, weighting, scoring, ahp_matrix or [])
        run = EvaluationRun.objects.create(
            hospital=hospital, indicator_set=indicator_set, name=name, period_start=period_start,
            period_end=period_end, weighting=weighting, scoring=scoring, ahp_matrix=ahp_matrix or [], ahp_cr=cr,
            created_by=actor.user,
        )
        if not indicator_set.is_frozen:
            indicator_set.frozen_at = timezone.now()
            indicator_set.save(update_fields=["frozen_at"])
        EvaluatedSupplier.objects.bulk_create(
            EvaluatedSupplier(run=run, supplier=supplier) for supplier in {s.pk: s for s in chosen}.values())
        EvaluationValue.objects.bulk_create(
            EvaluationValue(run=run, supplier_id=participant.supplier_id, indicator=indicator)
            for participant in run.participants.all() for indicator in scored_indicators(indicator_set)
        )
        _collect_computed(run)
        return run


def set_method(
    *, actor: Actor, run: EvaluationRun, weighting: str, scoring: str, ahp_matrix: list[list[float]] | None = None
) -> EvaluationRun:
    """Choose how a draft run weighs and scores; an AHP matrix is checked (CR < 0.1) here."""
    _require_evaluator(actor)
    with transaction.atomic():
        run = _draft(run)
        run.ahp_cr = _check_method(run.indicator_set, weighting, scoring, ahp_matrix or [])
        run.weighting, run.scoring, run.ahp_matrix = weighting, scoring, ahp_matrix or []
        run.save(update_fields=["weighting", "scoring", "ahp_matrix", "ahp_cr"])
        return run


def _check_method(indicator_set: IndicatorSet, weighting: str, scoring: str, matrix: list[list[float]]) -> Decimal | None:
    if weighting not in EvaluationRun.Weighting.values or scoring not in EvaluationRun.Scoring.values:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("unknown weighting or scoring method"))
    if weighting != EvaluationRun.Weighting.AHP:
        return None
    size = len(first_level(indicator_set))
    if len(matrix) != size or any(len(row) != size for row in matrix):
        raise Refused(Refusal.INVALID_REQUEST, detail=_("the AHP matrix compares the %(count)d first-level "
                                                        "indicators: %(count)d rows of %(count)d") % {"count": size})
    ratio = evaluation_maths.ahp_weights(matrix)[1]
    return Decimal(str(round(ratio, 4)))


@dataclass(frozen=True)
class ScoreInput:
    supplier: Supplier
    indicator: Indicator
    value: Decimal | None  # None clears the score
    note: str = ""


def enter_scores(*, actor: Actor, run: EvaluationRun, scores: Sequence[ScoreInput]) -> EvaluationRun:
    """Evaluators' scores of entered indicators, each within its range; all or nothing, every
    problem listed."""
    _require_evaluator(actor)
    with transaction.atomic():
        run = _draft(run)
        cells = {(value.supplier_id, value.indicator_id): value
                 for value in run.values.select_for_update().select_related("indicator", "supplier").order_by("pk")}
        problems, changed = [], []
        for position, score in enumerate(scores, start=1):
            cell = cells.get((score.supplier.pk, score.indicator.pk))
            if cell is None or not cell.indicator.is_entered:
                problems.append(Problem(Refusal.EVALUATION_NOT_IN_RUN, {"what": f"{score.supplier} · {score.indicator}"},
                                        position))
                continue
            indicator = cell.indicator
            if score.value is not None and not indicator.score_min <= score.value <= indicator.score_max:
                problems.append(Problem(Refusal.EVALUATION_SCORE_OUT_OF_RANGE, {
                    "indicator": indicator.name, "supplier": cell.supplier.name, "low": indicator.score_min,
                    "high": indicator.score_max, "value": score.value}, position))
                continue
            cell.value, cell.basis = score.value, score.note.strip()[:300]
            cell.entered_by, cell.entered_at = (actor.user, timezone.now()) if score.value is not None else (None, None)
            changed.append(cell)
        if problems:
            raise Refused(problems)
        EvaluationValue.objects.bulk_update(changed, ["value", "basis", "entered_by", "entered_at"])
        return run


def missing_values(run: EvaluationRun) -> list[Problem]:
    """What keeps the run from being finalised: every cell without a value, with why."""
    cells = run.values.filter(value=None).select_related("supplier", "indicator").order_by(
        "supplier__name", "indicator__position", "pk")
    return [
        Problem(Refusal.EVALUATION_VALUE_MISSING, {
            "indicator": cell.indicator.name, "supplier": cell.supplier.name,
            "reason": "score_not_entered" if cell.indicator.is_entered else "no_orders_in_period",
        }, {"supplier": cell.supplier_id, "indicator": cell.indicator_id})
        for cell in cells
    ]


@dataclass(frozen=True)
class Outcome:
    """Weights per scored indicator (in the set's order) and a score per supplier id."""

    indicators: list[Indicator]
    weights: list[float]
    scores: dict[int, float]

    def ranks(self) -> dict[int, int]:
        """Competition ranking (1, 2, 2, 4): equal scores (to 6 places) share a rank."""
        ordered = sorted(self.scores.items(), key=lambda item: -round(item[1], 6))
        ranks, previous, rank = {}, None, 0
        for place, (supplier_id, score) in enumerate(ordered, start=1):
            if previous is None or round(score, 6) != previous:
                rank, previous = place, round(score, 6)
            ranks[supplier_id] = rank
        return ranks


def score_run(run: EvaluationRun) -> Outcome:
    """Weights and scores of a run whose matrix is complete (refused with every missing value else)."""
    if problems := missing_values(run):
        raise Refused(problems)
    indicators = scored_indicators(run.indicator_set)
    supplier_ids = list(run.participants.order_by("supplier__name", "pk").values_list("supplier_id", flat=True))
    cells = {(supplier_id, indicator_id): float(value)
             for supplier_id, indicator_id, value in run.values.values_list("supplier_id", "indicator_id", "value")}
    matrix = np.array([[cells[(supplier_id, indicator.pk)] for indicator in indicators] for supplier_id in supplier_ids])
    benefit = [indicator.is_benefit for indicator in indicators]
    weights = _weights(run, indicators, matrix, benefit)
    if run.scoring == EvaluationRun.Scoring.TOPSIS:
        scores = evaluation_maths.topsis(matrix, weights, benefit)[0]
    else:
        scores = evaluation_maths.linear_scores(matrix, weights, benefit)
    return Outcome(indicators, [float(weight) for weight in weights],
                   {supplier_id: float(score) for supplier_id, score in zip(supplier_ids, scores, strict=True)})


def _weights(run: EvaluationRun, indicators: list[Indicator], matrix: np.ndarray, benefit: list[bool]) -> np.ndarray:
    if run.weighting == EvaluationRun.Weighting.ENTROPY:
        # Scaled to 0–1 the way linear weighting does (cost indicators reversed): the method needs
        # non-negative values where more is better.
        low, high = matrix.min(axis=0), matrix.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        scaled = np.where(np.asarray(benefit), (matrix - low) / span, (high - matrix) / span)
        if matrix.shape[0] < 2:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("the entropy method needs at least two suppliers"))
        return evaluation_maths.entropy_weights(scaled)
    tops = first_level(run.indicator_set)
    if run.weighting == EvaluationRun.Weighting.AHP:
        top_weights = evaluation_maths.ahp_weights(run.ahp_matrix)[0]
    else:
        top_weights = evaluation_maths.normalised_weights([float(top.weight) for top in tops])
    share = {top.pk: float(weight) for top, weight in zip(tops, top_weights, strict=True)}
    weights = []
    for indicator in indicators:
        if indicator.parent_id is None:
            weights.append(share[indicator.pk])
            continue
        siblings = [other for other in indicators if other.parent_id == indicator.parent_id]
        total = sum(float(other.weight) for other in siblings)
        within = float(indicator.weight) / total if total > 0 else 1 / len(siblings)
        weights.append(share[indicator.parent_id] * within)
    return evaluation_maths.normalised_weights(weights)


def finalise_run(*, actor: Actor, run: EvaluationRun) -> EvaluationRun:
    """Collect the computed values again, refuse while a value is missing (every one listed), then
    store weights, scores, ranks, who and when, and the report files with their SHA-256."""
    from inventory.services.evaluation_reports import store_reports

    _require_evaluator(actor)
    with transaction.atomic():
        run = _draft(run)
        _collect_computed(run)
        outcome = score_run(run)
        ranks = outcome.ranks()
        participants = list(run.participants.order_by("pk"))
        for participant in participants:
            participant.score = Decimal(str(round(outcome.scores[participant.supplier_id], 6)))
            participant.rank = ranks[participant.supplier_id]
        EvaluatedSupplier.objects.bulk_update(participants, ["score", "rank"])
        EvaluationWeight.objects.bulk_create(
            EvaluationWeight(run=run, indicator=indicator, weight=Decimal(str(round(weight, 6))))
            for indicator, weight in zip(outcome.indicators, outcome.weights, strict=True)
        )
        run.status, run.finalised_by, run.finalised_at = EvaluationRun.Status.FINALISED, actor.user, timezone.now()
        run.save(update_fields=["status", "finalised_by", "finalised_at"])
        return store_reports(run)


def _draft(run: EvaluationRun) -> EvaluationRun:
    """The run locked, if it is still a draft."""
    run = EvaluationRun.objects.select_for_update().select_related("indicator_set", "hospital").get(pk=run.pk)
    if run.is_final:
        raise Refused(Refusal.EVALUATION_RUN_FINALISED, run=run.name,
                      date=timezone.localtime(run.finalised_at).strftime("%Y-%m-%d %H:%M"))
    return run


def refresh_computed(*, actor: Actor, run: EvaluationRun) -> EvaluationRun:
    """Collect the computed values of a draft run again (records may have changed since)."""
    _require_evaluator(actor)
    with transaction.atomic():
        run = _draft(run)
        _collect_computed(run)
        return run


def _collect_computed(run: EvaluationRun) -> None:
    cells = list(run.values.select_related("indicator").exclude(indicator__source=Source.ENTERED).order_by("pk"))
    suppliers = list(Supplier.objects.filter(pk__in=run.participants.values("supplier_id")))
    found = computed_values(hospital=run.hospital, suppliers=suppliers, start=run.period_start, end=run.period_end)
    for cell in cells:
        computed = found[(cell.supplier_id, cell.indicator.source)]
        cell.value, cell.basis = computed.value, computed.basis[:300]
    EvaluationValue.objects.bulk_update(cells, ["value", "basis"])


def parse_score(text: str) -> Decimal | None:
    """A score typed on the page: blank is no score; anything else must be a number."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("%(text)s is not a number") % {"text": text}) from None
    if not value.is_finite():
        raise Refused(Refusal.INVALID_REQUEST, detail=_("%(text)s is not a number") % {"text": text})
    return value
