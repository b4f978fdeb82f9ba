"""Serializer pieces shared by the API modules."""
from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request

from inventory.errors import Refusal, Refused
from inventory.models import Hospital
from inventory.selectors.scope import visible_to


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


def idempotency_key(request: Request, data: dict) -> str:
    key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
    if not key:
        raise Refused(Refusal.INVALID_REQUEST, detail="idempotency_key (or the Idempotency-Key header) is required")
    return key


def caller_hospital(request: Request) -> Hospital:
    """The hospital an operation is done for: the caller's own."""
    if request.user.hospital is None:
        raise Refused(Refusal.INVALID_REQUEST, detail="this needs a user bound to a hospital")
    return request.user.hospital


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request body checked by an input serializer; invalid input becomes a 400 with every problem."""
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
