"""The review report (PDF with its charts) made by a real Celery worker fed through Redis, its
progress written on the job as it goes (docs/review.md)."""
import datetime
import os
import time
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import BackgroundJob, Consumption
from spd.celery import app
from tests import factories
from tests.inventory.test_celery_worker import start_worker, stop
from tests.pdf_text import shown_strings

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_makes_the_review_pdf_and_the_job_passes_through_running(
    hospital, operator, warehouse, tmp_path, settings, redis_left_as_found
):
    from inventory.tasks import run_background_job

    department = factories.DepartmentFactory(hospital=hospital, code="CARD", name="心内科")
    product = factories.ProductFactory(hospital=hospital, name="支架")
    for month in (1, 2, 3):
        Consumption.objects.create(
            hospital=hospital, product=product, quantity=1, location=warehouse, encounter="E1", doctor="D1",
            department=department, unit_price=Decimal("100.00") * month,
            occurred_at=timezone.make_aware(datetime.datetime(2026, month, 10, 10)),
        )
    job = BackgroundJob.objects.create(
        kind=BackgroundJob.Kind.REVIEW_EXPORT, requested_by=operator, hospital=hospital,
        params={"language": "zh-hans", "dimension": "department", "start": "2026-01-01", "end": "2026-03-31",
                "high_value": False, "format": "pdf"},
    )
    broker = os.environ["REDIS_URL"]
    queue = f"spd-test-{uuid.uuid4().hex[:10]}"
    log = tmp_path / "worker.log"
    media = tmp_path / "media"
    os.environ["MEDIA_ROOT"] = str(media)
    try:
        worker = start_worker(broker, queue, log)
    finally:
        os.environ.pop("MEDIA_ROOT")
    settings.MEDIA_ROOT = media
    states = set()
    try:
        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            with app.connection_for_write(broker) as broker_connection:
                run_background_job.apply_async(args=[job.pk], queue=queue, connection=broker_connection)
        finally:
            app.conf.task_always_eager = eager
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            current = BackgroundJob.objects.values_list("status", "progress").get(pk=job.pk)
            states.add(current)
            if current[0] in ("READY", "FAILED"):
                break
            assert worker.poll() is None, log.read_text()
            time.sleep(0.05)
    finally:
        stop(worker)

    job.refresh_from_db()
    assert (job.status, job.progress, job.error) == ("READY", 100, ""), log.read_text()
    assert ("QUEUED", 0) in states and job.result_name == "review-department-20260101-20260331.pdf"
    shown = shown_strings(job.result_file.open("rb").read())
    assert "耗材点评" in shown and "心内科" in shown and shown.count("2026-02") >= 3  # in the requester's language
