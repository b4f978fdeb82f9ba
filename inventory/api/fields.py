"""Serializer pieces shared by the API modules."""
import datetime

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request

from inventory.date_window import window_problem
from inventory.errors import Refusal, Refused
from inventory.models import Hospital
from inventory.selectors.scope import visible_to

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
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        request = self.context.get("request")
        if self.hospital_field is None or request is None:
            return queryset
        return visible_to(request.user, queryset, self.hospital_field)


class IdempotentInputSerializer(serializers.Serializer):
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
