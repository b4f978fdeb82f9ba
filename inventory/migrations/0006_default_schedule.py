"""The default schedule of the background jobs (inventory/jobs.py), as django-celery-beat rows.

Data only, created once per name: an administrator may then change or disable each job in the
admin without a deploy, and running this again never overwrites their change. Daily times are in
the hospital's time zone (settings.TIME_ZONE). An interval job's message expires after one
interval, so a stopped worker does not find a backlog of identical runs when it comes back.
"""
import json

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TASK = "inventory.tasks.run_named_job"

# (periodic task name, job, crontab (minute, hour) or interval (every, period))
SCHEDULE = [
    ("SPD expiry scan", "expiry_scan", ("crontab", "0", "1")),
    ("SPD certificate scan", "certificate_scan", ("crontab", "10", "1")),
    ("SPD return-overdue scan", "return_overdue_scan", ("interval", 5, "minutes")),
    ("SPD device-offline scan", "device_offline_scan", ("interval", 2, "minutes")),
    ("SPD cabinet tag scan", "cabinet_tag_scan", ("interval", 10, "minutes")),
    ("SPD par level scan", "par_level_scan", ("interval", 1, "hours")),
    ("SPD HIS failing scan", "his_failing_scan", ("interval", 10, "minutes")),
    ("SPD HIS relay", "his_relay", ("interval", 30, "seconds")),
    ("SPD nightly reconciliation", "nightly_reconciliation", ("crontab", "0", "2")),
]
_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}


def create_schedule(apps, schema_editor) -> None:
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, job, (kind, first, second) in SCHEDULE:
        if kind == "crontab":
            schedule, _ = CrontabSchedule.objects.get_or_create(
                minute=first, hour=second, day_of_week="*", day_of_month="*", month_of_year="*",
                timezone=settings.TIME_ZONE,
            )
            defaults = {"crontab": schedule}
        else:
            schedule, _ = IntervalSchedule.objects.get_or_create(every=first, period=second)
            defaults = {"interval": schedule, "expire_seconds": first * _SECONDS[second]}
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": TASK, "args": json.dumps([job]), "description": f"inventory.jobs: {job}",
                                 **defaults},
        )
    _tell_beat(apps)


def delete_schedule(apps, schema_editor) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in SCHEDULE], task=TASK).delete()
    _tell_beat(apps)


def _tell_beat(apps) -> None:
    """A running beat reloads its schedule when this marker changes (the model's signals do not fire here)."""
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0005_alerts_par_levels_reconciliation"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
