"""The MQTT_BRIDGE_DOWN alert kind, and the schedule of the two MQTT/device jobs (inventory/jobs.py).

Schedule rows are created once per name, as in 0006: an administrator's later change is kept.
"""
import json

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

TASK = "inventory.tasks.run_named_job"
SCHEDULE = [
    ("SPD MQTT bridge scan", "mqtt_bridge_scan", ("interval", 1, "minutes")),
    ("SPD device event retention", "device_event_retention", ("crontab", "30", "3")),
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
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0007_movement_options_and_expiry'),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('NEAR_EXPIRY', 'Near expiry (近效期)'), ('EXPIRED', 'Expired and locked (过期)'), ('CERTIFICATE_EXPIRING', 'Certificate expiring (证照将到期)'), ('CERTIFICATE_EXPIRED', 'Certificate expired (证照过期)'), ('RETURN_OVERDUE', 'Taken and overdue for return (定时回库预警)'), ('DEVICE_OFFLINE', 'Device offline (设备离线)'), ('UNKNOWN_TAG', 'Unknown tag in a cabinet'), ('MISPLACED_TAG', 'Misplaced unit in a cabinet'), ('BELOW_PAR', 'Stock below par level (低于基数)'), ('HIS_DELIVERY_FAILING', 'HIS charge delivery failing'), ('MQTT_BRIDGE_DOWN', 'MQTT cabinet bridge down')], max_length=32, verbose_name='kind'),
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
