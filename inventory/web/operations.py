"""What the operation pages share (receiving, cabinets, use at the bedside, moves): the hospital an
operation is done for, scanned codes as the services read them, a fresh idempotency key per form,
and the JSON answer to a scan with the table row it adds (read by operations.js).

A double submit of a form posts its idempotency key twice: the service replays the first outcome,
so nothing is done twice. A page that submitted successfully shows a new form with a new key.

An irreversible operation (scrap, return, transfer, refund, a re-run) is first `rehearse`d: the
service does it inside a transaction that is then rolled back, so the review page knows the service
would accept it — the same checks, decided once — and nothing has changed.
"""
import json
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from inventory.errors import Problem, Refusal, Refused
from inventory.models import Hospital, Role
from inventory.web.forms import GS, GS_MARK
from inventory.web.problems import ShownProblem, problems_of, scan_response
from inventory.web.views.station import gs_substitute_of

# Use on a patient: nurses (for their departments), SPD operators and administrators.
BEDSIDE = frozenset({Role.ADMIN, Role.SPD_OPERATOR, Role.NURSE})
KEY_LENGTH = 128


def hospital_for(request: HttpRequest) -> Hospital:
    """The hospital an operation is done for: the person's own (an alliance administrator, bound to
    none, cannot move stock)."""
    if request.user.hospital_id is None:
        raise Refused(Refusal.HOSPITAL_REQUIRED)
    return request.user.hospital


def scanned_code(request: HttpRequest, raw: str) -> str:
    """A scanned code as the services read it: a shown GS mark, and this workstation's GS
    substitute, become a real GS (scan-field.js does the same before sending). Only line ends are
    trimmed: a space at either end is data (a HIBC check character may be a space)."""
    code = (raw or "").replace(GS_MARK, GS)
    substitute = gs_substitute_of(request)
    if substitute:
        code = code.replace(substitute, GS)
    return code.strip("\r\n")


def new_form_key(operation: str) -> str:
    """A fresh idempotency key for one form, e.g. `web-transfer-3f2a…`."""
    return f"web-{operation}-{uuid.uuid4().hex}"


def posted_key(request: HttpRequest, operation: str) -> str:
    """The idempotency key the form was rendered with; a form without one is refused."""
    key = request.POST.get("idempotency_key", "").strip()
    if not key.startswith(f"web-{operation}-") or len(key) > KEY_LENGTH:
        raise Refused(Refusal.INVALID_REQUEST, detail=_("the form is out of date: reload the page and try again"))
    return key


T = TypeVar("T")


class _Rehearsal(Exception):
    """Raised inside a rehearsal's transaction to roll back what the service did."""

    result: object = None


def rehearse(operation: Callable[[], T]) -> T:
    """Run `operation` (a service call) and roll back everything it wrote; its refusal is raised as is.

    Returns what `operation` returned: it describes what would be done, and is not in the database
    (read what the page needs from it inside `operation`). Rows it locked stay locked until the
    rollback, as for the real call; queued side effects (`transaction.on_commit`) are dropped."""
    rehearsal = _Rehearsal()
    try:
        with transaction.atomic():
            rehearsal.result = operation()
            raise rehearsal
    except _Rehearsal:
        return rehearsal.result


def shown(problems: Iterable[Problem]) -> list[ShownProblem]:
    """Service problems as people read them, in the active language."""
    problems = list(problems)
    return problems_of(Refused(problems)) if problems else []


def scan_answer(
    *, ok: bool, message: str = "", problems: Iterable[ShownProblem] = (), status: int | None = None, **extra: object
) -> JsonResponse:
    """`problems.scan_response` plus what the operation pages add: `row` (HTML of the table row the
    scan adds or replaces), `line_no`, `checked`, `next_key` (see static/web/operations.js)."""
    response = scan_response(ok=ok, message=message, problems=problems, status=status)
    if not extra:
        return response
    body = json.loads(response.content)
    body.update(extra)
    return JsonResponse(body, status=response.status_code)


def refused_answer(refused: Refused, *, status: int | None = None) -> JsonResponse:
    return scan_answer(ok=False, problems=problems_of(refused), status=status or refused.status)
