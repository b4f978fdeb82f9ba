"""Serializer output with DRF's own fields, looked up once per serializer instead of once per value.

DRF's `Serializer.to_representation` asks every field of every row for its attribute through a
general path (mappings, callables, missing attributes, defaults) before formatting it. For the
API's hot answers — a page of 50 units for an integrator, a use on a patient with its charges — that
path was most of the Python spent serialising. `PlannedRepresentation` reads the plain cases (a
column of the model, a foreign key's id, a column of a related row: `product.name`) with one
`attrgetter` and formats them with the field's own `to_representation`; every other field, and any
value the plain read cannot reach (a missing related row, no related row at all), goes through DRF's
path, so the answer is the same document (tests/inventory/test_api_representation.py compares them).
The fields, and therefore the OpenAPI schema, are DRF's as before.
"""
from functools import cached_property
from operator import attrgetter
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject, PrimaryKeyRelatedField

# How the plain read of a field is formatted: by the field (a bound to_representation), or not at
# all (a foreign key's id, as a PrimaryKeyRelatedField without `pk_field` answers it).
_AS_IS = None


# A `ModelSerializer` mixin: the output of `to_representation`, read by a plan made once. (No
# docstring: drf-spectacular would describe every serializer that mixes it in with it.)
class PlannedRepresentation:

    def to_representation(self, instance: Any) -> dict:
        ret = {}
        for field, read, represent in self._representation_plan:
            if read is not None:
                try:
                    value = read(instance)
                except (AttributeError, KeyError, ObjectDoesNotExist):
                    pass  # DRF decides: None, the default, or no key at all
                else:
                    if value is None or represent is _AS_IS:
                        ret[field.field_name] = value
                    else:
                        ret[field.field_name] = represent(value)
                    continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            empty = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[field.field_name] = None if empty is None else field.to_representation(attribute)
        return ret

    @property
    def _representation_plan(self) -> list[tuple[serializers.Field, Any, Any]]:
        shared = type(self).__dict__.get("_shared_plan")
        if shared is None:
            shared = _shared_plan(type(self))
            type(self)._shared_plan = shared  # two threads may both make it: the same plan
        return shared or self._own_plan

    @cached_property
    def _own_plan(self) -> list[tuple[serializers.Field, Any, Any]]:
        model = self.Meta.model
        return [(field, *_plain_read(model, field)) for field in self._readable_fields]


def _shared_plan(serializer_class: type) -> list | bool:
    """The plan of every instance of `serializer_class`, made on fields built once — when none of
    them depends on the serializer's instance, context or request (the listed field classes format
    a value by itself alone), so building its fields for every answer (DRF asks each model field for
    its label and help text, in the request's language) is work thrown away. False otherwise: each
    serializer makes its own plan on its own fields."""
    if serializer_class.get_fields is not serializers.ModelSerializer.get_fields:
        return False
    prototype = serializer_class()
    fields = list(prototype._readable_fields)
    if not all(_context_free(field) for field in fields):
        return False
    model = serializer_class.Meta.model
    return [(field, *_plain_read(model, field)) for field in fields]


_CONTEXT_FREE = (
    serializers.CharField, serializers.IntegerField, serializers.BooleanField, serializers.DecimalField,
    serializers.FloatField, serializers.DateField, serializers.DateTimeField, serializers.ChoiceField,
    serializers.ReadOnlyField, serializers.UUIDField, serializers.JSONField,
)


def _context_free(field: serializers.Field) -> bool:
    if isinstance(field, serializers.ListSerializer):
        return isinstance(field.child, PlannedRepresentation) and _shared_plan(type(field.child)) is not False
    if isinstance(field, serializers.ManyRelatedField):
        return type(field.child_relation) is PrimaryKeyRelatedField and field.child_relation.pk_field is None
    if isinstance(field, PrimaryKeyRelatedField):
        return type(field) is PrimaryKeyRelatedField and field.pk_field is None
    return isinstance(field, _CONTEXT_FREE) and not isinstance(field, serializers.SerializerMethodField)


def _plain_read(model: type[models.Model], field: serializers.Field) -> tuple[Any, Any]:
    """(read, represent) for a field whose value is a column reachable by forward relations, else
    (None, None): DRF's path."""
    attrs = field.source_attrs
    if not attrs or isinstance(field, serializers.BaseSerializer) or not _plain_field_class(field):
        return None, None
    path = []
    for position, name in enumerate(attrs):
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None, None
        last = position == len(attrs) - 1
        if not last:
            # A foreign key, or a one-to-one either way (a missing reverse row raises, and DRF answers).
            if not (model_field.many_to_one and model_field.concrete or model_field.one_to_one):
                return None, None
            path.append(name)
            model = model_field.related_model
            continue
        if not model_field.concrete or model_field.many_to_many:
            return None, None
        if model_field.is_relation:
            if not isinstance(field, PrimaryKeyRelatedField) or field.pk_field is not None:
                return None, None
            if model_field.target_field.attname != model_field.related_model._meta.pk.attname:
                return None, None  # a key to another column than the pk: DRF's path reads the row
            path.append(model_field.attname)
            return attrgetter(".".join(path)), _AS_IS
        if isinstance(field, PrimaryKeyRelatedField):
            return None, None
        path.append(model_field.attname)
        return attrgetter(".".join(path)), field.to_representation
    return None, None


def _plain_field_class(field: serializers.Field) -> bool:
    # A method field reads no attribute; a many-related field reads a manager.
    return not isinstance(field, serializers.SerializerMethodField | serializers.ManyRelatedField | serializers.HiddenField)
