"""The ledger refuses UPDATE and DELETE in the database itself (PostgreSQL), and the role groups exist.

TRUNCATE is left to database privileges (the application role should not own the table in
production); a trigger on it would also stop the test runner from emptying its database.
"""
from django.db import migrations

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION spd_refuse_ledger_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'inventory_movement is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER inventory_movement_append_only
    BEFORE UPDATE OR DELETE ON inventory_movement
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_ledger_change();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS inventory_movement_append_only ON inventory_movement;
DROP FUNCTION IF EXISTS spd_refuse_ledger_change();
"""

ROLES = ["admin", "warehouse", "spd_operator", "nurse", "auditor"]


def protect_ledger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def unprotect_ledger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(protect_ledger, unprotect_ledger),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
