"""Every API error is `{"code", "detail", "problems"}`, its code one of `inventory.errors.Refusal`.

- `exception_handler` (DRF): domain refusals, DRF's own errors (authentication, permission, parse,
  throttling, validation) and Django's 404/permission/validation errors raised inside a view.
- `bad_request`, `permission_denied`, `page_not_found`, `server_error` (Django's handler400/403/
  404/500, set in spd/urls.py): what happens outside a view — an unknown URL, a body over the size
  limit, a crash — answers JSON under /api/ and the people's page elsewhere.
- `BodyLimitMiddleware`: a body over the size limit or a chunked body without a length is refused
  under /api/ before anything parses it (413 / 411).
- `document_errors` (drf-spectacular post-processing hook): the schema documents the error body for
  every 4xx an operation can answer, so the fuzz test (tests/test_fuzz_api.py) checks its shape.
"""
import logging
import math
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.errors import Problem, Refusal, Refused

logger = logging.getLogger(__name__)


def error_body(refusal: Refusal, detail: str | None = None, problems: list[dict] | None = None, **params: object) -> dict:
    """The error body of one refusal; `detail` overrides its message (a validation summary)."""
    problem = Problem(refusal, params)
    return {
        "code": problem.code,
        "detail": detail if detail is not None else problem.detail,
        "problems": problems if problems is not None else [problem.as_dict()],
    }


def error_response(refusal: Refusal, status_code: int | None = None, **params: object) -> JsonResponse:
    return JsonResponse(
        error_body(refusal, **params), status=status_code or refusal.status, json_dumps_params={"ensure_ascii": False}
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Refused):
        return Response(
            {"code": exc.code, "detail": exc.detail, "problems": [p.as_dict() for p in exc.problems]},
            status=exc.status,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body(Refusal.PAYLOAD_TOO_LARGE, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError()
    elif isinstance(exc, DataError):
        # A safety net, as OverflowError below: the database refused a value the API let through
        # (a timestamp offset past ±15:59, a number past its column); the request was wrong.
        logger.warning("DataError answered as VALUE_OUT_OF_RANGE", exc_info=exc)
        return Response(error_body(Refusal.VALUE_OUT_OF_RANGE), status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, OverflowError):
        # A safety net: a date at the calendar's edge (year 1, 9999) or a number past what the code
        # computes with reached arithmetic that left the range. The input was wrong, not the server;
        # logged with its traceback so that the field can get a proper bound.
        logger.warning("OverflowError answered as VALUE_OUT_OF_RANGE", exc_info=exc)
        return Response(error_body(Refusal.VALUE_OUT_OF_RANGE), status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        problems = list(_flatten(exc.detail))
        response.data = error_body(
            Refusal.INVALID_REQUEST,
            detail="; ".join(f"{p['field']}: {p['detail']}" if p["field"] else p["detail"] for p in problems),
            problems=problems,
        )
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif type(exc).__module__.startswith("rest_framework"):
        refusal, params = _refusal_of(exc, context)
        response.data = error_body(refusal, **params)
    else:  # our own APIException (e.g. master data's IN_USE): its code is a refusal, its detail translated
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else ""
        refusal = Refusal.__members__.get(code.upper(), Refusal.SERVER_ERROR if exc.status_code >= 500 else Refusal.BAD_REQUEST)
        detail = str(exc.detail)
        response.data = error_body(refusal, detail=detail, problems=[{"code": refusal.name, "detail": detail}])
    return response


def _refusal_of(exc: exceptions.APIException, context: dict) -> tuple[Refusal, dict]:
    """DRF's exception as one of our refusals (DRF's own messages are not all translated)."""
    request = context.get("request")
    if isinstance(exc, exceptions.NotAuthenticated):
        return Refusal.NOT_AUTHENTICATED, {}
    if isinstance(exc, exceptions.AuthenticationFailed):
        return Refusal.AUTHENTICATION_FAILED, {}
    if isinstance(exc, exceptions.PermissionDenied):
        return Refusal.PERMISSION_DENIED, {}
    if isinstance(exc, exceptions.NotFound):
        return Refusal.NOT_FOUND, {"what": "resource"}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Refusal.METHOD_NOT_ALLOWED, {"method": getattr(request, "method", "")}
    if isinstance(exc, exceptions.NotAcceptable):
        return Refusal.NOT_ACCEPTABLE, {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Refusal.UNSUPPORTED_MEDIA_TYPE, {"media_type": _content_type(request)}
    if isinstance(exc, exceptions.Throttled):
        return Refusal.THROTTLED, {"wait": math.ceil(exc.wait or 1)}
    if isinstance(exc, exceptions.ParseError):
        return Refusal.PARSE_ERROR, {"media_type": _content_type(request) or "JSON"}
    return (Refusal.SERVER_ERROR if exc.status_code >= 500 else Refusal.BAD_REQUEST), {}


def _content_type(request: object) -> str:
    content_type = getattr(request, "content_type", "") or ""
    return content_type.split(";")[0].strip()[:100]


def _flatten(detail: object, field: str = "") -> Iterator[dict]:
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


# --- Outside a view: Django's error handlers -----------------------------------------------------

def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(Refusal.PAYLOAD_TOO_LARGE, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return error_response(Refusal.BAD_REQUEST)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return error_response(Refusal.PERMISSION_DENIED)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return error_response(Refusal.NOT_FOUND, what="resource")


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return error_response(Refusal.SERVER_ERROR)


class BodyLimitMiddleware:
    """Under /api/: a declared body over the limit is a 413 and a chunked body (no length) a 411,
    before any parser reads it. DRF's JSON parser reads the stream itself, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE alone would not stop a huge JSON body. Multipart uploads (the HIS
    settlement file) may be as large as SPD_HIS_SETTLEMENT_MAX_BYTES plus their form overhead."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_api(request):
            refusal = self.refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get("CONTENT_LENGTH"):
            return error_response(Refusal.LENGTH_REQUIRED)
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(Refusal.BAD_REQUEST)
        limit = max_body_bytes(meta.get("CONTENT_TYPE", ""))
        if length > limit:
            return error_response(Refusal.PAYLOAD_TOO_LARGE, limit=limit)
        return None


def max_body_bytes(content_type: str) -> int:
    if content_type.startswith("multipart/form-data"):
        return settings.SPD_HIS_SETTLEMENT_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- The schema documents the error body ---------------------------------------------------------

ERROR_STATUSES = {
    "400": "Invalid request", "401": "Not authenticated", "403": "Not allowed", "404": "Not found",
    "405": "Method not allowed", "406": "Not acceptable", "409": "Conflict with the current state",
    "411": "Length required", "413": "Body too large", "415": "Unsupported media type",
    "429": "Too many requests",
}


def document_errors(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular post-processing hook: every operation may answer the error body."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = {
        "type": "object",
        "properties": {
            "code": {"type": "string"}, "detail": {"type": "string"}, "field": {"type": "string"},
            "item": {},
        },
        "required": ["code", "detail"],
    }
    components["Error"] = {
        "type": "object",
        "description": "Every error: a stable code (inventory/errors.py), a message in the caller's language "
                       "(Accept-Language: zh-hans or en) and every problem found.",
        "properties": {
            "code": {"type": "string", "enum": sorted(Refusal.__members__)},
            "detail": {"type": "string"},
            "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
        },
        "required": ["code", "detail", "problems"],
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_STATUSES.items():
                responses.setdefault(code, {"description": description, **error})
    return result
