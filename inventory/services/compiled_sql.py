"""A queryset's SQL compiled once per shape and run again with new values (a use's lock and guard).

The ORM compiles a queryset anew on every request; a statement whose text depends only on a few
choices (its *shape*: which checks apply) and otherwise only on a few values can be compiled once,
with sentinel values standing in for those, and reused by putting the request's values where the
sentinels were. A shape whose sentinels do not come through as parameters unchanged (a backend that
prepares the value, or one written into the SQL) is not cached: it is compiled each time, as before.
"""
import datetime
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import MAX_GET_RESULTS, ModelIterable, get_related_populators
from django.db.transaction import TransactionManagementError

_sentinels = itertools.count(1)


def sentinel_int() -> int:
    return -7_300_000_000 - next(_sentinels)  # no id or constant of the app is a negative this large


def sentinel_text() -> str:
    return f"\x1fsentinel {next(_sentinels)}\x1f"


def sentinel_date() -> datetime.date:
    return datetime.date(1901, 1, 1) + datetime.timedelta(days=next(_sentinels))


def sentinel_moment() -> datetime.datetime:
    return datetime.datetime(1901, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=next(_sentinels))


@dataclass(frozen=True)
class CompiledSql:
    """SQL and its parameters, each either a constant of the shape or the name of a value given per use."""

    sql: str
    plan: tuple[tuple[str | None, object], ...]

    def params(self, values: dict[str, object]) -> tuple:
        return tuple(values[name] if name is not None else constant for name, constant in self.plan)


def compile_shape(build: Callable[[dict], QuerySet], sentinels: Callable[[], dict[str, object]]) -> CompiledSql | None:
    """The SQL of `build(values)` with each parameter that is one of the values named by its key,
    compiled twice with different sentinels; None when anything but a named parameter differs
    between the two (a value the backend changed, or wrote into the SQL text). A value the shape
    does not use appears in neither."""
    compiled = []
    for given in (sentinels(), sentinels()):
        try:
            sql, params = build(given).query.sql_with_params()
        except EmptyResultSet:  # a sentinel the backend would not compile (out of a column's range)
            return None
        by_value = {(type(value), value): name for name, value in given.items()}
        plan = tuple((name, None) if (name := by_value.get((type(param), param))) else (None, param) for param in params)
        compiled.append(CompiledSql(sql, plan))
    first, second = compiled
    return first if first == second else None


class ShapeCache:
    """Compiled statements by shape: `build(shape, values)` gives the queryset of a shape with given
    values; `sentinels(shape)` the sentinel of each value a use gives."""

    def __init__(self, build: Callable[..., QuerySet], sentinels: Callable[[object], dict[str, object]]):
        self.build, self.sentinels, self.compiled = build, sentinels, {}

    def sql_with_params(self, shape: object, values: dict[str, object]) -> tuple[str, tuple]:
        compiled = self.compiled_for(shape)
        if compiled is None:
            return self.build(shape, values).query.sql_with_params()
        return compiled.sql, compiled.params(values)

    def compiled_for(self, shape: object) -> "CompiledSql | None":
        key = (connection.vendor, shape)
        try:
            return self.compiled[key]
        except KeyError:
            compiled = self.compiled[key] = compile_shape(lambda values: self.build(shape, values),
                                                          lambda: self.sentinels(shape))
            return compiled


@dataclass(frozen=True)
class _Rows:
    """How the ORM turns a row of a compiled model query into its instance (`ModelIterable`)."""

    compiled: CompiledSql
    model: type[Model]
    start: int
    end: int
    init_list: list[str]
    related_populators: list
    annotation_col_map: dict[str, int]
    converters: list
    locks: bool

    def instance(self, row: tuple) -> Model:
        row = list(row)
        for position, (converters, expression) in self.converters:
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        instance = self.model.from_db(connection.alias, self.init_list, row[self.start:self.end])
        for populator in self.related_populators:
            populator.populate(row, instance)
        for name, position in self.annotation_col_map.items():
            setattr(instance, name, row[position])
        return instance


class InstanceCache(ShapeCache):
    """Reads of model instances (their `select_related` rows and annotations too) through a
    statement compiled once per shape; a subclass says how the queryset is read (`_as_read`)."""

    def rows_for(self, shape: object) -> "_Rows | None":
        key = (connection.vendor, "rows", shape)
        try:
            return self.compiled[key]
        except KeyError:
            self.compiled[key] = rows = self._compile_rows(shape)
            return rows

    def _instances(self, rows: "_Rows", values: dict[str, object], size: int) -> list[Model]:
        if rows.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(rows.compiled.sql, rows.compiled.params(values))
            return [rows.instance(row) for row in cursor.fetchmany(size)]

    @staticmethod
    def _as_read(queryset: QuerySet) -> QuerySet:
        raise NotImplementedError

    def _compile_rows(self, shape: object) -> "_Rows | None":
        compiled = compile_shape(lambda values: self._as_read(self.build(shape, values)), lambda: self.sentinels(shape))
        queryset = self._as_read(self.build(shape, self.sentinels(shape)))
        if (compiled is None or queryset._known_related_objects or queryset._prefetch_related_lookups
                or queryset._iterable_class is not ModelIterable or queryset.query.combinator):
            return None
        compiler = queryset.query.get_compiler(using=connection.alias)
        compiler.as_sql()  # fills select, klass_info and annotation_col_map
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        if compiler.has_composite_fields([column for column, _, _ in select]):
            return None
        return _Rows(
            compiled=compiled, model=klass_info["model"], start=start, end=end,
            init_list=[column.target.attname for column, _, _ in select[start:end]],
            related_populators=get_related_populators(klass_info, select, connection.alias),
            annotation_col_map=dict(compiler.annotation_col_map),
            converters=list(compiler.get_converters([column for column, _, _ in select]).items()),
            locks=queryset.query.select_for_update,
        )


class FirstInstanceCache(InstanceCache):
    """`queryset.first()`-like reads of one model instance through a statement compiled once per shape."""

    def first(self, shape: object, values: dict[str, object]) -> Model | None:
        rows = self.rows_for(shape)
        if rows is None:
            return self.build(shape, values).first()
        found = self._instances(rows, values, 1)
        return found[0] if found else None

    @staticmethod
    def _first_of(queryset: QuerySet) -> QuerySet:
        return (queryset if queryset.ordered else queryset.order_by("pk"))[:1]  # as first() reads it

    _as_read = _first_of


class GetInstanceCache(InstanceCache):
    """`queryset.get()`-like reads of one model instance through a statement compiled once per shape:
    None where `get()` raises DoesNotExist, MultipleObjectsReturned as it raises it."""

    def get(self, shape: object, values: dict[str, object]) -> Model | None:
        rows = self.rows_for(shape)
        if rows is None:
            queryset = self.build(shape, values)
            try:
                return queryset.get()
            except queryset.model.DoesNotExist:
                return None
        found = self._instances(rows, values, MAX_GET_RESULTS)
        if len(found) > 1:
            model = rows.model
            count = len(found) if len(found) < MAX_GET_RESULTS else f"more than {MAX_GET_RESULTS - 1}"
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name} -- it returned {count}!")
        return found[0] if found else None

    @staticmethod
    def _as_read(queryset: QuerySet) -> QuerySet:
        """The queryset as `get()` reads it: no ordering, at most MAX_GET_RESULTS rows."""
        if queryset.query.can_filter() and not queryset.query.distinct_fields:
            queryset = queryset.order_by()
        if not queryset.query.select_for_update or connection.features.supports_select_for_update_with_limit:
            queryset = queryset[:MAX_GET_RESULTS]
        return queryset
