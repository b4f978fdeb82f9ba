"""A reconciliation run's 进销存 table in a table of its own (StockFlowRow) instead of the run's summary
JSON, final with its run: on PostgreSQL a trigger refuses any UPDATE of a row, and the DELETE of a
row of a finished (DONE) run, as the ledger's append-only trigger does (0002). INSERT is left alone,
so that a dump restores (pg_restore loads the rows after their runs).

Runs stored before keep their table in `summary["inventory"]` (not moved here: their reports were
rendered and hashed from it, with the names of that day); inventory.selectors.flow_table reads it.
"""
import django.db.models.deletion
import django.db.models.expressions
from django.db import migrations, models


FINAL_ROWS_SQL = """
CREATE OR REPLACE FUNCTION spd_refuse_final_flow_row_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR EXISTS (
        SELECT 1 FROM inventory_reconciliationrun WHERE id = OLD.run_id AND status = 'DONE'
    ) THEN
        RAISE EXCEPTION 'inventory_stockflowrow: a reconciliation run''s table is final once done: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER inventory_stockflowrow_final
    BEFORE UPDATE OR DELETE ON inventory_stockflowrow
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_final_flow_row_change();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS inventory_stockflowrow_final ON inventory_stockflowrow;
DROP FUNCTION IF EXISTS spd_refuse_final_flow_row_change();
"""


def protect_rows(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FINAL_ROWS_SQL, params=None)


def unprotect_rows(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0040_finalised_evaluations_and_statement_steps'),
    ]

    operations = [
        migrations.CreateModel(
            name='StockFlowRow',
            fields=[
                ('pk', models.CompositePrimaryKey('run', 'position', blank=True, editable=False, primary_key=True, serialize=False)),
                ('position', models.PositiveIntegerField(verbose_name='position in the table')),
                ('opening', models.IntegerField(verbose_name='opening')),
                ('received', models.IntegerField(verbose_name='received')),
                ('transferred_in', models.IntegerField(verbose_name='transferred in')),
                ('transferred_out', models.IntegerField(verbose_name='transferred out')),
                ('consumed', models.IntegerField(verbose_name='consumed')),
                ('refunded', models.IntegerField(verbose_name='refunded')),
                ('returned', models.IntegerField(verbose_name='returned')),
                ('scrapped', models.IntegerField(verbose_name='scrapped')),
                ('adjusted', models.IntegerField(verbose_name='adjusted')),
                ('other', models.IntegerField(verbose_name='other')),
                ('expensed', models.IntegerField(verbose_name='expensed')),
                ('processed', models.IntegerField(verbose_name='processed')),
                ('closing', models.IntegerField(verbose_name='closing')),
                ('location', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='inventory.location')),
                ('product', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='inventory.product')),
                ('run', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='flow_rows', to='inventory.reconciliationrun')),
            ],
            options={
                'verbose_name': 'stock flow row',
                'ordering': ['run', 'position'],
                'constraints': [models.CheckConstraint(condition=models.Q(('closing', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('opening'), '+', models.F('received')), '+', models.F('transferred_in')), '-', models.F('transferred_out')), '-', models.F('consumed')), '+', models.F('refunded')), '-', models.F('returned')), '-', models.F('scrapped')), '+', models.F('adjusted')), '+', models.F('other')), '-', models.F('expensed')), '+', models.F('processed')))), name='stock_flow_row_adds_up')],
            },
        ),
        migrations.RunPython(protect_rows, unprotect_rows),
    ]
