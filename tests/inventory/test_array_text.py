"""Arrays bound as their text (`int_array`, `text_array`) are the arrays psycopg would bind."""
import pytest
from django.db import connection

from inventory.lookups import int_array, text_array

CASES = [
    [1, 2, 3], [1, None, 3], [2**40, 7],
    ["a", "b"], ["LOT-1", "LOT:2", "7:device-3-scans-ab:unit:4"], ["é日本", "ü"], ["it's", "x"], ["%s", "%(x)s"],
    ["a b", "c"], ["a,b", "c"], ["", "x"], ["null", "x"], ["NULL", "x"], ['q"x', "y"], ["a\\b", "c"],
    ["{x}", "y"], ["a\tb", "c"], ["a\u00a0b", "c"],
]


@pytest.mark.django_db
@pytest.mark.parametrize("values", CASES)
def test_the_same_array(values):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL arrays")
    integers = all(type(value) is int or value is None for value in values)
    as_text = int_array(values) if integers else text_array(values)
    cast = "bigint[]" if integers else "text[]"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}, %s::{cast} IS NOT DISTINCT FROM %s::{cast}", [values, as_text, values])
        stored, same = cursor.fetchone()
    assert same and stored == values


def test_which_are_sent_as_text():
    assert int_array([1, None, 3]) == "{1,NULL,3}"
    assert int_array([True, 1]) == [True, 1]  # a bool is no bigint: left to psycopg
    assert text_array(["a", "b:c"]) == "{a,b:c}"
    for needs_quotes in (["a b"], ["a,b"], [""], ["Null"], ['"'], ["\\"], ["{"], ["}"]):
        assert text_array(needs_quotes) == needs_quotes
