"""One exception handler: domain refusals and DRF errors become `{"code", "detail", "problems"}`."""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.errors import Refused


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Refused):
        return Response(
            {"code": exc.code, "detail": exc.detail, "problems": [p.as_dict() for p in exc.problems]},
            status=exc.status,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        problems = list(_flatten(exc.detail))
        response.data = {
            "code": "INVALID_REQUEST",
            "detail": "; ".join(f"{p['field']}: {p['detail']}" if p["field"] else p["detail"] for p in problems),
            "problems": problems,
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "ERROR"
        response.data = {"code": code.upper(), "detail": str(exc.detail)}
    return response


def _flatten(detail: object, field: str = ""):
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer reports item errors by index
                yield from _flatten(value, f"{field}[{key}]")
                continue
            name = key if key != "non_field_errors" else ""
            yield from _flatten(value, f"{field}.{name}" if field and name else field or name)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)) and not _is_leaf_list(value):
                yield from _flatten(value, f"{field}[{index}]")
            else:
                yield from _flatten(value, field)
    else:
        yield {"code": getattr(detail, "code", "invalid").upper(), "field": field, "detail": str(detail)}


def _is_leaf_list(value: object) -> bool:
    return isinstance(value, list) and all(not isinstance(item, (dict, list)) for item in value)
