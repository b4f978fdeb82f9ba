"""A real Celery worker, fed through the real Redis broker, runs a named job against PostgreSQL."""
import datetime
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from inventory.models import Alert, Unit, UnitStatus
from inventory.tasks import run_named_job
from spd.celery import app
from tests.conftest import stock_units

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    """The pytest-django test database, for the worker process."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(broker: str, queue: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "spd.settings", "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    command = [
        str(Path(sys.executable).with_name("celery")), "-A", "spd", "worker", "-P", "solo", "-c", "1", "-l", "info",
        "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def test_a_real_worker_runs_the_expiry_scan_sent_through_redis(
    hospital, keeper_actor, supplier, warehouse, product, tmp_path, redis_left_as_found
):
    expired, near = stock_units(keeper_actor, supplier, warehouse, product, ["W1", "W2"])
    today = timezone.localdate()
    Unit.objects.filter(pk=expired.pk).update(expiry=today - datetime.timedelta(days=1))
    Unit.objects.filter(pk=near.pk).update(expiry=today + datetime.timedelta(days=20))
    broker = os.environ["REDIS_URL"]
    queue = f"spd-test-{uuid.uuid4().hex[:10]}"  # this test's own queue: no other worker takes the message
    log = tmp_path / "worker.log"
    worker = start_worker(broker, queue, log)
    try:
        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            with app.connection_for_write(broker) as broker_connection:
                run_named_job.apply_async(args=["expiry_scan"], queue=queue, connection=broker_connection)
        finally:
            app.conf.task_always_eager = eager
        deadline = time.monotonic() + 25
        while Alert.objects.count() < 2 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        stop(worker)

    assert sorted(Alert.objects.values_list("kind", "unit")) == [
        ("EXPIRED", expired.pk), ("NEAR_EXPIRY", near.pk)
    ], log.read_text()
    assert Unit.objects.get(pk=expired.pk).status == UnitStatus.EXPIRED
    assert "succeeded" in log.read_text()


def test_a_real_worker_runs_a_background_stock_export_sent_through_redis(
    hospital, keeper, keeper_actor, supplier, warehouse, product, tmp_path, settings, redis_left_as_found
):
    from inventory.models import BackgroundJob
    from inventory.tasks import run_background_job

    stock_units(keeper_actor, supplier, warehouse, product, ["BGW-1", "BGW-2"])
    job = BackgroundJob.objects.create(kind=BackgroundJob.Kind.STOCK_EXPORT, requested_by=keeper, hospital=hospital,
                                       params={"language": "en", "what": "units", "format": "csv", "query": ""})
    broker = os.environ["REDIS_URL"]
    queue = f"spd-test-{uuid.uuid4().hex[:10]}"
    log = tmp_path / "worker.log"
    media = tmp_path / "media"
    os.environ["MEDIA_ROOT"] = str(media)  # the worker stores the file where this test reads it
    try:
        worker = start_worker(broker, queue, log)
    finally:
        os.environ.pop("MEDIA_ROOT")
    settings.MEDIA_ROOT = media
    try:
        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            with app.connection_for_write(broker) as broker_connection:
                run_background_job.apply_async(args=[job.pk], queue=queue, connection=broker_connection)
        finally:
            app.conf.task_always_eager = eager
        deadline = time.monotonic() + 25
        while not BackgroundJob.objects.get(pk=job.pk).finished and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        stop(worker)

    job.refresh_from_db()
    assert (job.status, job.progress, job.result, job.error) == ("READY", 100, {"rows": 2}, ""), log.read_text()
    body = job.result_file.open("rb").read().decode("utf-8-sig")
    assert body.startswith("Internal code,Product") and "BGW-1" in body and "BGW-2" in body  # in the requester's language
