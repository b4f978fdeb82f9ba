"""Background jobs: work a person asked for that can take more than a second — a stock export of
200,000 units, a reconciliation, the findings with their dispositions — run by a Celery worker
while the page shows it queued, running (n %) or ready with its download.

`request_job` records the job and queues the `run_background_job` task (in process, as the
embedded default runs tasks, it runs at once); `run_queued_job` claims it with a conditional update (a
message delivered twice runs it once), runs the kind's work (`WORK`) in the requester's language
and keeps its file or result, or the error, on the row. Progress is written with plain updates
outside any transaction, so that the status endpoint sees it while the work goes on.
"""
import datetime
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from inventory.errors import Refused
from inventory.models import BackgroundJob, Hospital, User
from inventory.services.reconciliation import run_reconciliation
from inventory.task_queue import RUN_BACKGROUND_JOB_TASK, queue_task, tasks_run_in_process

logger = logging.getLogger(__name__)
Kind, Status = BackgroundJob.Kind, BackgroundJob.Status

# What each kind of job does: a function (job, progress) -> JobResult.
WORK = {
    Kind.STOCK_EXPORT: "inventory.web.export.export_stock",
    Kind.FINDINGS_EXPORT: "inventory.services.findings.export_findings",
    Kind.RECONCILIATION: "inventory.services.background.reconcile",
    Kind.REVIEW_EXPORT: "inventory.services.review_report.export_review",
}


@dataclass
class JobResult:
    """What a job's work produced: a file written at `path` (downloaded as `file_name`), and/or a
    small JSON `result` (e.g. the run a reconciliation made)."""

    file_name: str = ""
    path: Path | None = None
    result: dict = field(default_factory=dict)


Progress = Callable[[int], None]


def request_job(*, kind: str, requested_by: User, hospital: Hospital, params: dict) -> BackgroundJob:
    """Record a job and queue it once committed (run now when tasks run in process). `params` are
    the work's parameters (JSON); the requester's language is kept with them for the work's words."""
    job = BackgroundJob.objects.create(
        kind=kind, requested_by=requested_by, hospital=hospital,
        params={"language": translation.get_language() or "", **params},
    )

    def send() -> None:
        try:
            queue_task(RUN_BACKGROUND_JOB_TASK, job.pk)
        except Exception as error:  # no broker: the page shows it failed instead of waiting for ever
            logger.exception("could not queue background job %s", job.pk)
            BackgroundJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
                status=Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000], finished_at=timezone.now(),
            )

    if tasks_run_in_process():
        send()
        job.refresh_from_db()
    else:
        transaction.on_commit(send)
    return job


def run_queued_job(job_pk: int) -> BackgroundJob | None:
    """Run a queued job once: claimed by a conditional update, so that a second delivery of its
    message does nothing. Its work's refusal or error is kept on the job (FAILED), not raised: the
    person watching it reads it there."""
    claimed = BackgroundJob.objects.filter(pk=job_pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now(),
    )
    job = BackgroundJob.objects.filter(pk=job_pk).select_related("requested_by", "hospital").first()
    if not claimed or job is None:
        return job
    last = {"percent": 0}

    def progress(percent: int) -> None:
        percent = max(0, min(99, int(percent)))  # 100 is for when the result is stored
        if percent != last["percent"]:
            last["percent"] = percent
            BackgroundJob.objects.filter(pk=job_pk, status=Status.RUNNING).update(progress=percent)

    # The work and its refusal are worded in the requester's language, else the site's, whatever
    # language the worker process last had active.
    with translation.override(job.params.get("language") or settings.LANGUAGE_CODE):
        try:
            outcome: JobResult = import_string(WORK[job.kind])(job, progress)
            if outcome.path is not None:
                with outcome.path.open("rb") as handle:
                    job.result_file.save(f"{job.hospital_id}/job-{job.pk}-{outcome.file_name}", File(handle),
                                         save=False)
                outcome.path.unlink(missing_ok=True)
        except Refused as refused:
            _finish(job, Status.FAILED, error=refused.detail)
        except Exception as error:
            logger.exception("background job %s failed", job.pk)
            _finish(job, Status.FAILED, error=f"{type(error).__name__}: {error}")
        else:
            job.result_name, job.result = outcome.file_name, outcome.result
            _finish(job, Status.READY)
    return job


def _finish(job: BackgroundJob, status: str, *, error: str = "") -> None:
    job.status, job.error, job.finished_at = status, error[:2000], timezone.now()
    if status == Status.READY:
        job.progress = 100
    job.save(update_fields=["status", "error", "finished_at", "progress", "result_file", "result_name", "result"])


def scratch_file(suffix: str) -> Path:
    """A temporary file for a job's work to write its result into (the runner stores and removes it)."""
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)  # noqa: SIM115 - closed here, kept on disk
    handle.close()
    return Path(handle.name)


def counted(rows, *, total: int, progress: Progress, every: int = 1000):
    """`rows`, reporting progress (in %) to `progress` every `every` rows out of `total`."""
    for index, row in enumerate(rows, start=1):
        if index % every == 0 and total:
            progress(index * 100 // total)
        yield row


def reconcile(job: BackgroundJob, progress: Progress) -> JobResult:
    """A reconciliation asked for from the web: the period's current run (made, or re-run)."""
    before = job.params.get("existing_run")
    run = run_reconciliation(
        hospital=job.hospital, period_start=datetime.date.fromisoformat(job.params["period_start"]),
        period_end=datetime.date.fromisoformat(job.params["period_end"]), requested_by=job.requested_by,
        rerun=bool(job.params.get("rerun")),
    )
    return JobResult(result={"run": run.pk, "existed": run.pk == before})
