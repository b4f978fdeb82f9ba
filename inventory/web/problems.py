"""How a refusal reaches a person: a readable message in their language, never a bare code.

Services raise `inventory.errors.Refused`, whose problems' `detail` is already worded in the active
language. A page shows them in place with the `web/_errors.html` partial (context `problems`); a
POST that redirects flashes them (`flash_problems`) and the base template's messages area shows
them with the same look; a scan field gets them as JSON (`scan_response`), read by scan-field.js.
Form errors go through the same path, so every error looks and reads the same.
"""
from collections.abc import Iterable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import HttpRequest, JsonResponse

from inventory.errors import Refused


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
        return [
            ShownProblem(problem.code, problem.detail, "" if problem.item is None else str(problem.item))
            for problem in error.problems
        ]
    if isinstance(error, forms.BaseForm):
        shown = []
        for name, errors in error.errors.items():
            field = error.fields.get(name)
            label = f"{field.label}: " if field is not None and field.label else ""
            shown += [ShownProblem("INVALID_REQUEST", f"{label}{message}") for message in errors]
        return shown
    return list(error)


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
