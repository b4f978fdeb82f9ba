"""The JSON parser of the API: DRF's, refusing what would otherwise fail later as a server error.

- Nesting deeper than Python's recursion limit (`[[[[…`) raises RecursionError, not ValueError, in
  the json module; it is a PARSE_ERROR here.
- Unpaired surrogates (`"\\ud800"`) are valid JSON escapes but not text: no database can store them.
- The NUL character cannot be stored by PostgreSQL in text or jsonb columns. DRF's CharField
  refuses it already; JSON fields (device config, event payloads, report parameters) do not.
"""
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from inventory.errors import Refusal, Refused


class JSONParser(parsers.JSONParser):
    refuse_nul = True

    def parse(self, stream, media_type=None, parser_context=None) -> object:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError() from None
        if (where := unstorable_text(data, refuse_nul=self.refuse_nul)) is not None:
            raise Refused(Refusal.TEXT_INVALID, where=where or "/")
        return data


def unstorable_text(data: object, *, refuse_nul: bool = True) -> str | None:
    """The JSON pointer of the first key or string holding an unpaired surrogate (or NUL), or None.

    Iterative, so a document nested as deep as the parser allowed cannot exhaust the stack."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _bad(value, refuse_nul):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                if _bad(key, refuse_nul):
                    return where
                stack.append((f"{where}/{key}"[:200], item))
        elif isinstance(value, list):
            stack.extend((f"{where}/{index}"[:200], item) for index, item in enumerate(value))
    return None


def _bad(text: str, refuse_nul: bool) -> bool:
    if refuse_nul and "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
