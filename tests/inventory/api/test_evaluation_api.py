"""Supplier evaluation over the API: a run from the default set to its report files, AHP refused
with its CR, scores checked, roles, and the supplier portal showing a supplier its own place only."""
import hashlib

import pytest

from inventory.models import EvaluationRun, IndicatorSet
from tests import factories
from tests.conftest import api_client_for
from tests.inventory.evaluation_data import PERIOD, build, small_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
SETS, RUNS = "/api/v1/evaluation-sets/", "/api/v1/evaluation-runs/"


def period(**more) -> dict:
    return {"period_start": PERIOD[0].isoformat(), "period_end": PERIOD[1].isoformat(), **more}


def test_a_run_over_the_api_from_the_default_set_to_its_report(hospital, warehouse, keeper, operator, auditor):
    data = build(hospital, warehouse, keeper, operator)
    client = api_client_for(operator)
    indicator_set = client.post(f"{SETS}load-default/").json()
    assert [row["code"] for row in indicator_set["indicators"] if row["parent"] is None] == list("QDSCRIEP")

    created = client.post(RUNS, {"indicator_set": indicator_set["id"], "name": "年度", **period(),
                                 "scoring": "LINEAR"}, format="json")
    assert created.status_code == 201, created.content
    run = created.json()
    assert len(run["missing"]) == 15 and run["missing"][0]["code"] == "EVALUATION_VALUE_MISSING"
    refused = client.post(f"{RUNS}{run['id']}/finalise/")
    assert refused.status_code == 409 and len(refused.json()["problems"]) == 15

    entered = [row["id"] for row in indicator_set["indicators"] if row["source"] == "ENTERED" and row["parent"]]
    scores = [{"supplier": supplier.pk, "indicator": indicator, "value": value}
              for supplier, value in [(data.a, "80"), (data.b, "70"), (data.c, "90")] for indicator in entered]
    assert client.post(f"{RUNS}{run['id']}/scores/", {"scores": scores}, format="json").status_code == 200
    finalised = client.post(f"{RUNS}{run['id']}/finalise/")

    assert finalised.status_code == 200, finalised.content
    body = finalised.json()
    assert body["status"] == "FINALISED" and body["missing"] == []
    assert sorted(row["rank"] for row in body["rows"]) == [1, 2, 3]
    assert {row["supplier_name"]: [v["value"] for v in row["values"] if v["code"] == "D1"] for row in body["rows"]} \
        == {data.a.name: ["100.0000"], data.b.name: ["50.0000"], data.c.name: ["0.0000"]}
    report = api_client_for(auditor).get(f"{RUNS}{run['id']}/report.csv")
    content = b"".join(report.streaming_content)
    assert report.status_code == 200 and report["X-Content-SHA256"] == hashlib.sha256(content).hexdigest()
    assert body["csv_sha256"] == report["X-Content-SHA256"]
    assert api_client_for(auditor).get(f"{RUNS}{run['id']}/report.pdf").status_code == 200
    again = client.post(f"{RUNS}{run['id']}/scores/", {"scores": scores[:1]}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "EVALUATION_RUN_FINALISED")
    frozen = client.put(f"{SETS}{indicator_set['id']}/", {"indicators": [{"code": "X", "name": "x"}]}, format="json")
    assert (frozen.status_code, frozen.json()["code"]) == (409, "EVALUATION_SET_FROZEN")


def test_an_inconsistent_ahp_matrix_is_refused_with_its_cr_and_nothing_changes(hospital, operator):
    client = api_client_for(operator)
    supplier = factories.SupplierFactory()
    indicator_set = client.post(SETS, {"name": "三项", "indicators": [
        {"code": "Q", "name": "质量"}, {"code": "D", "name": "交货"}, {"code": "P", "name": "价格"}]},
        format="json").json()
    inconsistent = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]

    refused = client.post(RUNS, {"indicator_set": indicator_set["id"], **period(), "suppliers": [supplier.pk],
                                 "weighting": "AHP", "ahp_matrix": inconsistent}, format="json")

    assert refused.status_code == 400
    assert refused.json()["code"] == "AHP_INCONSISTENT" and "CR = " in refused.json()["detail"]
    assert not EvaluationRun.objects.exists()
    run = client.post(RUNS, {"indicator_set": indicator_set["id"], **period(), "suppliers": [supplier.pk]},
                      format="json").json()
    answer = client.post(f"{RUNS}{run['id']}/method/", {"weighting": "AHP", "scoring": "TOPSIS",
                                                         "ahp_matrix": inconsistent}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (400, "AHP_INCONSISTENT")
    assert EvaluationRun.objects.get().weighting == "EXPERT"
    consistent = [[1, 3, 5], [1 / 3, 1, 5 / 3], [1 / 5, 3 / 5, 1]]
    accepted = client.post(f"{RUNS}{run['id']}/method/", {"weighting": "AHP", "scoring": "TOPSIS",
                                                           "ahp_matrix": consistent}, format="json")
    assert accepted.status_code == 200 and float(accepted.json()["ahp_cr"]) < 0.1


def test_scores_out_of_range_are_refused_each_named_and_none_kept(hospital, operator):
    client = api_client_for(operator)
    supplier = factories.SupplierFactory()
    indicator_set = client.post(SETS, {"name": "一项", "indicators": [
        {"code": "S", "name": "服务", "score_min": "1", "score_max": "5"}]}, format="json").json()
    indicator = indicator_set["indicators"][0]["id"]
    run = client.post(RUNS, {"indicator_set": indicator_set["id"], **period(), "suppliers": [supplier.pk]},
                      format="json").json()

    answer = client.post(f"{RUNS}{run['id']}/scores/", {"scores": [
        {"supplier": supplier.pk, "indicator": indicator, "value": "6"}]}, format="json")

    assert answer.status_code == 400 and answer.json()["code"] == "EVALUATION_SCORE_OUT_OF_RANGE"
    assert client.get(f"{RUNS}{run['id']}/").json()["rows"][0]["values"][0]["value"] is None


def test_keepers_do_not_read_evaluations_and_auditors_only_read(hospital, operator, keeper, auditor):
    assert api_client_for(keeper).get(RUNS).status_code == 403
    assert api_client_for(auditor).get(SETS).status_code == 200
    assert api_client_for(auditor).post(f"{SETS}load-default/").status_code == 403
    assert not IndicatorSet.objects.exists()


def test_a_supplier_sees_its_own_rank_and_values_and_no_other_supplier(hospital, operator):
    ours, rival = factories.SupplierFactory(name="甲公司"), factories.SupplierFactory(name="乙公司")
    run = small_run(hospital, operator, {ours: 60, rival: 90})
    vendor = factories.UserFactory(hospital=None, supplier=ours, roles=["supplier"])

    listed = api_client_for(vendor).get("/api/v1/portal/evaluations/")

    assert listed.status_code == 200
    [entry] = listed.json()["results"]
    assert (entry["name"], entry["rank"], entry["of"], entry["hospital_name"]) == (run.name, 2, 2, hospital.name)
    assert [(value["code"], value["value"]) for value in entry["values"]] == [("S", "60.0000"), ("R", "0.0000")]
    assert "乙公司" not in listed.content.decode()
    # Nothing names another supplier: its own place only (comparing every value with the rival's id
    # failed whenever that id happened to equal the hospital's or the rank).
    assert set(entry) == {"id", "hospital", "hospital_name", "name", "period_start", "period_end", "scoring",
                          "finalised_at", "score", "rank", "of", "values"}
    rival_entry = run.participants.get(supplier=rival).pk
    assert api_client_for(vendor).get(f"/api/v1/portal/evaluations/{rival_entry}/").status_code == 404
    assert api_client_for(vendor).get(f"{RUNS}{run.pk}/").status_code == 403
