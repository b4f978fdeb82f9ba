"""Serializer pieces shared by the API modules."""
import copy
import datetime

from django.db import DEFAULT_DB_ALIAS, connection, models
from django.db.models import Model, QuerySet
from rest_framework import serializers
from rest_framework.request import Request

from inventory.date_window import window_problem
from inventory.errors import Refusal, Refused
from inventory.models import Hospital
from inventory.selectors.scope import of_hospital, own_hospital_only, visible_to
from inventory.services.compiled_sql import GetInstanceCache, sentinel_int

# The dates an API request may name (see BoundedDateField).
EARLIEST_DATE = datetime.date(1900, 1, 1)
LATEST_DATE = datetime.date(2999, 12, 31)


class RFC3339DateTimeField(serializers.DateTimeField):
    """DRF's date-time, always with an offset in whole minutes (RFC 3339, the schema's `date-time`).

    Shown in the local zone as usual, except where the zone database gives that moment an offset with
    seconds: before 1901 Asia/Shanghai keeps its local mean time, +08:05:43, which no client parses as
    RFC 3339 — such a moment is shown in UTC ("Z"), the same instant. Every model serializer's
    date-time field is this one (`InventoryConfig.ready`); declared ones name it."""

    def enforce_timezone(self, value: datetime.datetime) -> datetime.datetime:
        value = super().enforce_timezone(value)
        offset = value.utcoffset()
        if offset is not None and offset % datetime.timedelta(minutes=1):
            return value.astimezone(datetime.UTC)
        return value


def refused_input(refusal: Refusal, **params: object) -> serializers.ValidationError:
    """A validation error worded by `refusal` (in the caller's language), its problem coded by it."""
    return serializers.ValidationError(refusal.message(**params), code=refusal.name)


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key the caller may only point at objects of their own hospital."""

    def __init__(self, *, hospital_field: str | None = "hospital", **kwargs: object) -> None:
        self.hospital_field = hospital_field
        self._lookups: tuple[QuerySet, GetInstanceCache] | None = None
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        request = self.context.get("request")
        if self.hospital_field is None or request is None:
            return queryset
        return visible_to(request.user, queryset, self.hospital_field)

    def built_once(self) -> None:
        """Called on a field built once for its serializer class (FieldsBuiltOnce), before any copy
        of it is made: its queryset is then the same for every request, so the lookup of an id in
        the caller's hospital — `get_queryset().get(pk=…)` for a hospital's staff — is compiled once
        and run again with each request's hospital and id."""
        queryset, hospital_field = self.queryset, self.hospital_field
        self._lookups = (queryset, GetInstanceCache(
            lambda shape, values: of_hospital(queryset.all(), values["hospital_id"], hospital_field).filter(pk=values["pk"]),
            lambda shape: {"hospital_id": sentinel_int(), "pk": sentinel_int()},
        ))

    def to_internal_value(self, data: object) -> Model:
        lookups, request = self._lookups, self.context.get("request")
        if (lookups is None or request is None or self.hospital_field is None or self.pk_field is not None
                or self.queryset is not lookups[0] or type(self).get_queryset is not ScopedPrimaryKeyRelatedField.get_queryset
                or self.queryset.db != DEFAULT_DB_ALIAS):
            return super().to_internal_value(data)
        hospital_id, pk = own_hospital_only(request.user), _id_as_looked_up(self.queryset.model, data)
        if hospital_id is None or pk is None:  # other scopes, and ids the ORM refuses or finds nothing for
            return super().to_internal_value(data)
        found = lookups[1].get(None, {"hospital_id": hospital_id, "pk": pk})
        if found is None:
            self.fail("does_not_exist", pk_value=data)
        return found


def _id_as_looked_up(model: type[Model], data: object) -> int | None:
    """`data` as the ORM puts an integer primary key into `pk=data` (the field's `get_prep_value`);
    None for what it refuses (TypeError/ValueError: `incorrect_type`) or finds nothing for without
    asking the database (out of the column's range), and for booleans, which DRF refuses itself."""
    pk = model._meta.pk
    if isinstance(data, bool) or not isinstance(pk, models.IntegerField):
        return None
    try:
        value = pk.get_prep_value(data)
    except (TypeError, ValueError):
        return None
    low, high = connection.ops.integer_field_range(pk.get_internal_type())
    return value if (low is None or low <= value) and (high is None or value <= high) else None


# Fields that hold no other field and keep nothing of a request but what `bind` sets on them (a
# nested serializer, a list or a `many=True` field holds fields bound to itself: not these).
_LEAF_FIELDS = (
    serializers.BooleanField, serializers.CharField, serializers.IntegerField, serializers.FloatField,
    serializers.DecimalField, serializers.DateTimeField, serializers.DateField, serializers.TimeField,
    serializers.DurationField, serializers.ChoiceField, serializers.JSONField, serializers.RelatedField,
)


class FieldsBuiltOnce(serializers.Serializer):
    """An input serializer whose fields are built once per class instead of once per request.

    DRF builds a serializer's fields anew for every instance (a deep copy of the declared ones: each
    field's `__init__` run again, its queryset cloned). Here a class's fields are built that way
    once and kept unbound; each instance binds a shallow copy of each — its own attributes and its
    own lists, dicts and sets (validators, error messages, choices), sharing only what no request
    changes: the queryset (only ever cloned, `.all()`), validator and message objects. So nothing
    one request binds or sets on a field is seen by another, in this thread or any other. A class
    with any field not in `_LEAF_FIELDS`, or whose fields a parent class builds its own way
    (`get_fields` overridden), builds them DRF's way."""

    def get_fields(self) -> dict[str, serializers.Field]:
        built = type(self).__dict__.get("_fields_built_once")
        if built is None:
            built = copy.deepcopy(self._declared_fields)  # what Serializer.get_fields returns
            if (super().get_fields.__func__ is serializers.Serializer.get_fields
                    and all(isinstance(field, _LEAF_FIELDS) for field in built.values())):
                for field in built.values():
                    if hasattr(field, "built_once"):
                        field.built_once()
            else:
                built = False
            type(self)._fields_built_once = built  # by class, so a subclass builds its own
        if built is False:
            return super().get_fields()
        return {name: _unbound_copy(field) for name, field in built.items()}


def _unbound_copy(field: serializers.Field) -> serializers.Field:
    copied = object.__new__(type(field))
    copied.__dict__.update({name: copy.copy(value) if isinstance(value, (list, dict, set)) else value
                            for name, value in field.__dict__.items()})
    return copied


class IdempotentInputSerializer(FieldsBuiltOnce):
    """Stock operations carry a caller-chosen key: in the body or in the `Idempotency-Key` header."""

    idempotency_key = serializers.CharField(max_length=128, required=False)


class BoundedDateField(serializers.DateField):
    """A date within the years the system computes with: periods and deadlines add and subtract
    days, which at year 1 or 9999 leaves the calendar (OverflowError) instead of answering."""

    def to_internal_value(self, value: object) -> datetime.date:
        return within_calendar(super().to_internal_value(value))


class BoundedDateTimeField(RFC3339DateTimeField):
    """A moment given by a client (a paper record's `occurred_at`), inside the accepted window of
    dates (inventory.date_window): a year-1 or year-9999 moment is a typo, answered 400."""

    def to_internal_value(self, value: object) -> datetime.datetime:
        moment = super().to_internal_value(value)
        if problem := window_problem(moment):
            raise serializers.ValidationError(problem, code="date_out_of_range")
        return moment


def within_calendar(day: datetime.date) -> datetime.date:
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise serializers.ValidationError(within_calendar_message(day.isoformat()), code="date_out_of_range")
    return day


def within_calendar_message(text: str) -> str:
    """DATE_OUT_OF_RANGE in the caller's language, for a validation error of one field."""
    return Refusal.DATE_OUT_OF_RANGE.message(date=text, earliest=EARLIEST_DATE, latest=LATEST_DATE)


def idempotency_key(request: Request, data: dict) -> str:
    key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
    if not key:
        raise Refused(Refusal.IDEMPOTENCY_KEY_MISSING)
    return key


def caller_hospital(request: Request) -> Hospital:
    """The hospital an operation is done for: the caller's own."""
    if request.user.hospital is None:
        raise Refused(Refusal.HOSPITAL_REQUIRED)
    return request.user.hospital


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request body checked by an input serializer; invalid input becomes a 400 with every problem."""
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
