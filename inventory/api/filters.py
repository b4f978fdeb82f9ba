"""Query-parameter filters of the API.

A filter naming an object by id (`?unit=`, `?location=`, `?device=`…) filters by the plain id:
django-filter's default for a foreign key is a choice among *every* row of the related table, which
answers 400 "not one of the available choices" for an id that does not exist but an empty page for
another hospital's — telling them apart. With plain ids both are the same empty page.

A date-time filter (`?occurred_after=`) is compared in UTC: Python accepts any offset below 24 hours,
PostgreSQL only up to ±15:59 ("time zone displacement out of range" was a server error).
"""
import datetime

from django.db import models
from django_filters import NumberFilter
from django_filters import rest_framework as filters

FILTER_DEFAULTS = {
    **filters.FilterSet.FILTER_DEFAULTS,
    models.ForeignKey: {"filter_class": NumberFilter},
    models.OneToOneField: {"filter_class": NumberFilter},
    models.ManyToManyField: {"filter_class": NumberFilter},
}


class FilterSet(filters.FilterSet):
    """The API's filter sets: related objects by plain id (see the module docstring)."""

    FILTER_DEFAULTS = FILTER_DEFAULTS

    def filter_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        for name, value in self.form.cleaned_data.items():
            if isinstance(value, datetime.datetime) and value.tzinfo is not None:
                self.form.cleaned_data[name] = in_utc(value)
        return super().filter_queryset(queryset)


def in_utc(moment: datetime.datetime) -> datetime.datetime:
    """`moment` in UTC; one that UTC cannot hold (year 1 at +08:00) becomes the first or last UTC moment."""
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        edge = datetime.datetime.min if moment.year == datetime.MINYEAR else datetime.datetime.max
        return edge.replace(tzinfo=datetime.UTC)


class DjangoFilterBackend(filters.DjangoFilterBackend):
    """`filterset_fields` of a view become a `FilterSet` of this module.

    A request whose query names no filter (an integrator's `?cursor=` page, one object by id) is
    answered without building the filter set and validating its form — each filter leaves the rows
    as they are when its parameter is absent. A parameter that starts with a filter's name (also
    `name_after`, `name_min`… of the range widgets) takes the full path."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset: models.QuerySet, view) -> models.QuerySet:
        names = _filter_names(view)
        if names is not None and not any(param.startswith(names) for param in request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _filter_names(view: object) -> tuple[str, ...] | None:
    """The names of a view's filters, without building its filter set (None: not known)."""
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is not None:
        return tuple(filterset_class.base_filters)
    fields = getattr(view, "filterset_fields", None)
    if isinstance(fields, list | tuple | dict):
        return tuple(fields)
    return None
