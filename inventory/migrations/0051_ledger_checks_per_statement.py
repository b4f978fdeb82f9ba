"""The ledger's three refusals on INSERT are checked once per statement over the rows inserted, not
once per row (PostgreSQL; SQLite has no triggers).

The closed month (0025), the alliance-held unit or in-transit location (0039) and the alliance-held
lot quantity (0042) were BEFORE INSERT … FOR EACH ROW triggers on inventory_movement: a receiving
station's batch of 500 scans made 1,500 PL/pgSQL calls, about 40 ms of its writes (bench/README.md,
branch `h19ing`). Each is now an AFTER INSERT … FOR EACH STATEMENT trigger that reads the statement's
rows (`REFERENCING NEW TABLE`) in one query. The rules, the exemptions, the SQLSTATE
(`restrict_violation`) and the messages are the per-row ones, worded for the first refused row in
insert order (by id). A refusal aborts the statement: a multi-row INSERT with one bad row writes
nothing.

What differs, only when a statement is refused anyway:
- a row that breaks a column's own constraint (NOT NULL, CHECK, a unique key) as well is refused by
  that constraint, which PostgreSQL checks as the row is written, before the statement's triggers;
- when rows of one statement break different rules, the refusal names the first rule in the
  triggers' order (alliance hold, alliance lot hold, closed month), not the first bad row's.

A transition table cannot serve a trigger with a column list (`UPDATE OF occurred_at`): the closed
month stays a per-row trigger on UPDATE of the date (the append-only trigger of 0002 refuses every
UPDATE first). Consumptions and HIS settlement lines keep their per-row closed-month triggers.

The closed-month check keeps its lock: it takes a key-share lock of each hospital the rows name (in
id order) before reading where the books are closed, so a write racing a close waits for it and
then sees it. Migrating back restores the per-row triggers of 0025, 0039 and 0042 as they were.
"""
from importlib import import_module

from django.db import migrations

STATEMENT_SQL = """
DROP TRIGGER inventory_movement_alliance_held ON inventory_movement;
DROP TRIGGER inventory_movement_alliance_lot_held ON inventory_movement;
DROP TRIGGER inventory_movement_closed_period ON inventory_movement;

CREATE OR REPLACE FUNCTION spd_refuse_alliance_held() RETURNS trigger AS $$
DECLARE
    refused record;
BEGIN
    SELECT m.kind, m.unit_id, transit.id IS NOT NULL AS leaves_transit INTO refused
      FROM inserted_movements m
      LEFT JOIN inventory_location transit
        ON transit.id = m.from_location_id AND transit.kind = 'IN_TRANSIT' AND transit.code = 'ALLIANCE-TRANSIT'
     WHERE m.document_type <> 'ALLIANCE_TRANSFER' AND m.kind <> 'EXPIRE'
       AND (transit.id IS NOT NULL OR EXISTS (
            SELECT 1 FROM inventory_stockreservation
             WHERE unit_id = m.unit_id AND is_active AND holder_type = 'ALLIANCE_TRANSFER_LINE'))
     ORDER BY m.id LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF refused.leaves_transit THEN
        RAISE EXCEPTION 'ALLIANCE_TRANSIT_LOCKED: a % movement may not leave an alliance in-transit location', refused.kind
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'ALLIANCE_STOCK_RESERVED: unit % is reserved for an alliance transfer', refused.unit_id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER inventory_movement_alliance_held
    AFTER INSERT ON inventory_movement REFERENCING NEW TABLE AS inserted_movements
    FOR EACH STATEMENT EXECUTE FUNCTION spd_refuse_alliance_held();

-- Each lot movement against its balance before it (the ledger lowers the balance in a later
-- statement), one row at a time as before: rows of one statement are not added up.
CREATE OR REPLACE FUNCTION spd_refuse_alliance_lot_held() RETURNS trigger AS $$
DECLARE
    refused record;
BEGIN
    SELECT m.lot, m.from_location_id, m.quantity, balance.quantity AS on_hand, held.reserved INTO refused
      FROM inserted_movements m
      JOIN inventory_lotbalance balance
        ON balance.product_id = m.product_id AND balance.lot = m.lot AND balance.location_id = m.from_location_id
      CROSS JOIN LATERAL (
            SELECT COALESCE(SUM(quantity), 0) AS reserved FROM inventory_stockreservation
             WHERE lot_balance_id = balance.id AND is_active AND holder_type = 'ALLIANCE_TRANSFER_LINE') held
     WHERE m.unit_id IS NULL AND m.document_type <> 'ALLIANCE_TRANSFER' AND m.kind <> 'EXPIRE'
       AND held.reserved > 0 AND m.quantity > balance.quantity - held.reserved
     ORDER BY m.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ALLIANCE_LOT_RESERVED: % of lot % at location % is reserved for alliance transfers (% on hand, % asked)',
            refused.reserved, refused.lot, refused.from_location_id, refused.on_hand, refused.quantity
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER inventory_movement_alliance_lot_held
    AFTER INSERT ON inventory_movement REFERENCING NEW TABLE AS inserted_movements
    FOR EACH STATEMENT EXECUTE FUNCTION spd_refuse_alliance_lot_held();

CREATE OR REPLACE FUNCTION spd_refuse_closed_period_inserted() RETURNS trigger AS $$
DECLARE
    refused record;
BEGIN
    PERFORM 1 FROM inventory_hospital
      WHERE id IN (SELECT hospital_id FROM inserted_movements) ORDER BY id FOR KEY SHARE;
    SELECT m.occurred_at AS moment, closed.ends_at INTO refused
      FROM inserted_movements m
      JOIN (SELECT hospital_id, max(ends_at) AS ends_at FROM inventory_closedperiod
             WHERE hospital_id IN (SELECT hospital_id FROM inserted_movements) GROUP BY hospital_id) closed
        ON closed.hospital_id = m.hospital_id
     WHERE m.occurred_at < closed.ends_at
     ORDER BY m.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'PERIOD_CLOSED: % dated % is inside a closed month (closed through %)',
            TG_TABLE_NAME, refused.moment, refused.ends_at USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER inventory_movement_closed_period
    BEFORE UPDATE OF occurred_at ON inventory_movement
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_closed_period('occurred_at');
CREATE TRIGGER inventory_movement_closed_period_inserted
    AFTER INSERT ON inventory_movement REFERENCING NEW TABLE AS inserted_movements
    FOR EACH STATEMENT EXECUTE FUNCTION spd_refuse_closed_period_inserted();
"""

# Back to 0050: the per-row triggers and functions exactly as 0025, 0039 and 0042 created them.
PER_ROW_SQL = """
DROP TRIGGER inventory_movement_closed_period_inserted ON inventory_movement;
DROP FUNCTION spd_refuse_closed_period_inserted();
DROP TRIGGER inventory_movement_closed_period ON inventory_movement;
CREATE TRIGGER inventory_movement_closed_period BEFORE INSERT OR UPDATE OF occurred_at ON inventory_movement
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_closed_period('occurred_at');
DROP TRIGGER inventory_movement_alliance_held ON inventory_movement;
DROP TRIGGER inventory_movement_alliance_lot_held ON inventory_movement;
"""


def check_per_statement(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATEMENT_SQL, params=None)


def check_per_row(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(PER_ROW_SQL, params=None)
    for name in ("0039_alliance_transfer_holds", "0042_alliance_lot_holds"):
        schema_editor.execute(import_module(f"inventory.migrations.{name}").HOLD_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0050_ledger_and_units_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(check_per_statement, check_per_row),
    ]
