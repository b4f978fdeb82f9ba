"""Celery application. In the embedded default tasks run in-process (CELERY_TASK_ALWAYS_EAGER)."""
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from spd.start_up import freeze_start_up_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spd.settings")

app = Celery("spd")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect  # each child of the prefork pool, once started
@worker_ready.connect  # the worker itself (the solo and thread pools run tasks there)
def _freeze_start_up_objects(**_) -> None:
    freeze_start_up_objects()
