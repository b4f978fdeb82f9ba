"""The ledger's and the units' indexes: every foreign key still leads an index (deletes of a product,
location or hospital, and the lookups by them, stay index scans), and no index repeats another's
leading column alone — each costs one more entry per movement written and per unit moved."""
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TABLES = ("inventory_movement", "inventory_unit")


def _indexes(table: str) -> dict[str, list[str]]:
    """Each index of `table` by name, with its key columns in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT index.relname, array_agg(attribute.attname ORDER BY key.position)
            FROM pg_index
            JOIN pg_class AS index ON index.oid = pg_index.indexrelid
            CROSS JOIN LATERAL unnest(pg_index.indkey) WITH ORDINALITY AS key(attnum, position)
            JOIN pg_attribute AS attribute ON attribute.attrelid = pg_index.indrelid AND attribute.attnum = key.attnum
            WHERE pg_index.indrelid = %s::regclass
            GROUP BY index.relname
            """,
            [table],
        )
        return dict(cursor.fetchall())


def _foreign_key_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attribute.attname FROM pg_constraint
            JOIN pg_attribute AS attribute ON attribute.attrelid = pg_constraint.conrelid
                 AND attribute.attnum = pg_constraint.conkey[1]
            WHERE pg_constraint.conrelid = %s::regclass AND pg_constraint.contype = 'f'
            """,
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("table", TABLES)
def test_every_foreign_key_of_the_ledger_and_units_leads_an_index(table):
    leading = {columns[0] for columns in _indexes(table).values()}

    assert _foreign_key_columns(table) - leading == set()


@pytest.mark.parametrize("table", TABLES)
def test_no_single_column_index_repeats_the_lead_of_a_composite_one(table):
    indexes = _indexes(table)
    composite_leads = {columns[0] for columns in indexes.values() if len(columns) > 1}
    singles = {name: columns[0] for name, columns in indexes.items() if len(columns) == 1}

    assert {name for name, column in singles.items() if column in composite_leads} == set()


def test_the_unique_columns_keep_no_prefix_search_index():
    names = set(_indexes("inventory_movement")) | set(_indexes("inventory_unit"))

    assert {name for name in names if name.endswith("_like")} == set()
