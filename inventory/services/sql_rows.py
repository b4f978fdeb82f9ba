"""Rows written in bulk outside the ORM's `save()` and `bulk_create`: a model instance's row as
`Model.save()` would insert it, for one statement that writes several tables at once (a use's
writes in one round trip, inventory/services/consumption.py), and many rows by one binary COPY
(`write_rows`: a reconciliation's findings and 进销存 rows, a closed month's flows).

The values are the fields' own (their defaults and `pre_save` applied, prepared for the database as
the ORM prepares them); each is cast to its column's type so that it keeps it in a `UNION ALL` or
an `INSERT … SELECT`. Text is cast to `text`, not to `varchar(n)`: a value too long is refused by
the column, as it would be by the ORM's INSERT, never truncated by the cast.
"""
import functools
from collections.abc import Iterable, Sequence

from django.db import connection, models


def write_rows(model: type[models.Model], columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Write `rows` (values in the order of `columns`, of the PostgreSQL `types`) into `model`'s table:
    by one binary COPY on PostgreSQL — hundreds of thousands of rows without the ORM's per-row objects
    or bulk_create's arrays quoted in Python —, elsewhere (the embedded SQLite) by bulk_create. A
    refusal by the database is raised as Django's error (IntegrityError, …), as the ORM raises it."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=2000)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    # psycopg's own cursor, for its COPY: its errors are translated as Django's cursor translates them.
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


TEXT_FIELDS = frozenset({"CharField", "TextField", "SlugField", "EmailField", "URLField"})


def row_values(instance: models.Model, *, computed: dict[str, tuple[str, list]] | None = None) -> tuple[list[str], list[str], list]:
    """The quoted columns of `instance`'s row but its id, their SQL values and the parameters of those
    values, in order. `computed` gives the SQL (and parameters) of the columns known only in the
    statement, by attribute name (`consumption_id`: the id the statement's INSERT returned)."""
    computed = computed or {}
    columns, values, params = [], [], []
    for field, column, cast in _columns(type(instance), connection.vendor):
        columns.append(column)
        if field.attname in computed:
            sql, computed_params = computed[field.attname]
            values.append(sql)
            params.extend(computed_params)
            continue
        values.append(cast)
        params.append(field.get_db_prep_save(field.pre_save(instance, add=True), connection))
    return columns, values, params


@functools.cache
def _columns(model: type[models.Model], vendor: str) -> tuple[tuple[models.Field, str, str], ...]:
    """Each field of `model`'s rows but its id, its quoted column and the cast of its value."""
    return tuple((field, connection.ops.quote_name(field.column), f"CAST(%s AS {column_type(field)})")
                 for field in model._meta.local_concrete_fields if not field.primary_key)


def assignments(model: type[models.Model], values: dict[str, object]) -> tuple[str, list]:
    """The `SET` of an UPDATE of `model` giving its fields these values (by field name), as
    `save(update_fields=…)` writes them."""
    sets, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        sets.append(f"{connection.ops.quote_name(field.column)} = CAST(%s AS {column_type(field)})")
        params.append(field.get_db_prep_save(value, connection))
    return ", ".join(sets), params


def column_type(field: models.Field) -> str:
    return "text" if field.get_internal_type() in TEXT_FIELDS else field.db_type(connection)


def mark_saved(instance: models.Model, pk: int) -> None:
    """`instance` as the ORM leaves an instance it inserted with id `pk`."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
