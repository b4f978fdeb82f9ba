"""The ledger keeps an alliance transfer's hold on lot quantity too.

0039's trigger (`spd_refuse_alliance_held`) refuses a movement of a unit reserved for an alliance
transfer and anything leaving an alliance in-transit location, but a lot movement carries no unit:
a raw write could take the quantity a transfer line reserved of a lot balance. This trigger, on the
same rows with the same exemptions (the transfer's own movements, document ALLIANCE_TRANSFER, and
expiry locks), lets a lot movement out of a location take only what is not reserved for alliance
transfers — the rule of `services/ledger.py` `held_lot_problem`, which refuses first, with a reason.
The ledger records a movement before it lowers the balance (`ledger.move_lot`): the balance read
here is the quantity before this movement.
"""
from django.db import migrations

HOLD_SQL = """
CREATE OR REPLACE FUNCTION spd_refuse_alliance_lot_held() RETURNS trigger AS $$
DECLARE
    on_hand integer;
    reserved integer;
BEGIN
    IF NEW.unit_id IS NOT NULL OR NEW.from_location_id IS NULL
            OR NEW.document_type = 'ALLIANCE_TRANSFER' OR NEW.kind = 'EXPIRE' THEN
        RETURN NEW;
    END IF;
    SELECT balance.quantity, COALESCE(SUM(held.quantity), 0) INTO on_hand, reserved
    FROM inventory_lotbalance balance
    LEFT JOIN inventory_stockreservation held
        ON held.lot_balance_id = balance.id AND held.is_active AND held.holder_type = 'ALLIANCE_TRANSFER_LINE'
    WHERE balance.product_id = NEW.product_id AND balance.lot = NEW.lot AND balance.location_id = NEW.from_location_id
    GROUP BY balance.id;
    IF reserved > 0 AND NEW.quantity > on_hand - reserved THEN
        RAISE EXCEPTION 'ALLIANCE_LOT_RESERVED: % of lot % at location % is reserved for alliance transfers (% on hand, % asked)',
            reserved, NEW.lot, NEW.from_location_id, on_hand, NEW.quantity
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER inventory_movement_alliance_lot_held BEFORE INSERT ON inventory_movement
    FOR EACH ROW EXECUTE FUNCTION spd_refuse_alliance_lot_held();
"""
UNHOLD_SQL = """
DROP TRIGGER IF EXISTS inventory_movement_alliance_lot_held ON inventory_movement;
DROP FUNCTION IF EXISTS spd_refuse_alliance_lot_held();
"""


def hold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HOLD_SQL, params=None)


def unhold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNHOLD_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0041_stock_flow_rows"),
    ]

    operations = [
        migrations.RunPython(hold, unhold),
    ]
