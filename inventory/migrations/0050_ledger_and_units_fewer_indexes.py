import django.db.models.deletion
from django.db import migrations, models

# One index entry less per movement and per unit moved: the single-column indexes of foreign keys
# that a composite index already leads with, and the prefix-search (varchar_pattern_ops) indexes of
# two unique columns nothing searches by prefix. Dropped by name, as devices 0006 did: Django's
# AlterField would drop and re-add each foreign key, validating every row of the table under lock.
# DROP INDEX holds the table's lock only for the catalog change (milliseconds).
FOREIGN_KEY_INDEXES = [
    ("inventory_movement", "hospital_id", "inventory_movement_hospital_id_c372e101"),
    ("inventory_movement", "product_id", "inventory_movement_product_id_3c28cb3b"),
    ("inventory_unit", "hospital_id", "inventory_unit_hospital_id_ad316a3a"),
    ("inventory_unit", "location_id", "inventory_unit_location_id_ad8ad567"),
    ("inventory_unit", "product_id", "inventory_unit_product_id_298ece0c"),
]
# PostgreSQL only: Django adds them there for unique character columns.
PATTERN_INDEXES = [
    ("inventory_movement", "idempotency_key", "inventory_movement_idempotency_key_c2302e9b_like"),
    ("inventory_unit", "epc", "inventory_unit_epc_398df5c3_like"),
]


def drop_indexes(apps, schema_editor):
    for _, _, name in FOREIGN_KEY_INDEXES + PATTERN_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore_indexes(apps, schema_editor):
    for table, column, name in FOREIGN_KEY_INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")')
    if schema_editor.connection.vendor == "postgresql":
        for table, column, name in PATTERN_INDEXES:
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0049_his_lines_naming_no_charge_by_time"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="movement",
                    name="hospital",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="movements", to="inventory.hospital"),
                ),
                migrations.AlterField(
                    model_name="movement",
                    name="product",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="movements", to="inventory.product"),
                ),
                migrations.AlterField(
                    model_name="unit",
                    name="hospital",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="units", to="inventory.hospital"),
                ),
                migrations.AlterField(
                    model_name="unit",
                    name="location",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.PROTECT, related_name="units",
                                            to="inventory.location"),
                ),
                migrations.AlterField(
                    model_name="unit",
                    name="product",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="units", to="inventory.product"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
