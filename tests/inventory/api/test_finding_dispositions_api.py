"""POST/GET /api/v1/reconciliation/findings/<id>/dispositions/: auditors record what a finding
turned out to be (the one thing they write), the history is listed, the findings carry their
current disposition; scoped to the caller's hospital."""
import datetime
from decimal import Decimal

import pytest

from inventory.models import Finding, FindingDisposition, ReconciliationRun
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(hospital):
    run = ReconciliationRun.objects.create(hospital=hospital, period_start=datetime.date(2025, 3, 1),
                                           period_end=datetime.date(2025, 3, 1), status="DONE")
    return Finding.objects.create(run=run, kind=Finding.Kind.BILLED_NOT_USED, amount=Decimal("500.00"),
                                  message="billed, never used")


def url(finding) -> str:
    return f"/api/v1/reconciliation/findings/{finding.pk}/dispositions/"


def test_an_auditor_records_dispositions_and_reads_the_history(finding, auditor, operator):
    first = api_client_for(auditor).post(url(finding), {"outcome": "CONFIRMED", "note": "duplicate line"},
                                         format="json")
    second = api_client_for(operator).post(url(finding), {"outcome": "CORRECTED", "note": "refunded"},
                                           format="json")

    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["supersedes"] == first.json()["id"]
    listed = api_client_for(auditor).get(url(finding)).json()
    assert [(row["outcome"], row["recorded_by_username"], row["superseded_by"]) for row in listed] == [
        ("CONFIRMED", "auditor", second.json()["id"]), ("CORRECTED", "operator", None)]
    findings = api_client_for(auditor).get(f"/api/v1/reconciliation/runs/{finding.run_id}/findings/").json()
    assert (findings["results"][0]["disposition"], findings["results"][0]["disposition_note"]) == (
        "CORRECTED", "refunded")


def test_a_warehouse_keeper_reads_but_does_not_record(finding, keeper):
    client = api_client_for(keeper)

    assert client.get(url(finding)).status_code == 200
    assert client.post(url(finding), {"outcome": "CONFIRMED", "note": "x"}, format="json").status_code == 403
    assert not FindingDisposition.objects.exists()


def test_a_bad_disposition_is_a_400_with_every_problem(finding, auditor):
    response = api_client_for(auditor).post(url(finding), {"outcome": "PERHAPS", "note": " "}, format="json")

    assert response.status_code == 400
    assert "DISPOSITION_UNKNOWN_OUTCOME" in str(response.json()) and "DISPOSITION_NOTE_REQUIRED" in str(response.json())


def test_another_hospitals_finding_is_a_404(finding, other_hospital):
    stranger = factories.UserFactory(hospital=other_hospital, roles=["auditor"])

    assert api_client_for(stranger).get(url(finding)).status_code == 404
    assert api_client_for(stranger).post(url(finding), {"outcome": "CONFIRMED", "note": "x"},
                                         format="json").status_code == 404


def test_findings_sort_by_amount_and_filter_open_over_the_api(finding, auditor):
    larger = Finding.objects.create(run=finding.run, kind=Finding.Kind.USED_NOT_BILLED, amount=Decimal("900.00"),
                                    message="not billed")
    client = api_client_for(auditor)
    client.post(url(finding), {"outcome": "FALSE_ALARM", "note": "test patient"}, format="json")
    base = f"/api/v1/reconciliation/runs/{finding.run_id}/findings/"

    def ids(**query) -> list[int]:
        return [row["id"] for row in client.get(base, query).json()["results"]]

    assert ids() == [finding.pk, larger.pk] and ids(sort="amount") == [larger.pk, finding.pk]
    assert ids(open="true") == [larger.pk] and ids(open="false") == [finding.pk]
    assert client.get(base, {"sort": "colour"}).status_code == 400
