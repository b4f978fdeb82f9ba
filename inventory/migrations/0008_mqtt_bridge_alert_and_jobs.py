"""The MQTT_BRIDGE_DOWN alert kind, and the schedule of the two MQTT/device jobs (inventory/jobs.py).

Schedule rows are created once per name, as in 0006: an administrator's later change is kept.
"""

from django.db import migrations, models

from inventory.migrations._schedule import schedule_functions

SCHEDULE = [
    ("SPD MQTT bridge scan", "mqtt_bridge_scan", ("interval", 1, "minutes")),
    ("SPD device event retention", "device_event_retention", ("crontab", "30", "3")),
]


create_schedule, delete_schedule = schedule_functions(SCHEDULE)


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
