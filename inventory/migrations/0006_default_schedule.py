"""The default schedule of the background jobs (inventory/jobs.py), as django-celery-beat rows.

Data only, created once per name: an administrator may then change or disable each job in the
admin without a deploy, and running this again never overwrites their change. Daily times are in
the hospital's time zone (settings.TIME_ZONE). An interval job's message expires after one
interval, so a stopped worker does not find a backlog of identical runs when it comes back.
"""

from django.db import migrations

from inventory.migrations._schedule import TASK, schedule_functions  # noqa: F401 (TASK: tests read it here)

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


create_schedule, delete_schedule = schedule_functions(SCHEDULE)


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0005_alerts_par_levels_reconciliation"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
