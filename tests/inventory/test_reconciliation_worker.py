"""The nightly reconciliation on a real Celery worker over the real Redis broker (not eager).

The worker is Celery's own CLI (`celery -A spd worker -P solo`), started after setting, for this
test only: a short broker visibility timeout (5 s, swept every second) so that the message of a
killed worker is handed out again quickly, and SPD_RECON_TEST_PAUSE_SECONDS, the service's test
hook that holds a run mid-way, inside its transaction. Setting them in the boot script keeps the
test independent of how settings.py reads the environment.

The nightly job queues the task; the first worker takes it and is killed with SIGKILL while paused
mid-run (findings written, not committed). It leaves the run RUNNING with no findings (its
transaction rolls back and PostgreSQL releases the row lock); the task, acknowledged late, goes
back to the queue; a second worker computes the same run in place: one run, DONE; its reports follow
from the task the run queues when it commits.
"""
import datetime
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Finding, ReconciliationRun
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.reconciliation import nightly_day, run_nightly_reconciliation
from inventory.tasks import reconcile_hospital_period
from spd.celery import app as celery_app
from tests.conftest import stock_units

WORKER_BOOT = """
import os, sys
from django.conf import settings
settings.SPD_RECON_TEST_PAUSE_SECONDS = float(os.environ["TEST_RECON_PAUSE_SECONDS"])
settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 5, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
}
settings.CELERY_TASK_DEFAULT_QUEUE = os.environ["TEST_QUEUE"]  # where the run queues its reports' task
from celery.bin.celery import main
sys.exit(main())
"""
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, name: str, queue: str, env: dict, log: Path, pause: float) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WORKER_BOOT, "-A", "spd", "worker", "-P", "solo", "-c", "1", "-Q", queue,
                 "-n", f"{name}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-l", "INFO"],
                cwd=ROOT, env={**env, "TEST_RECON_PAUSE_SECONDS": str(pause), "TEST_QUEUE": queue},
                stdout=output, stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text()


def wait_for(condition, *, seconds: float, worker: Worker, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert worker.alive(), f"worker died while waiting for {what}:\n{worker.output()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.output()}"
        time.sleep(0.2)


def run_is_locked(hospital) -> bool:
    """The run exists and a worker holds its row lock (it is computing it)."""
    try:
        with transaction.atomic():
            list(ReconciliationRun.objects.select_for_update(nowait=True).filter(hospital=hospital))
    except DatabaseError:
        return True
    return False


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_nightly_job_survives_a_worker_killed_mid_run(
    hospital, cath_lab_store, supplier, product, keeper, tmp_path, monkeypatch, settings, redis_left_as_found
):
    settings.MEDIA_ROOT = tmp_path / "media"  # where the workers store the reports (env below)
    day = nightly_day()
    moment = datetime.datetime.combine(day, datetime.time(10), tzinfo=timezone.get_default_timezone())
    with monkeypatch.context() as clock:  # received that morning, used at 10:00 (the ledger's order)
        clock.setattr(timezone, "now", lambda: moment - datetime.timedelta(hours=2))
        [unit] = stock_units(Actor(user=keeper), supplier, cath_lab_store, product, ["W001"])
    consume_unit(actor=Actor(user=keeper), hospital=hospital, unit=unit, idempotency_key="use-w001",
                 context=ClinicalContext(encounter="ZY-W001", department=cath_lab_store.department, occurred_at=moment))
    database = connection.settings_dict
    queue = f"recon-test-{uuid.uuid4().hex[:12]}"
    broker_url = os.environ["REDIS_URL"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spd.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",  # the log of a worker killed with SIGKILL is read afterwards
    }
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    first = Worker("first", queue, env, tmp_path / "first.log", pause=120)
    second = None
    try:
        with celery_app.connection_for_write(broker_url) as broker:
            monkeypatch.setattr(
                reconcile_hospital_period, "delay",
                lambda *args: reconcile_hospital_period.apply_async(args, queue=queue, connection=broker),
            )
            queued = run_nightly_reconciliation()
        assert queued["hospitals"] == [hospital.pk]

        wait_for(lambda: "SPD_RECON_TEST_PAUSE_SECONDS" in first.output() and run_is_locked(hospital), seconds=30,
                 worker=first, what="the first worker to pause inside the run, its findings written")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while run_is_locked(hospital):  # PostgreSQL ends the dead worker's session and its lock
            assert time.monotonic() < deadline, "the killed worker's lock was never released"
            time.sleep(0.2)
        orphan = ReconciliationRun.objects.get(hospital=hospital)
        assert (orphan.status, orphan.findings.count()) == (ReconciliationRun.Status.RUNNING, 0)

        second = Worker("second", queue, env, tmp_path / "second.log", pause=0)
        wait_for(
            lambda: ReconciliationRun.objects.filter(hospital=hospital, status="DONE").exists(),
            seconds=40, worker=second, what="the redelivered task to finish the run",
        )
        wait_for(
            lambda: ReconciliationRun.objects.get(hospital=hospital).has_reports,
            seconds=40, worker=second, what="the run's reports, rendered by their own task",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()

    [run] = ReconciliationRun.objects.filter(hospital=hospital, period_start=day, period_end=day)
    assert (run.pk, run.status, run.is_current) == (orphan.pk, ReconciliationRun.Status.DONE, True)
    assert list(run.findings.values_list("kind", "encounter")) == [(Finding.Kind.USED_NOT_BILLED, "ZY-W001")]
    for report_format in ("csv", "xlsx", "pdf"):
        with getattr(run, f"report_{report_format}").open("rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == getattr(run, f"{report_format}_sha256")
    assert "reconcile_hospital_period" in second.output() and "succeeded" in second.output(), second.output()
    assert "render_reconciliation_reports" in second.output(), second.output()
