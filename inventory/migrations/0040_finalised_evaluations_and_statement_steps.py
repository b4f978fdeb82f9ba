"""Two rules the services kept alone, now also kept by the database (PostgreSQL):

- a finalised supplier evaluation run never changes: UPDATE or DELETE of the run is refused, and so
  is any write (INSERT, UPDATE, DELETE) of its suppliers' scores and ranks, its values and its
  weights. The one write after finalising is `finalise_run` storing the report files, once: an
  UPDATE of a finalised run that only fills its empty report fields passes.
- a consignment statement is where its last recorded step says (`SupplierSettlementEvent`): a
  statement set ISSUED (or any later stage) by a path that wrote no step — a queryset update, a
  bulk insert, raw SQL — is refused when the transaction commits (a deferred constraint trigger:
  the workflow writes the step just after the stage). The statements that migration 0036 set
  ISSUED without a step get their ISSUED step here, by whoever confirmed them.

On SQLite (the embedded demo) the services' rules stay the only ones.
"""
from django.db import migrations

FINALISED_RUN_SQL = """
CREATE OR REPLACE FUNCTION spd_refuse_finalised_evaluation_run() RETURNS trigger AS $$
DECLARE
    reports text[] := ARRAY['report_csv', 'report_xlsx', 'report_pdf', 'csv_sha256', 'xlsx_sha256', 'pdf_sha256'];
BEGIN
    IF OLD.status <> 'FINALISED' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.csv_sha256 = '' AND OLD.xlsx_sha256 = '' AND OLD.pdf_sha256 = ''
            AND (to_jsonb(NEW) - reports) = (to_jsonb(OLD) - reports) THEN
        RETURN NEW;  -- finalise_run storing the report files, once
    END IF;
    RAISE EXCEPTION 'EVALUATION_RUN_FINALISED: evaluation run % was finalised at %: % refused',
        OLD.id, OLD.finalised_at, TG_OP USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER inventory_evaluationrun_finalised
    BEFORE UPDATE OR DELETE ON inventory_evaluationrun
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_finalised_evaluation_run();

CREATE OR REPLACE FUNCTION spd_refuse_finalised_evaluation_row() RETURNS trigger AS $$
DECLARE
    run_ids bigint[];
    finalised bigint;
BEGIN
    -- The run the row leaves and the run it goes to. FOR SHARE waits for a finalisation under
    -- way (it holds the run FOR UPDATE) and then sees it.
    run_ids := CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.run_id] WHEN 'DELETE' THEN ARRAY[OLD.run_id]
                          ELSE ARRAY[OLD.run_id, NEW.run_id] END;
    SELECT id INTO finalised FROM inventory_evaluationrun
        WHERE id = ANY(run_ids) AND status = 'FINALISED' ORDER BY id LIMIT 1 FOR SHARE;
    IF finalised IS NOT NULL THEN
        RAISE EXCEPTION 'EVALUATION_RUN_FINALISED: % of finalised evaluation run %: % refused',
            TG_TABLE_NAME, finalised, TG_OP USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
RUN_ROWS = ("inventory_evaluatedsupplier", "inventory_evaluationvalue", "inventory_evaluationweight")

STATEMENT_STEP_SQL = """
CREATE OR REPLACE FUNCTION spd_require_settlement_step() RETURNS trigger AS $$
DECLARE
    stage_now text;
    last_step text;
    stage_of_step text;
BEGIN
    -- Deferred to the commit: read the statement and its steps as they are then.
    SELECT stage INTO stage_now FROM inventory_suppliersettlement WHERE id = NEW.id;
    IF stage_now IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT kind INTO last_step FROM inventory_suppliersettlementevent WHERE settlement_id = NEW.id
        ORDER BY id DESC LIMIT 1;
    -- No step yet, or reopened: a draft; else the stage its last step took it to.
    stage_of_step := COALESCE(NULLIF(last_step, 'REOPENED'), 'DRAFT');
    IF stage_now <> stage_of_step THEN
        RAISE EXCEPTION 'SETTLEMENT_STAGE: statement % is % but its last recorded step is %: a stage is set '
            'only with its step (services.settlement_workflow)', NEW.id, stage_now, COALESCE(last_step, 'none')
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER inventory_suppliersettlement_stage_has_step
    AFTER INSERT OR UPDATE OF stage ON inventory_suppliersettlement
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION spd_require_settlement_step();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS inventory_suppliersettlement_stage_has_step ON inventory_suppliersettlement;
DROP FUNCTION IF EXISTS spd_require_settlement_step();
DROP TRIGGER IF EXISTS inventory_evaluationrun_finalised ON inventory_evaluationrun;
DROP FUNCTION IF EXISTS spd_refuse_finalised_evaluation_run();
"""


def protect(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FINALISED_RUN_SQL, params=None)
    for table in RUN_ROWS:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_finalised BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION spd_refuse_finalised_evaluation_row()", params=None,
        )
    schema_editor.execute(STATEMENT_STEP_SQL, params=None)


def unprotect(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in RUN_ROWS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_finalised ON {table}", params=None)
    schema_editor.execute("DROP FUNCTION IF EXISTS spd_refuse_finalised_evaluation_row()", params=None)
    schema_editor.execute(DROP_SQL, params=None)


def issue_steps_of_issued_statements(apps, schema_editor):
    """Migration 0036 set every confirmed statement ISSUED without writing its ISSUED step."""
    SupplierSettlement = apps.get_model("inventory", "SupplierSettlement")
    SupplierSettlementEvent = apps.get_model("inventory", "SupplierSettlementEvent")
    unstepped = SupplierSettlement.objects.exclude(stage="DRAFT").filter(events__isnull=True).order_by("pk")
    SupplierSettlementEvent.objects.bulk_create(
        SupplierSettlementEvent(settlement=statement, kind="ISSUED", by_id=statement.confirmed_by_id or statement.created_by_id,
                                at=statement.confirmed_at or statement.created_at)
        for statement in unstepped
    )


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0039_alliance_transfer_holds"),
    ]

    operations = [
        migrations.RunPython(issue_steps_of_issued_statements, migrations.RunPython.noop),
        migrations.RunPython(protect, unprotect),
    ]
