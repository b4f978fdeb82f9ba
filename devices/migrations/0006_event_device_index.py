from django.db import migrations, models
import django.db.models.deletion

# The device's own index on DeviceEvent goes (see the model): dropped by name, since Django's
# AlterField would drop and re-add the foreign key, validating every stored event under lock.
INDEX = "devices_deviceevent_device_id_5294ea65"


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0005_event_date_repair'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='deviceevent',
                    name='device',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='events', to='devices.device'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "devices_deviceevent" ("device_id")',
                ),
            ],
        ),
    ]
