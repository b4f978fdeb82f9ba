"""How a refusal reaches a person: a readable message in their language, never a bare code.

Services raise `inventory.errors.Refused`, whose problems' `detail` is worded for the API in the
active language. The people's pages word some of them again (`worded`) for the person at the
scanner: what to do rather than which status the unit may not go to ("该耗材仍在智能柜中，请先刷卡开柜
取出再登记", not "不能从在智能柜变为已使用"), with no database id, no English inside a Chinese page
and no "请求无效：" prefix before a sentence that says it all.

A page shows problems in place with the `web/_errors.html` partial (context `problems`); a POST
that redirects flashes them (`flash_problems`) and the base template's messages area shows them
with the same look; a scan field gets them as JSON (`scan_response`), read by scan-field.js.
Form errors go through the same path, so every error looks and reads the same.
"""
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import HttpRequest, JsonResponse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from inventory.errors import Problem, Refused
from inventory.models import UnitStatus


@dataclass(frozen=True)
class ShownProblem:
    code: str
    detail: str
    item: str = ""

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, "item": self.item}


def problems_of(error: Refused | forms.BaseForm | Iterable[ShownProblem]) -> list[ShownProblem]:
    """The problems of a refusal or of an invalid form, as people read them."""
    if isinstance(error, Refused):
        return [ShownProblem(problem.code, worded(problem), _item(problem.item)) for problem in error.problems]
    if isinstance(error, forms.BaseForm):
        shown = []
        for name, errors in error.errors.items():
            field = error.fields.get(name)
            label = f"{field.label}: " if field is not None and field.label else ""
            shown += [ShownProblem("INVALID_REQUEST", f"{label}{message}") for message in errors]
        return shown
    return list(error)


def _item(item: object) -> str:
    """What a problem is about, when people can read it: a unit's primary key is no such thing (the
    pages name units by serial themselves)."""
    if item is None or isinstance(item, (int, dict)):
        return ""
    return str(item)


def worded(problem: Problem) -> str:
    """One problem in the words of the people's pages (its API `detail` when that already reads well)."""
    wording = _WORDING.get(problem.code)
    sentence = wording(problem.params) if wording is not None else None
    return sentence or problem.detail


def sentence(text: str) -> str:
    """A fragment such as "nothing was scanned" as a sentence of its own, in the active language."""
    text = str(text).strip()
    if not text:
        return text
    if (get_language() or "").startswith("zh"):
        return text if text[-1] in "。！？" else f"{text}。"
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else f"{text}."


# --- refusals worded again ------------------------------------------------------------------------

# The details services give INVALID_REQUEST in English (the API's words), for the pages to translate.
_SERVICE_DETAILS = {
    "name at least one unit or lot": gettext_lazy("Scan at least one unit or add a lot first."),
    "quantity must be at least 1": gettext_lazy("The quantity must be at least 1."),
    "a unit is named twice": gettext_lazy("A unit is in the list twice."),
    "a lot-tracked product, a lot and a quantity of at least 1": gettext_lazy(
        "Choose a lot-tracked product, its lot and a quantity of at least 1."),
    "scan at least one unit": gettext_lazy("Scan at least one unit first."),
    "the period ends before it starts": gettext_lazy("The period ends before it starts."),
    "the note is longer than 500 characters": gettext_lazy("The note is longer than 500 characters."),
}
_AT_MOST_DAYS = re.compile(r"^a run covers at most (\d+) days$")


def _invalid_request(params: dict) -> str:
    detail = str(params.get("detail", ""))
    if detail in _SERVICE_DETAILS:
        return str(_SERVICE_DETAILS[detail])
    if match := _AT_MOST_DAYS.match(detail):
        return _("A run covers at most %(days)s days: choose a shorter period.") % {"days": match.group(1)}
    return sentence(detail)


def _unreadable(params: dict) -> str:
    # The parser's own explanation (biip's) is English and technical; the person needs what to do.
    return _("This code cannot be read as a UDI: scan the UDI barcode on the package again, or type the code "
             "printed under it.")


def _not_found(params: dict) -> str | None:
    what = params.get("what")
    if isinstance(what, str) and what.startswith("unit "):
        serial = what.rsplit("/", 1)[-1]
        return _("No unit of this hospital carries this code (SN %(serial)s): check that you scanned the UDI on "
                 "the unit's own package.") % {"serial": serial}
    return None


def _expired_locked(params: dict) -> str:
    return _("SN %(unit)s expired on %(expiry)s and is locked: do not use or move it; return it to the supplier "
             "or scrap it.") % params


def _quarantined(params: dict) -> str:
    return _("SN %(unit)s is in quarantine at %(location)s: it may not be used on a patient.") % params


def _not_in_department(params: dict) -> str:
    return _("SN %(unit)s is at %(location)s, not in %(department)s: transfer it to the department first, or "
             "record the use for the department that holds it.") % {
        "unit": params.get("unit"), "location": params.get("location") or "—", "department": params.get("department")}


def _already_consumed(params: dict) -> str:
    return _("SN %(unit)s was already recorded as used on encounter %(encounter)s: it cannot be used twice. If that "
             "use was a mistake, refund it first.") % params


def _already_refunded(params: dict) -> str:
    return _("This use was already refunded.")


def _settled(params: dict) -> str:
    return _("This use is on a confirmed consignment settlement: it can no longer be refunded here. Ask the SPD "
             "office.")


def _idempotency(params: dict) -> str:
    return _("This form was already sent with other content: reload the page and do it again.")


S = UnitStatus
# (status the unit is in, status asked for) → what the person should do. `None` as the second
# element: whatever was asked for.
_TRANSITIONS: dict[tuple[str, str | None], Callable[[dict], str]] = {
    (S.IN_CABINET, S.CONSUMED): lambda p: _(
        "SN %(unit)s is still in the smart cabinet: open the cabinet with your badge and take it out, then record "
        "its use.") % p,
    (S.ACCEPTED, S.CONSUMED): lambda p: _(
        "SN %(unit)s was accepted but not put away yet: transfer it into the department's stock first, then record "
        "its use.") % p,
    (S.RECEIVED, None): lambda p: _(
        "SN %(unit)s has not been accepted yet: accept its delivery first (receiving).") % p,
    (S.TAKEN, None): lambda p: _(
        "SN %(unit)s was taken out of the smart cabinet and is not recorded yet: record its use on the patient, or "
        "put it back into the cabinet, before moving it.") % p,
    (S.CONSUMED, None): lambda p: _(
        "SN %(unit)s was used on a patient: if it was not, refund that use first (use on a patient › refund).") % p,
    (S.RETURNED_TO_SUPPLIER, None): lambda p: _(
        "SN %(unit)s was already returned to the supplier: it is no longer in stock.") % p,
    (S.SCRAPPED, None): lambda p: _("SN %(unit)s was already scrapped: it is no longer in stock.") % p,
    (S.REJECTED, None): lambda p: _(
        "SN %(unit)s was rejected at acceptance: it is not stock; return it to the supplier's delivery.") % p,
    (S.EXPIRED, None): lambda p: _(
        "SN %(unit)s expired and is locked: return it to the supplier or scrap it.") % p,
}


def _transition(params: dict) -> str | None:
    current, target = params.get("from_status"), params.get("to_status")
    wording = _TRANSITIONS.get((current, target)) or _TRANSITIONS.get((current, None))
    return wording(params) if wording is not None else None


_WORDING: dict[str, Callable[[dict], str | None]] = {
    "INVALID_REQUEST": _invalid_request,
    "UDI_UNPARSEABLE": _unreadable,
    "NOT_FOUND": _not_found,
    "ILLEGAL_TRANSITION": _transition,
    "UNIT_EXPIRED_LOCKED": _expired_locked,
    "UNIT_QUARANTINED": _quarantined,
    "UNIT_NOT_IN_DEPARTMENT": _not_in_department,
    "ALREADY_CONSUMED": _already_consumed,
    "ALREADY_REFUNDED": _already_refunded,
    "CONSUMPTION_SETTLED": _settled,
    "IDEMPOTENCY_CONFLICT": _idempotency,
}


# --- showing them ---------------------------------------------------------------------------------


def flash_problems(request: HttpRequest, error: Refused | forms.BaseForm | Iterable[ShownProblem]) -> None:
    """Keep the problems for the next page (after a redirect), in the messages area."""
    for problem in problems_of(error):
        messages.error(request, problem.detail, extra_tags=f"problem {problem.code}")


def wants_json(request: HttpRequest) -> bool:
    """A scan field (scan-field.js) asks for JSON; a plain form post or link gets a page."""
    return "application/json" in request.headers.get("Accept", "")


def scan_response(
    *, ok: bool, message: str = "", redirect: str | None = None, problems: Iterable[ShownProblem] = (),
    html: str = "", status: int | None = None,
) -> JsonResponse:
    """The answer to a scan-field submission: what scan-field.js shows, sounds and does next.

    `redirect` sends the browser there; `html` is inserted into the form's `data-scan-target`.
    """
    body = {"ok": ok, "message": message, "problems": [problem.as_dict() for problem in problems]}
    if redirect:
        body["redirect"] = redirect
    if html:
        body["html"] = html
    return JsonResponse(body, status=status or (200 if ok else 400))
