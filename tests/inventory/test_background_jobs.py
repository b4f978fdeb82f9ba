"""Background jobs (inventory.services.background): queued, claimed once, progress visible while the
work runs, the result file or the error kept on the job; in process when tasks run in process."""
import csv
import io

import pytest
from django.utils import translation

from inventory.errors import Refusal, Refused
from inventory.models import BackgroundJob
from inventory.services import background
from inventory.services.background import JobResult, counted, request_job, run_queued_job
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_a_stock_export_runs_in_process_and_ends_ready_with_its_file(
    hospital, keeper, keeper_actor, supplier, warehouse, product
):
    stock_units(keeper_actor, supplier, warehouse, product, ["BJ-1", "BJ-2", "BJ-3"])

    job = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital,
                      params={"what": "units", "format": "csv", "query": ""})
    filtered = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital,
                           params={"what": "units", "format": "csv", "query": "q=BJ-2"})

    assert (job.status, job.progress, job.result, job.error) == ("READY", 100, {"rows": 3}, "")
    assert job.started_at <= job.finished_at and job.result_name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(job.result_file.open("rb").read().decode("utf-8-sig"))))
    assert sorted(row[5] for row in rows[1:]) == ["BJ-1", "BJ-2", "BJ-3"]
    assert filtered.result == {"rows": 1}  # filtered as the page was


def test_progress_is_visible_while_the_work_runs(hospital, keeper, monkeypatch):
    seen = []

    def work(job, progress):
        progress(40)
        seen.append(BackgroundJob.objects.values_list("status", "progress").get(pk=job.pk))
        progress(100)  # 100 is kept for the stored result
        seen.append(BackgroundJob.objects.values_list("status", "progress").get(pk=job.pk))
        return JobResult(result={"done": True})

    monkeypatch.setitem(background.WORK, BackgroundJob.Kind.STOCK_EXPORT, f"{__name__}.WORK_UNDER_TEST")
    monkeypatch.setattr(f"{__name__}.WORK_UNDER_TEST", work, raising=False)

    job = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital, params={})

    assert seen == [("RUNNING", 40), ("RUNNING", 99)]
    assert (job.status, job.progress, job.result) == ("READY", 100, {"done": True})


def test_a_refusal_or_an_error_of_the_work_is_kept_on_the_job(hospital, keeper, monkeypatch):
    def refuse(job, progress):
        raise Refused(Refusal.INVALID_REQUEST, detail="no such period")

    def crash(job, progress):
        raise ValueError("disk full")

    monkeypatch.setattr(f"{__name__}.WORK_UNDER_TEST", refuse, raising=False)
    monkeypatch.setitem(background.WORK, BackgroundJob.Kind.STOCK_EXPORT, f"{__name__}.WORK_UNDER_TEST")
    with translation.override("zh-hans"):
        refused = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital,
                              params={})
    with translation.override("en"):
        refused_in_english = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper,
                                         hospital=hospital, params={})
    monkeypatch.setattr(f"{__name__}.WORK_UNDER_TEST", crash, raising=False)
    crashed = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital, params={})

    assert (refused.status, refused.error) == ("FAILED", "请求无效：no such period")
    assert refused_in_english.error == "The request is invalid: no such period"  # the requester's language
    assert (crashed.status, crashed.error) == ("FAILED", "ValueError: disk full") and not crashed.result_file


def test_a_job_is_run_once_when_its_message_comes_twice(hospital, keeper, monkeypatch):
    calls = []
    monkeypatch.setattr(f"{__name__}.WORK_UNDER_TEST", lambda job, progress: calls.append(job.pk) or JobResult(),
                        raising=False)
    monkeypatch.setitem(background.WORK, BackgroundJob.Kind.STOCK_EXPORT, f"{__name__}.WORK_UNDER_TEST")
    job = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital, params={})

    again = run_queued_job(job.pk)

    assert calls == [job.pk] and again.status == "READY"


def test_with_a_broker_the_job_is_queued_after_commit_and_a_failure_to_queue_shows(
    hospital, keeper, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(background, "tasks_run_in_process", lambda: False)

    def no_broker(name, *args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(background, "queue_task", no_broker)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = request_job(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital, params={})
    assert job.status == "QUEUED" and len(callbacks) == 1

    callbacks[0]()

    job.refresh_from_db()
    assert job.status == "FAILED" and "broker unreachable" in job.error


def test_counted_reports_progress_every_so_many_rows():
    reported = []

    rows = list(counted(range(10), total=10, progress=reported.append, every=3))

    assert rows == list(range(10)) and reported == [30, 60, 90]
