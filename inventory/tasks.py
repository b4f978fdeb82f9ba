"""Celery tasks: one line of plumbing around a service each; the rules live in the services."""
import datetime

from celery import Task, shared_task
from django.db import OperationalError

from inventory.jobs import run_job
from inventory.models import Hospital
from inventory.services.background import run_queued_job
from inventory.services.his import deliver_due_charges
from inventory.services.notifications import deliver_due_notifications
from inventory.services.reconciliation import run_reconciliation
from inventory.services.reports import ensure_reports


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True,
    max_retries=5,
)
def deliver_his_charges(self: Task, limit: int = 100) -> dict:
    """Send the due HIS charges (the outbox relay); run it every few seconds from beat.

    Retried only when the database is unreachable. An unreachable HIS is not an error of the task:
    the relay records it on each delivery and retries it on its own schedule.
    """
    return deliver_due_charges(limit=limit).as_dict()


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
    retry_jitter=True, max_retries=5,
)
def run_named_job(self: Task, name: str) -> dict:
    """Run one job of inventory.jobs by name (the beat schedule names them: expiry_scan, his_relay…).

    Every job is idempotent, so a message delivered twice (acks_late) does no harm; retried only
    when the database is unreachable.
    """
    return run_job(name)


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
    retry_jitter=True, max_retries=5,
)
def reconcile_hospital_period(self: Task, hospital_id: int, start: str, end: str, rerun: bool = False) -> int:
    """Reconcile one hospital over [start, end] (ISO dates, end included); returns the run's id.

    Acknowledged only when done, and redelivered when the worker dies mid-run: the run is unique per
    hospital and period, and a run left RUNNING by a dead worker is computed again in place.
    `rerun` supersedes a finished run of the period instead of returning it (bench/alliance.py runs
    the same night again).
    """
    run = run_reconciliation(
        hospital=Hospital.objects.get(pk=hospital_id), period_start=datetime.date.fromisoformat(start),
        period_end=datetime.date.fromisoformat(end), rerun=rerun,
    )
    return run.pk


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
    retry_jitter=True, max_retries=5,
)
def render_reconciliation_reports(self: Task, run_pk: int) -> int | None:
    """Render and store the CSV, XLSX and PDF reports of a finished run (queued when it commits).

    Idempotent: a redelivered message finds the reports stored and does nothing.
    """
    run = ensure_reports(run_pk)
    return run.pk if run else None


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True,
    max_retries=5,
)
def deliver_notifications(self: Task, limit: int = 50) -> dict:
    """Send the due alert notifications (queued when an alert commits; also the notification_relay job).

    A channel that fails is not an error of the task: the relay records it on the message and
    retries it with back-off. Retried only when the database is unreachable.
    """
    return deliver_due_notifications(limit=limit).as_dict()


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True,
    max_retries=5,
)
def run_background_job(self: Task, job_pk: int) -> str | None:
    """Run one background job a person is watching (an export, a reconciliation); returns its status.

    Claimed by a conditional update, so a redelivered message does nothing; the work's errors are
    kept on the job for the page to show. Retried only when the database is unreachable.
    """
    job = run_queued_job(job_pk)
    return job.status if job else None
