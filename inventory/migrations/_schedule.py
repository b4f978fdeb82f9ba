"""The job schedule as django-celery-beat rows, shared by the migrations that add jobs (0006, 0008,
0016). Not a migration itself: the loader skips modules whose name starts with an underscore.

Rows are created once per name: an administrator may then change or disable each job in the admin
without a deploy, and running this again never overwrites their change. Daily times are in the
hospital's time zone (settings.TIME_ZONE). An interval job's message expires after one interval, so
a stopped worker does not find a backlog of identical runs when it comes back.
"""
import json
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

TASK = "inventory.tasks.run_named_job"
_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}

# (periodic task name, job, crontab (minute, hour) or interval (every, period))
Schedule = list[tuple[str, str, tuple[str, object, object]]]


def schedule_functions(schedule: Schedule) -> tuple[Callable, Callable]:
    """The RunPython pair that creates and deletes `schedule`'s rows."""

    def create_schedule(apps, schema_editor) -> None:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for name, job, (kind, first, second) in schedule:
            if kind == "crontab":
                row, _ = CrontabSchedule.objects.get_or_create(
                    minute=first, hour=second, day_of_week="*", day_of_month="*", month_of_year="*",
                    timezone=settings.TIME_ZONE,
                )
                defaults = {"crontab": row}
            else:
                row, _ = IntervalSchedule.objects.get_or_create(every=first, period=second)
                defaults = {"interval": row, "expire_seconds": first * _SECONDS[second]}
            PeriodicTask.objects.get_or_create(
                name=name,
                defaults={"task": TASK, "args": json.dumps([job]), "description": f"inventory.jobs: {job}", **defaults},
            )
        _tell_beat(apps)

    def delete_schedule(apps, schema_editor) -> None:
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        PeriodicTask.objects.filter(name__in=[name for name, _, _ in schedule], task=TASK).delete()
        _tell_beat(apps)

    return create_schedule, delete_schedule


def _tell_beat(apps) -> None:
    """A running beat reloads its schedule when this marker changes (the model's signals do not fire here)."""
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
