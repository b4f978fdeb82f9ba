"""A closed month's snapshot summed per product × location (PeriodPlaceBalance), stored by the close:
a day's 进销存 table and its ledger check start from ~90,000 place rows on the one-year benchmark
instead of adding up the snapshot's ~200,000 lot rows each run.

The months already closed are summed here from their stored lot rows, one statement each, and marked
`places_stored`. A snapshot without place rows (stored by code without them) is read from its lot rows.
"""

import django.db.models.deletion
from django.db import migrations, models


def sum_closed_months(apps, schema_editor):
    closed = apps.get_model("inventory", "ClosedPeriod")
    place, balance = apps.get_model("inventory", "PeriodPlaceBalance"), apps.get_model("inventory", "PeriodBalance")
    with schema_editor.connection.cursor() as cursor:
        for period in closed.objects.order_by("pk").values_list("pk", flat=True):
            cursor.execute(
                f"INSERT INTO {place._meta.db_table} (period_id, product_id, location_id, quantity)"
                f" SELECT period_id, product_id, location_id, SUM(quantity) FROM {balance._meta.db_table}"
                f" WHERE period_id = %s GROUP BY period_id, product_id, location_id", [period])
        if schema_editor.connection.vendor == "postgresql":  # as the close does: the day's plans read the new rows
            cursor.execute(f"ANALYZE {place._meta.db_table}")
    closed.objects.update(places_stored=True)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0052_his_line_use'),
    ]

    operations = [
        migrations.AddField(
            model_name='closedperiod',
            name='places_stored',
            field=models.BooleanField(db_default=False, default=False, verbose_name='snapshot summed per place'),
        ),
        migrations.CreateModel(
            name='PeriodPlaceBalance',
            fields=[
                ('pk', models.CompositePrimaryKey('period', 'product', 'location', blank=True, editable=False, primary_key=True, serialize=False)),
                ('quantity', models.IntegerField(verbose_name='closing quantity')),
                ('location', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='inventory.location')),
                ('period', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='place_balances', to='inventory.closedperiod')),
                ('product', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='inventory.product')),
            ],
            options={
                'verbose_name': 'closing balance per place',
                'ordering': ['period', 'location', 'product'],
            },
        ),
        migrations.RunPython(sum_closed_months, migrations.RunPython.noop, elidable=True),
    ]
