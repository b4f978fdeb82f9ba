"""Dispositions of reconciliation findings (inventory.services.findings): who records them, the
append-only history (a new one supersedes, never overwrites), open findings, and the on-demand
export of the findings with their dispositions beside the signed reports, which stay as stored."""
import csv
import datetime
import hashlib
import io
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from openpyxl import load_workbook

from inventory.errors import Refused
from inventory.models import BackgroundJob, Finding, FindingDisposition, ReconciliationRun
from inventory.services.background import request_job
from inventory.services.findings import history, open_findings, record_disposition, with_current_disposition
from inventory.services.reconciliation import run_reconciliation
from tests import factories

pytestmark = pytest.mark.django_db
DAY = datetime.date(2025, 3, 1)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def make_run(hospital, *amounts: str) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(hospital=hospital, period_start=DAY, period_end=DAY, status="DONE")
    for index, amount in enumerate(amounts):
        Finding.objects.create(run=run, kind=Finding.Kind.USED_NOT_BILLED, amount=Decimal(amount),
                               encounter=f"ZY{index}", message=f"finding {index}")
    return run


def test_an_auditor_records_a_disposition_and_a_second_one_supersedes_it_keeping_both(hospital, auditor, operator):
    finding = make_run(hospital, "1200.00").findings.get()

    first = record_disposition(finding=finding, outcome="CONFIRMED", note="  billed short by the ward  ",
                               recorded_by=auditor)
    second = record_disposition(finding=finding, outcome="CORRECTED", note="HIS line added on 03-04",
                                recorded_by=operator)

    assert (first.outcome, first.note, first.recorded_by, first.supersedes) == (
        "CONFIRMED", "billed short by the ward", auditor, None)
    assert second.supersedes == first
    assert list(history(finding)) == [first, second]
    current = with_current_disposition(Finding.objects.filter(pk=finding.pk)).get()
    assert (current.current_outcome, current.current_note, current.current_by) == (
        "CORRECTED", "HIS line added on 03-04", "operator")
    first.refresh_from_db()
    assert first.outcome == "CONFIRMED"  # kept as it was, superseded


def test_open_findings_are_those_without_a_disposition(hospital, auditor):
    run = make_run(hospital, "10.00", "20.00", "30.00")
    finding = run.findings.order_by("pk").first()
    assert open_findings(run).count() == 3

    record_disposition(finding=finding, outcome="FALSE_ALARM", note="test patient", recorded_by=auditor)

    assert open_findings(run).count() == 2 and finding not in open_findings(run)


@pytest.mark.parametrize("role", ["warehouse", "nurse"])
def test_only_auditors_operators_and_administrators_record_dispositions(hospital, role):
    finding = make_run(hospital, "5.00").findings.get()
    person = factories.UserFactory(hospital=hospital, roles=[role])

    with pytest.raises(Refused) as refused:
        record_disposition(finding=finding, outcome="CONFIRMED", note="x", recorded_by=person)

    assert refused.value.code == "DISPOSITION_NOT_AUTHORISED" and refused.value.status == 403
    assert not FindingDisposition.objects.exists()


def test_a_note_holding_an_identity_number_is_refused_and_nothing_recorded(hospital, auditor):
    finding = make_run(hospital, "5.00").findings.get()

    with pytest.raises(Refused) as refused:
        record_disposition(finding=finding, outcome="CONFIRMED", note="patient 11010519491231002X billed late",
                           recorded_by=auditor)

    assert [problem.code for problem in refused.value.problems] == ["LOOKS_LIKE_PERSONAL_ID"]
    assert not FindingDisposition.objects.exists()


def test_another_hospitals_finding_is_not_found(hospital, other_hospital):
    finding = make_run(other_hospital, "5.00").findings.get()
    auditor = factories.UserFactory(hospital=hospital, roles=["auditor"])

    with pytest.raises(Refused) as refused:
        record_disposition(finding=finding, outcome="CONFIRMED", note="x", recorded_by=auditor)

    assert refused.value.code == "NOT_FOUND"


def test_an_unknown_outcome_and_an_empty_note_are_refused_together(hospital, auditor):
    finding = make_run(hospital, "5.00").findings.get()

    with pytest.raises(Refused) as refused:
        record_disposition(finding=finding, outcome="MAYBE", note="   ", recorded_by=auditor)

    assert [problem.code for problem in refused.value.problems] == [
        "DISPOSITION_UNKNOWN_OUTCOME", "DISPOSITION_NOTE_REQUIRED"]
    assert not FindingDisposition.objects.exists()


def test_dispositions_cannot_be_changed_or_deleted_and_the_history_is_one_chain(hospital, auditor):
    finding = make_run(hospital, "5.00").findings.get()
    disposition = record_disposition(finding=finding, outcome="EXPLAINED", note="late billing", recorded_by=auditor)

    disposition.note = "something else"
    with pytest.raises(TypeError):
        disposition.save()
    with pytest.raises(TypeError):
        disposition.delete()
    with pytest.raises(IntegrityError), transaction.atomic():  # a second "first" disposition
        FindingDisposition.objects.create(finding=finding, outcome="CONFIRMED", note="n", recorded_by=auditor)
    with pytest.raises(IntegrityError), transaction.atomic():  # two superseding the same one
        for _ in range(2):
            FindingDisposition.objects.create(finding=finding, outcome="CONFIRMED", note="n", recorded_by=auditor,
                                              supersedes=disposition)
    assert FindingDisposition.objects.get().note == "late billing"


def test_the_findings_export_carries_the_dispositions_and_leaves_the_signed_reports_as_stored(hospital, auditor):
    run = run_reconciliation(hospital=hospital, period_start=DAY, period_end=DAY)
    Finding.objects.bulk_create([
        Finding(run=run, kind=Finding.Kind.BILLED_NOT_USED, amount=Decimal("500.00"), encounter="ZY-GHOST",
                his_charge_code="=HIS", message="billed, never used"),
        Finding(run=run, kind=Finding.Kind.USED_NOT_BILLED, amount=Decimal("80.00"), message="not billed"),
    ])
    ghost, unbilled = run.findings.order_by("pk")
    record_disposition(finding=ghost, outcome="CONFIRMED", note="duplicate HIS line", recorded_by=auditor)
    record_disposition(finding=ghost, outcome="CORRECTED", note="refunded to the patient", recorded_by=auditor)
    signed = {name: hashlib.sha256(getattr(run, f"report_{name}").open("rb").read()).hexdigest()
              for name in ("csv", "xlsx", "pdf")}

    csv_job = request_job(kind=BackgroundJob.Kind.FINDINGS_EXPORT, requested_by=auditor, hospital=hospital,
                          params={"run": run.pk, "format": "csv"})
    xlsx_job = request_job(kind=BackgroundJob.Kind.FINDINGS_EXPORT, requested_by=auditor, hospital=hospital,
                           params={"run": run.pk, "format": "xlsx"})

    assert (csv_job.status, csv_job.progress, csv_job.result) == ("READY", 100, {"rows": 2, "run": run.pk})
    rows = list(csv.reader(io.StringIO(csv_job.result_file.open("rb").read().decode("utf-8-sig"))))
    assert rows[0][12:] == ["处理意见", "备注", "登记人", "登记时间", "已登记处理意见数"]
    assert rows[1][0] == "1" and rows[1][7] == "'=HIS"  # numbered as the reports; no formula
    assert rows[1][12:15] == ["已更正", "refunded to the patient", "auditor"] and rows[1][16] == "2"
    assert rows[2][12:15] == ["待处理", "", ""] and rows[2][16] == "0"
    sheet = load_workbook(xlsx_job.result_file.open("rb")).active
    assert [cell.value for cell in sheet[2]][12:14] == ["已更正", "refunded to the patient"]
    run.refresh_from_db()
    assert {name: getattr(run, f"{name}_sha256") for name in ("csv", "xlsx", "pdf")} == signed
    assert {name: hashlib.sha256(getattr(run, f"report_{name}").open("rb").read()).hexdigest()
            for name in ("csv", "xlsx", "pdf")} == signed
