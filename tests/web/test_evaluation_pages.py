"""Supplier evaluation pages: the set editor (load the default set, add, reweigh, remove, frozen →
new version), who sees what (auditors read, keepers and other hospitals do not), an AHP matrix
refused on the run page with its CR, and the report downloaded as stored."""
import hashlib

import pytest

from inventory.models import EvaluationRun, IndicatorSet
from tests import factories
from tests.inventory.evaluation_data import PERIOD, small_run
from tests.web.test_operations_pages import client_for, text

pytestmark = pytest.mark.django_db


def test_the_set_editor_loads_adds_reweighs_removes_and_versions(hospital, operator):
    client = client_for(operator, "zh-hans")
    response = client.post("/purchasing/evaluation/", {"action": "load-default"})
    indicator_set = IndicatorSet.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/purchasing/evaluation/sets/{indicator_set.pk}/"
    page = f"/purchasing/evaluation/sets/{indicator_set.pk}/"
    assert text(client.get(page)).count("data-indicator=") == 18

    client.post(page, {"action": "add", "code": "S2", "name": "投诉响应时效", "parent": "S", "source": "ENTERED",
                       "direction": "BENEFIT", "weight": "2", "score_min": "0", "score_max": "10"})
    added = indicator_set.indicators.get(code="S2")
    assert (added.parent.code, added.weight, added.score_max) == ("S", 2, 10)
    weights = {f"weight-{i.code}": str(i.weight) for i in indicator_set.indicators.all()} | {"weight-Q": "40"}
    client.post(page, {"action": "weights", **weights})
    assert indicator_set.indicators.get(code="Q").weight == 40
    refused = client.post(page, {"action": "add", "code": "Q", "name": "重复", "source": "ENTERED"})
    assert 'data-code="EVALUATION_SET_INVALID"' in text(refused) and "编码 Q 重复使用" in text(refused)
    client.post(page, {"action": "remove", "code": "P"})
    assert not indicator_set.indicators.filter(code__in=["P", "P1"]).exists()

    IndicatorSet.objects.filter(pk=indicator_set.pk).update(frozen_at="2026-01-01T00:00:00Z")
    frozen = client.post(page, {"action": "remove", "code": "Q"})
    assert 'data-code="EVALUATION_SET_FROZEN"' in text(frozen)
    assert 'data-form="add-indicator"' not in text(frozen) and 'data-action="new-version"' in text(frozen)
    moved = client.post(page, {"action": "new-version"})
    version = IndicatorSet.objects.get(version=2)
    assert moved["Location"] == f"/purchasing/evaluation/sets/{version.pk}/"
    assert version.indicators.count() == indicator_set.indicators.count()


def test_auditors_read_keepers_and_other_hospitals_do_not(hospital, other_hospital, operator, auditor, keeper):
    run = small_run(hospital, operator, {factories.SupplierFactory(): 60, factories.SupplierFactory(): 90})
    page = f"/purchasing/evaluation/runs/{run.pk}/"

    seen = text(client_for(auditor).get(page))
    assert 'data-status="FINALISED"' in seen and 'data-chart="evaluation-trend"' in seen
    assert 'data-form="scores"' in seen and 'data-action="save-scores"' not in seen
    assert client_for(auditor).post(page, {"action": "finalise"}).status_code == 403
    assert client_for(keeper).get(page).status_code == 403
    stranger = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    assert client_for(stranger).get(page).status_code == 404
    assert client_for(stranger).get(f"/purchasing/evaluation/sets/{run.indicator_set_id}/").status_code == 404
    download = client_for(auditor).get(f"/purchasing/evaluation/runs/{run.pk}/report.pdf")
    content = b"".join(download.streaming_content)
    assert download["X-Content-SHA256"] == hashlib.sha256(content).hexdigest() == run.pdf_sha256


def test_an_inconsistent_ahp_matrix_typed_on_the_run_page_is_refused_with_its_cr(hospital, operator):
    client = client_for(operator, "zh-hans")
    client.post("/purchasing/evaluation/", {"action": "load-default"})
    indicator_set = IndicatorSet.objects.get()
    supplier = factories.SupplierFactory()
    response = client.post("/purchasing/evaluation/", {
        "action": "run", "indicator_set": indicator_set.pk, "name": "AHP", "period_start": PERIOD[0].isoformat(),
        "period_end": PERIOD[1].isoformat(), "suppliers": [supplier.pk], "weighting": "EXPERT", "scoring": "TOPSIS"})
    run = EvaluationRun.objects.get()
    assert response["Location"] == f"/purchasing/evaluation/runs/{run.pk}/"
    rows = ["1 9 1/9 1 1 1 1 1", "1/9 1 9 1 1 1 1 1", "9 1/9 1 1 1 1 1 1"] + ["1 1 1 1 1 1 1 1"] * 5

    refused = client.post(f"/purchasing/evaluation/runs/{run.pk}/", {
        "action": "method", "weighting": "AHP", "scoring": "LINEAR", "ahp_matrix": "\n".join(rows)})

    assert 'data-code="AHP_INCONSISTENT"' in text(refused) and "CR = " in text(refused)
    run.refresh_from_db()
    assert (run.weighting, run.scoring) == ("EXPERT", "TOPSIS")
    consistent = client.post(f"/purchasing/evaluation/runs/{run.pk}/", {
        "action": "method", "weighting": "AHP", "scoring": "LINEAR", "ahp_matrix": "\n".join(["1 1 1 1 1 1 1 1"] * 8)})
    assert consistent.status_code == 302
    run.refresh_from_db()
    assert (run.weighting, run.scoring, run.ahp_cr) == ("AHP", "LINEAR", 0)
