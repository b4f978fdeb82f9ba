"""Supplier evaluation: computed indicators from the records of a generated dataset against figures
worked out by hand, indicator sets frozen once used, runs end to end (TOPSIS and linear weighting,
expert, entropy and AHP weights), finalising refused while values are missing, immutability, the
trend over successive runs, and the report files with their hashes (on PostgreSQL)."""
import datetime
import hashlib
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import EvaluatedSupplier, EvaluationRun, EvaluationValue, EvaluationWeight, Indicator
from inventory.selectors.evaluation import computed_values, run_matrix, scored_indicators, supplier_trends
from inventory.services import evaluation_maths
from inventory.services.evaluation import (
    IndicatorInput,
    ScoreInput,
    create_indicator_set,
    create_run,
    enter_scores,
    finalise_run,
    load_default_set,
    new_set_version,
    replace_indicators,
    set_method,
)
from inventory.services.evaluation_reports import render_reports
from tests import factories
from tests.inventory.evaluation_data import EXPECTED, LAPSE_DAY, PERIOD, build

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Entered scores (0–100) per supplier for the default set's entered indicators Q2, S1, I1, E1, P1.
SCORES = {"a": [90, 85, 80, 70, 60], "b": [70, 75, 90, 80, 95], "c": [60, 65, 50, 85, 90]}


@pytest.fixture
def data(hospital, warehouse, keeper, operator):
    return build(hospital, warehouse, keeper, operator)


def codes(refused: pytest.ExceptionInfo) -> list[str]:
    return [problem.code for problem in refused.value.problems]


def enter_all(operator, run, data) -> None:
    entered = [indicator for indicator in scored_indicators(run.indicator_set) if indicator.is_entered]
    enter_scores(actor=Actor(user=operator), run=run, scores=[
        ScoreInput(getattr(data, key), indicator, Decimal(score))
        for key, values in SCORES.items() for indicator, score in zip(entered, values, strict=True)
    ])


def test_computed_indicators_match_the_figures_worked_out_by_hand(data, hospital):
    found = computed_values(hospital=hospital, suppliers=[data.a, data.b, data.c], start=PERIOD[0], end=PERIOD[1])

    for key, expected in EXPECTED.items():
        supplier = getattr(data, key)
        assert {source: str(found[(supplier.pk, source)].value) for source in expected} == expected, key
    assert found[(data.b.pk, "ON_TIME_RATE")].basis == "1/2"
    assert found[(data.b.pk, "REJECTION_RATE")].basis == "1/6"
    assert found[(data.c.pk, "FILL_RATE")].basis == "2/5"
    assert found[(data.c.pk, "CERTIFICATE_LAPSES")].basis == LAPSE_DAY.isoformat()


def test_a_supplier_without_orders_in_the_period_has_no_delivery_figures(data, hospital):
    later = (PERIOD[1] + datetime.timedelta(days=1), PERIOD[1] + datetime.timedelta(days=60))
    found = computed_values(hospital=hospital, suppliers=[data.a], start=later[0], end=later[1])
    assert found[(data.a.pk, "ON_TIME_RATE")].value is None
    assert found[(data.a.pk, "REJECTION_RATE")].value == Decimal("0.0")


def test_run_is_not_finalised_while_entered_scores_are_missing_and_lists_them(data, hospital, operator):
    actor = Actor(user=operator)
    run = create_run(actor=actor, hospital=hospital, indicator_set=load_default_set(actor=actor, hospital=hospital),
                     name="2026 上半年", period_start=PERIOD[0], period_end=PERIOD[1])

    assert set(run.participants.values_list("supplier", flat=True)) == {data.a.pk, data.b.pk, data.c.pk}
    with pytest.raises(Refused) as refused:
        finalise_run(actor=actor, run=run)
    assert codes(refused) == ["EVALUATION_VALUE_MISSING"] * 15  # 3 suppliers × 5 entered indicators
    assert refused.value.problems[0].params["supplier"] == data.a.name
    run.refresh_from_db()
    assert run.status == "DRAFT" and not run.weights.exists()


def test_scores_outside_the_range_are_refused_all_listed_and_nothing_kept(data, hospital, operator):
    actor = Actor(user=operator)
    run = create_run(actor=actor, hospital=hospital, indicator_set=load_default_set(actor=actor, hospital=hospital),
                     name="x", period_start=PERIOD[0], period_end=PERIOD[1])
    q2, s1 = [indicator for indicator in scored_indicators(run.indicator_set) if indicator.is_entered][:2]
    on_time = run.indicator_set.indicators.get(source="ON_TIME_RATE")

    with pytest.raises(Refused) as refused:
        enter_scores(actor=actor, run=run, scores=[
            ScoreInput(data.a, q2, Decimal(80)), ScoreInput(data.a, s1, Decimal(101)),
            ScoreInput(data.b, q2, Decimal(-1)), ScoreInput(data.b, on_time, Decimal(100)),
        ])

    assert codes(refused) == ["EVALUATION_SCORE_OUT_OF_RANGE", "EVALUATION_SCORE_OUT_OF_RANGE", "EVALUATION_NOT_IN_RUN"]
    assert [problem.item for problem in refused.value.problems] == [2, 3, 4]
    assert not run.values.filter(indicator=q2).exclude(value=None).exists()


def test_topsis_run_end_to_end_ranks_as_the_maths_on_the_same_matrix(data, hospital, operator):
    actor = Actor(user=operator)
    indicator_set = load_default_set(actor=actor, hospital=hospital)
    run = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="TOPSIS",
                     period_start=PERIOD[0], period_end=PERIOD[1], scoring="TOPSIS")
    enter_all(operator, run, data)

    run = finalise_run(actor=actor, run=run)

    # The same matrix assembled here by hand: columns Q1 Q2 D1 D2 S1 C1 R1 I1 E1 P1.
    def row(key):
        computed, scores = EXPECTED[key], SCORES[key]
        return [float(computed["REJECTION_RATE"]), scores[0], float(computed["ON_TIME_RATE"]),
                float(computed["FILL_RATE"]), scores[1], float(computed["CERTIFICATE_LAPSES"]),
                float(computed["UPHELD_COMPLAINTS"]), scores[2], scores[3], scores[4]]
    # Expert weights: first level 25 20 15 10 10 5 5 10 (of 100), shared equally within a group.
    weights = [0.125, 0.125, 0.10, 0.10, 0.15, 0.10, 0.10, 0.05, 0.05, 0.10]
    benefit = [False, True, True, True, True, False, False, True, True, True]
    closeness, _ = evaluation_maths.topsis([row("a"), row("b"), row("c")], weights, benefit)

    stored = {participant.supplier_id: participant for participant in run.participants.all()}
    for key, expected in zip("abc", closeness, strict=True):
        assert float(stored[getattr(data, key).pk].score) == pytest.approx(expected, abs=1e-6)
    order = sorted("abc", key=lambda key: -closeness["abc".index(key)])
    assert [stored[getattr(data, key).pk].rank for key in order] == [1, 2, 3]
    assert [float(weight) for weight in run.weights.order_by("indicator__position").values_list("weight", flat=True)] \
        == pytest.approx(weights)
    assert (run.status, run.finalised_by) == ("FINALISED", operator)
    assert run.finalised_at is not None
    run.indicator_set.refresh_from_db()
    assert run.indicator_set.is_frozen


def test_linear_run_with_ahp_weights_and_a_trend_over_successive_runs(data, hospital, operator):
    actor = Actor(user=operator)
    indicator_set = load_default_set(actor=actor, hospital=hospital)
    first = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="第一期",
                       period_start=PERIOD[0], period_end=PERIOD[1], scoring="TOPSIS")
    enter_all(operator, first, data)
    finalise_run(actor=actor, run=first)
    second = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="第二期",
                        period_start=PERIOD[0], period_end=PERIOD[1] + datetime.timedelta(days=1))
    # Eight first-level indicators, all judged equal: a perfectly consistent matrix (CR = 0).
    set_method(actor=actor, run=second, weighting="AHP", scoring="LINEAR", ahp_matrix=[[1] * 8 for _ in range(8)])
    enter_all(operator, second, data)

    second = finalise_run(actor=actor, run=second)

    assert second.ahp_cr == Decimal("0")
    # Equal first-level weights (1/8), shared within the group: Q1 gets 1/16, S1 1/8.
    weights = dict(second.weights.values_list("indicator__code", "weight"))
    assert float(weights["Q1"]) == pytest.approx(1 / 16) and float(weights["S1"]) == pytest.approx(1 / 8)
    indicators, rows = run_matrix(second)
    matrix = [[float(cell.value.value) for cell in row.cells] for row in rows]
    expected = evaluation_maths.linear_scores(matrix, [float(weights[i.code]) for i in indicators],
                                              [i.is_benefit for i in indicators])
    assert [float(row.participant.score) for row in rows] == pytest.approx(list(expected), abs=1e-6)
    assert [row.participant.rank for row in rows] == sorted(row.participant.rank for row in rows)

    runs, trends = supplier_trends(hospital_id=hospital.pk, supplier_ids=[data.a.pk, data.b.pk])
    assert [run.name for run in runs] == ["第一期", "第二期"]
    assert [point.run.name for point in trends[data.a.pk]] == ["第一期", "第二期"]
    assert trends[data.b.pk][0].of == 3


def test_ahp_matrix_with_a_cr_over_the_limit_is_refused_with_the_cr(data, hospital, operator):
    actor = Actor(user=operator)
    indicator_set = create_indicator_set(actor=actor, hospital=hospital, name="三项", indicators=[
        IndicatorInput("Q", "质量"), IndicatorInput("D", "交货", source="ON_TIME_RATE"), IndicatorInput("P", "价格"),
    ])
    run = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="x",
                     period_start=PERIOD[0], period_end=PERIOD[1])
    inconsistent = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]  # Q ≫ D ≫ P ≫ Q

    with pytest.raises(Refused) as refused:
        set_method(actor=actor, run=run, weighting="AHP", scoring="TOPSIS", ahp_matrix=inconsistent)

    assert codes(refused) == ["AHP_INCONSISTENT"]
    assert "CR = " in refused.value.detail
    assert float(refused.value.problems[0].params["cr"]) >= 0.1
    run.refresh_from_db()
    assert run.weighting == "EXPERT"


def test_entropy_weights_favour_the_indicator_that_tells_suppliers_apart(data, hospital, operator):
    actor = Actor(user=operator)
    indicator_set = create_indicator_set(actor=actor, hospital=hospital, name="两项", indicators=[
        IndicatorInput("D", "交货", source="ON_TIME_RATE"), IndicatorInput("S", "服务"),
    ])
    run = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="x", weighting="ENTROPY",
                     period_start=PERIOD[0], period_end=PERIOD[1])
    service = indicator_set.indicators.get(code="S")
    enter_scores(actor=actor, run=run, scores=[ScoreInput(data.a, service, Decimal(80)),
                                               ScoreInput(data.b, service, Decimal(80)),
                                               ScoreInput(data.c, service, Decimal(79))])

    run = finalise_run(actor=actor, run=run)

    weights = dict(run.weights.values_list("indicator__code", "weight"))
    assert weights["D"] > weights["S"]
    assert float(weights["D"] + weights["S"]) == pytest.approx(1)


def test_finalised_run_never_changes_and_its_set_is_frozen(data, hospital, operator):
    actor = Actor(user=operator)
    indicator_set = load_default_set(actor=actor, hospital=hospital)
    run = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="x",
                     period_start=PERIOD[0], period_end=PERIOD[1])
    enter_all(operator, run, data)
    finalise_run(actor=actor, run=run)
    q2 = indicator_set.indicators.get(code="Q2")

    for attempt in (lambda: enter_scores(actor=actor, run=run, scores=[ScoreInput(data.a, q2, Decimal(1))]),
                    lambda: finalise_run(actor=actor, run=run),
                    lambda: set_method(actor=actor, run=run, weighting="ENTROPY", scoring="LINEAR")):
        with pytest.raises(Refused) as refused:
            attempt()
        assert codes(refused) == ["EVALUATION_RUN_FINALISED"]
    with pytest.raises(Refused) as refused:
        replace_indicators(actor=actor, indicator_set=indicator_set, indicators=[IndicatorInput("X", "x")])
    assert codes(refused) == ["EVALUATION_SET_FROZEN"]

    version = new_set_version(actor=actor, indicator_set=indicator_set)
    assert (version.name, version.version, version.is_frozen) == (indicator_set.name, 2, False)
    assert version.indicators.count() == indicator_set.indicators.count() == 18
    replace_indicators(actor=actor, indicator_set=version, indicators=[IndicatorInput("X", "仅一项")])
    assert list(version.indicators.values_list("code", flat=True)) == ["X"]
    assert indicator_set.indicators.filter(code="Q2").exists()


def finalised_and_draft_runs(data, hospital, operator) -> tuple[EvaluationRun, EvaluationRun]:
    actor = Actor(user=operator)
    indicator_set = load_default_set(actor=actor, hospital=hospital)
    final = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="定稿",
                       period_start=PERIOD[0], period_end=PERIOD[1])
    enter_all(operator, final, data)
    final = finalise_run(actor=actor, run=final)
    draft = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name="草稿",
                       period_start=PERIOD[0], period_end=PERIOD[1])
    return final, draft


def test_the_database_refuses_changing_a_finalised_run_its_values_and_its_scores(data, hospital, operator):
    final, draft = finalised_and_draft_runs(data, hospital, operator)
    stored = (EvaluationRun.objects.filter(pk=final.pk).values().get(),
              list(final.participants.values("supplier", "score", "rank").order_by("pk")),
              list(final.values.values("indicator", "value", "basis").order_by("pk")),
              list(final.weights.values("indicator", "weight").order_by("pk")))
    value, weight = final.values.order_by("pk").first(), final.weights.order_by("pk").first()
    indicator = Indicator.objects.get(indicator_set=final.indicator_set, code="Q2")

    for write in (
        lambda: EvaluationRun.objects.filter(pk=final.pk).update(name="改名"),
        lambda: EvaluationRun.objects.filter(pk=final.pk).update(csv_sha256="0" * 64),
        lambda: EvaluationRun.objects.filter(pk=final.pk).update(status="DRAFT", finalised_at=None),
        lambda: final.delete(),
        lambda: EvaluatedSupplier.objects.filter(run=final).update(score=Decimal("0.999999"), rank=1),
        lambda: EvaluatedSupplier.objects.filter(run=final).delete(),
        lambda: EvaluationValue.objects.filter(pk=value.pk).update(value=Decimal(1)),
        lambda: EvaluationValue.objects.filter(pk=value.pk).delete(),
        lambda: EvaluationValue.objects.filter(pk=value.pk).update(run=draft),
        lambda: EvaluationWeight.objects.filter(pk=weight.pk).update(weight=Decimal(1)),
        lambda: EvaluationWeight.objects.filter(pk=weight.pk).delete(),
        lambda: EvaluationWeight.objects.create(run=final, indicator=indicator, weight=Decimal("0.5")),
    ):
        with pytest.raises(DatabaseError, match="EVALUATION_RUN_FINALISED"), transaction.atomic():
            write()

    assert stored == (EvaluationRun.objects.filter(pk=final.pk).values().get(),
                      list(final.participants.values("supplier", "score", "rank").order_by("pk")),
                      list(final.values.values("indicator", "value", "basis").order_by("pk")),
                      list(final.weights.values("indicator", "weight").order_by("pk")))
    # A draft is the evaluators' to change, and to throw away.
    assert EvaluationValue.objects.filter(run=draft, indicator=indicator).update(value=Decimal(50)) >= 1
    assert EvaluationRun.objects.filter(pk=draft.pk).update(name="草稿二") == 1
    draft.delete()
    assert not EvaluationRun.objects.filter(pk=draft.pk).exists()


def test_the_admin_shows_a_finalised_run_read_only_and_adds_none(data, hospital, operator, client):
    final, draft = finalised_and_draft_runs(data, hospital, operator)
    client.force_login(factories.UserFactory(username="root", hospital=None, is_superuser=True, is_staff=True))
    admin = "/admin/inventory/evaluationrun"

    assert client.get(f"{admin}/").status_code == 200
    page = client.get(f"{admin}/{final.pk}/change/")
    assert page.status_code == 200 and final.csv_sha256 in page.content.decode() and b'name="_save"' not in page.content
    assert client.post(f"{admin}/{final.pk}/change/", {"name": "改名"}).status_code == 403
    assert client.post(f"{admin}/{final.pk}/delete/", {"post": "yes"}).status_code == 403
    assert EvaluationRun.objects.get(pk=final.pk).name == "定稿"
    assert client.get(f"{admin}/add/").status_code == 403
    assert client.get(f"/admin/inventory/indicatorset/{final.indicator_set_id}/change/").status_code == 200
    assert client.post(f"/admin/inventory/indicatorset/{final.indicator_set_id}/change/", {}).status_code == 403

    editable = client.get(f"{admin}/{draft.pk}/change/")
    assert editable.status_code == 200 and b'name="_save"' in editable.content


def test_only_administrators_and_spd_operators_evaluate(data, hospital, keeper):
    with pytest.raises(Refused) as refused:
        load_default_set(actor=Actor(user=keeper), hospital=hospital)
    assert codes(refused) == ["NOT_ALLOWED"]


def test_bad_indicator_sets_are_refused_with_every_problem(hospital, operator):
    with pytest.raises(Refused) as refused:
        create_indicator_set(actor=Actor(user=operator), hospital=hospital, name="坏", indicators=[
            IndicatorInput("Q", "质量"), IndicatorInput("Q", "又一个"), IndicatorInput("Q1", "子", parent="Z"),
            IndicatorInput("R", "范围", score_min=Decimal(10), score_max=Decimal(5)),
        ])
    assert codes(refused) == ["EVALUATION_SET_INVALID"] * 4
    assert [problem.item for problem in refused.value.problems] == [1, 2, 3, 4]


def test_computed_indicators_take_the_direction_of_what_they_measure(hospital, operator):
    indicator_set = create_indicator_set(actor=Actor(user=operator), hospital=hospital, name="方向", indicators=[
        IndicatorInput("R", "投诉", source="UPHELD_COMPLAINTS", direction="BENEFIT"),
    ])
    assert indicator_set.indicators.get().direction == Indicator.Direction.COST


def test_report_files_are_stored_with_their_hashes_and_render_the_same_again(data, hospital, operator):
    from tests.pdf_text import shown_strings

    actor = Actor(user=operator)
    run = create_run(actor=actor, hospital=hospital, indicator_set=load_default_set(actor=actor, hospital=hospital),
                     name="年度评价", period_start=PERIOD[0], period_end=PERIOD[1])
    enter_all(operator, run, data)
    run = finalise_run(actor=actor, run=run)

    stored = {}
    for report_format in ("csv", "xlsx", "pdf"):
        field = getattr(run, f"report_{report_format}")
        field.open("rb")
        stored[report_format] = field.read()
        field.close()
        assert hashlib.sha256(stored[report_format]).hexdigest() == getattr(run, f"{report_format}_sha256")
    assert render_reports(EvaluationRun.objects.get(pk=run.pk)) == stored
    text = stored["csv"].decode("utf-8-sig")
    winner = run.participants.get(rank=1).supplier.name
    assert text.splitlines()[0].startswith("名次,供应商,得分,Q1 验收拒收率,Q2 临床使用质量评分")
    assert text.splitlines()[1].startswith(f"1,{winner},")
    assert "16.7" in text and "熵权法" not in text
    assert run.csv_sha256 in "".join(shown_strings(stored["pdf"]))
    assert stored["xlsx"][:2] == b"PK"
