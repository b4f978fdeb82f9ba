"""Query-parameter filters of the API.

A filter naming an object by id (`?unit=`, `?location=`, `?device=`…) filters by the plain id:
django-filter's default for a foreign key is a choice among *every* row of the related table, which
answers 400 "not one of the available choices" for an id that does not exist but an empty page for
another hospital's — telling them apart. With plain ids both are the same empty page.
"""
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


class DjangoFilterBackend(filters.DjangoFilterBackend):
    """`filterset_fields` of a view become a `FilterSet` of this module."""

    filterset_base = FilterSet
