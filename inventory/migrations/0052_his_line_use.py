"""Each HIS settlement line naming one of our charges also names that charge's use (Consumption).

The reconciliation matches a period's lines to the uses they bill (selectors.reconciliation.period_billing):
a year's ~300,000 lines were joined to their charges and those to their uses, two hash joins of ~300,000
rows; with the use on the line, one. The column is filled from the charges in batches by id, then its
foreign key is added NOT VALID and validated in one scan (checked row by row during the fill, the key
would lock every use it names). The CHECK keeps the use set exactly when the charge is; on PostgreSQL a
trigger refuses a line whose use is not its charge's (the charge's use never changes: nothing updates
`Charge.consumption`).

On the benchmark's year (293,951 lines, 234,665 naming a charge): ~6-8 s, the table locked throughout.
The fill writes a new version of every linked line: the table and its indexes are left ~1.9x their size
until `VACUUM FULL inventory_hissettlementline` (~1.5 s there; it cannot run inside this migration's
transaction, and a CLUSTER inside it keeps the old versions) — docs/deployment.md's upgrade notes.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "inventory_hissettlementline"
BATCH = 100_000  # line ids per UPDATE

USE_OF_CHARGE_SQL = f"""
CREATE OR REPLACE FUNCTION spd_his_line_use_of_charge() RETURNS trigger AS $$
BEGIN
    IF NEW.use_id IS DISTINCT FROM (SELECT consumption_id FROM inventory_charge WHERE id = NEW.charge_id) THEN
        RAISE EXCEPTION 'HIS_LINE_USE: HIS line % names charge % but use %, not the charge''s',
            NEW.his_line_id, NEW.charge_id, NEW.use_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {TABLE}_use_of_charge BEFORE INSERT OR UPDATE OF charge_id, use_id ON {TABLE}
    FOR EACH ROW WHEN (NEW.charge_id IS NOT NULL) EXECUTE FUNCTION spd_his_line_use_of_charge();
"""
DROP_USE_OF_CHARGE_SQL = f"""
DROP TRIGGER IF EXISTS {TABLE}_use_of_charge ON {TABLE};
DROP FUNCTION IF EXISTS spd_his_line_use_of_charge();
"""


def fill(schema_editor, table: str) -> None:
    """Every line naming a charge gets the charge's use, a batch of ids per statement."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table} WHERE charge_id IS NOT NULL")
        low, high = cursor.fetchone()
        if low is None:
            return
        for start in range(low, high + 1, BATCH):
            cursor.execute(
                f"UPDATE {table} l SET use_id = c.consumption_id FROM inventory_charge c"
                f" WHERE c.id = l.charge_id AND l.id >= %s AND l.id < %s", [start, start + BATCH])


def add_use(apps, schema_editor):
    line = apps.get_model("inventory", "HisSettlementLine")
    field = line._meta.get_field("use")
    table = schema_editor.quote_name(line._meta.db_table)
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_field(line, field)
        fill(schema_editor, table)
        return
    schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN use_id bigint NULL")
    fill(schema_editor, table)
    foreign_key = schema_editor._create_fk_sql(line, field, "_fk_%(to_table)s_%(to_column)s")
    schema_editor.execute(f"{foreign_key} NOT VALID", params=None)
    schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {foreign_key.parts['name']}", params=None)


def drop_use(apps, schema_editor):
    line = apps.get_model("inventory", "HisSettlementLine")
    schema_editor.remove_field(line, line._meta.get_field("use"))


def refuse_another_use(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(USE_OF_CHARGE_SQL, params=None)


def allow_another_use(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_USE_OF_CHARGE_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0051_ledger_checks_per_statement"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="hissettlementline",
                    name="use",
                    field=models.ForeignKey(
                        blank=True, db_index=False, editable=False, null=True,
                        help_text="The use our charge bills (the charge's consumption)",
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="inventory.consumption",
                    ),
                ),
            ],
        ),
        migrations.RunPython(add_use, drop_use),
        migrations.AddConstraint(
            model_name="hissettlementline",
            constraint=models.CheckConstraint(
                condition=models.Q(("charge__isnull", True), ("use__isnull", True))
                | models.Q(("charge__isnull", False), ("use__isnull", False)),
                name="his_line_use_with_its_charge",
            ),
        ),
        migrations.RunPython(refuse_another_use, allow_another_use),
    ]
