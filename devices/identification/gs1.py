"""Parse GS1 UDI barcodes as they arrive from the scanners at the receiving desk.

Scanners deliver the same DataMatrix or GS1-128 label in several shapes depending on
their configuration: with or without an AIM symbology identifier, with FNC1 sent as
ASCII 29 or as a configured substitute, or as the printed human-readable text. Every
shape must give the same `ParsedUDI`, so receiving can match a scan to stock no matter
which scanner was used. The GS1 grammar itself is left to biip; this module only
normalises the input, enforces what a UDI needs, and refuses what biip merely flags.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence

import biip
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.symbology import SymbologyIdentifier

from devices.identification.parsed import ParsedUDI, ParseError, show

__all__ = ["GS", "gtin_check_digit", "is_valid_gtin", "parse_gs1"]

GS = "\x1d"
"""ASCII group separator, the usual transmission of FNC1 between variable-length fields."""

_GTIN_LENGTHS = frozenset({8, 12, 13, 14})
_ASCII_DIGITS = re.compile(r"[0-9]+")
_HRI = re.compile(r"(?:\(\d+\)[^(]+)+")
_NAMED_AIS = frozenset({"01", "10", "11", "17", "21"})


def gtin_check_digit(body: str) -> str:
    """Return the GS1 mod-10 check digit for `body` (a GTIN without its last digit).

    Works for any length because GS1 weights digits from the right (3, 1, 3, ...), which is
    also what lets demo data generators build valid GTIN-8/12/13/14 and SSCCs alike.
    """
    if not isinstance(body, str) or not _ASCII_DIGITS.fullmatch(body):
        raise ValueError(f"GTIN body must be a non-empty string of digits 0-9, got {body!r}")
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return str(-total % 10)


def is_valid_gtin(code: str) -> bool:
    """Tell whether `code` is a GTIN-8/12/13/14 with a correct check digit."""
    return (
        isinstance(code, str)
        and len(code) in _GTIN_LENGTHS
        and _ASCII_DIGITS.fullmatch(code) is not None
        and gtin_check_digit(code[:-1]) == code[-1]
    )


def parse_gs1(raw: str, *, separator: str | None = None, fast: bool = True) -> ParsedUDI:
    """Parse one scanned GS1 UDI in any of the forms scanners produce.

    Accepted: element strings with GS (ASCII 29) after variable-length fields, optionally
    prefixed with a symbology identifier (]d2, ]C1, ]Q3, ]e0, ...); the human-readable
    form "(01)...(17)..."; and GS1 Digital Link URIs. `separator` is the text a scanner
    has been configured to send instead of GS (e.g. "|", "^" or "<GS>").

    Raises ParseError, and nothing else, for any input that is not a usable GS1 UDI,
    including a GTIN with a wrong check digit, which biip only flags.

    The common layout — AIs 01, 11, 17, 10 and 21 only, every value well-formed — is read by a
    fast path (`_fast_elements`) that gives exactly what biip gives and leaves anything else to
    biip; `fast=False` uses biip alone (the differential test and the benchmark compare the two).
    """
    if separator is not None and not separator:
        raise ValueError("separator must be a non-empty string or None")
    if not isinstance(raw, str):
        raise ParseError(f"UDI must be text, got {type(raw).__name__}", reason="UDI_NOT_TEXT")
    text = raw if separator is None else raw.replace(separator, GS)
    # str.strip() also removes GS (Python treats \x1c-\x1f as whitespace): a leading FNC1
    # or a trailing separator before CR/LF carries no data.
    text = text.strip()
    if not text:
        raise ParseError("UDI is empty", reason="UDI_EMPTY")
    if not text.isascii():
        bad = next(char for char in text if not char.isascii())
        raise ParseError(
            f"UDI contains the non-ASCII character {bad!r}; GS1 element strings are ASCII",
            reason="UDI_NOT_ASCII", char=repr(bad),
        )

    if fast and (found := _fast_elements(text)) is not None:
        return _to_udi(found, raw=raw, normalized="".join(f"({ai}){value}" for ai, value, _ in found))
    elements, normalized = _parse_gs1(text)
    return _to_udi([(element.ai.ai, element.value, element.date) for element in elements], raw=raw,
                   normalized=normalized)


# --- the fast path -------------------------------------------------------------------------------

# GS1 symbology identifiers whose data biip reads as a GS1 element string: DataMatrix, GS1-128,
# QR code and DataBar. Any other prefix goes to biip.
_FAST_PREFIXES = ("]d2", "]C1", "]Q3", "]e0")
_FIXED = {"01": 14, "11": 6, "17": 6}
_DATED = frozenset({"11", "17"})
_VARIABLE = frozenset({"10", "21"})  # X..20 in the 82-character set; GS ends them
# biip's pattern for (10) and (21) values, whole: the GS1 AI encodable character set 82.
_VARIABLE_VALUE = re.compile(r"[!%-?A-Z_a-z\x22]{1,20}")
_DIGITS = re.compile(r"[0-9]+")


def _fast_elements(text: str) -> list[tuple[str, str, dt.date | None]] | None:
    """(AI, value, date) of a normalised scan made of AIs 01, 11, 17, 10 and 21 only, as biip reads
    them; None — biip decides — for anything else: another AI or prefix, the human-readable or
    Digital Link form, a value biip's pattern would not take whole, a date it would refuse."""
    body = text
    if body.startswith("]"):
        if not body.startswith(_FAST_PREFIXES):
            return None
        body = body[3:]
    if is_valid_gtin(body):  # a bare GTIN, which parse_gs1 refuses as such
        return None
    found: list[tuple[str, str, dt.date | None]] = []
    position, end = 0, len(body)
    while position < end:
        ai = body[position:position + 2]
        position += 2
        if (length := _FIXED.get(ai)) is not None:
            value = body[position:position + length]
            if len(value) != length or not _DIGITS.fullmatch(value):
                return None
            position += length
            date = None
            if ai in _DATED and (date := _gs1_date(value)) is None:
                return None
        elif ai in _VARIABLE:
            stop = body.find(GS, position)
            stop = end if stop < 0 else stop
            value = body[position:stop]
            if not _VARIABLE_VALUE.fullmatch(value):
                return None
            position, date = stop, None
        else:
            return None
        found.append((ai, value, date))
        while position < end and body[position] == GS:  # biip skips separators, even after fixed lengths
            position += 1
    return found or None


def _gs1_date(value: str) -> dt.date | None:
    """YYMMDD as biip reads it (GS1 General Specifications 7.12: the year within 49 years past and
    50 to come; day 00 is the month's last), None when it is not a date."""
    year, month, day = int(value[:2]), int(value[2:4]), int(value[4:])
    current = dt.datetime.now(tz=dt.UTC).year
    century = current - current % 100
    if 51 <= year - (current - century) <= 99:
        century -= 100
    elif -99 <= year - (current - century) <= -50:
        century += 100
    year += century
    if not 1 <= month <= 12 or day > 31:
        return None
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _parse_gs1(text: str) -> tuple[Sequence[GS1ElementString], str]:
    body = text
    if text.startswith("]"):
        try:
            body = text[len(SymbologyIdentifier.extract(text)) :]
        except Exception as exc:  # biip raises IndexError/ValueError here for short prefixes
            raise ParseError(
                f"Unrecognised symbology identifier at the start of {show(text)}", reason="GS1_SYMBOLOGY_UNKNOWN"
            ) from exc

    if body.lstrip(GS).startswith("("):
        return _parse_hri(body)
    if is_valid_gtin(body):
        # Too short to hold (01) plus 14 digits; biip would misread e.g. 400... as AI (400).
        raise ParseError(
            f"{show(body)} is a bare GTIN from a linear EAN/UPC barcode, not a GS1 UDI element string; "
            "scan the UDI DataMatrix or GS1-128 label instead",
            reason="GS1_BARE_GTIN", code=body,
        )

    try:
        # A Digital Link URI in a plain (]Q1) QR code is only recognised without its prefix.
        result = biip.parse(body if body.startswith("http") else text)
    except Exception as exc:  # biip's contract is ParseError, but it leaks others on odd input
        raise ParseError(f"Not a GS1 element string: {show(text)} ({exc})", **_biip_reason(str(exc))) from exc

    container = result.gs1_message or result.gs1_digital_link_uri
    if container is None or not container.element_strings:
        reason = result.gs1_message_error or result.gs1_digital_link_uri_error or "no element strings"
        raise ParseError(f"Not a GS1 element string: {show(text)} ({reason})", **_biip_reason(reason))
    elements = container.element_strings
    return elements, "".join(element.as_hri() for element in elements)


_BIIP_AI_VALUE = re.compile(r"with GS1 AI \((\d{2,4})\) pattern")
_BIIP_DATE = re.compile(r"date", re.IGNORECASE)


def _biip_reason(message: str) -> dict:
    """biip's English error as one of our stable reasons (its wording may change between releases)."""
    if match := _BIIP_AI_VALUE.search(message):
        return {"reason": "GS1_AI_VALUE_INVALID", "ai": match.group(1)}
    if "Application Identifier" in message:
        return {"reason": "GS1_AI_UNKNOWN"}
    if _BIIP_DATE.search(message):
        return {"reason": "GS1_DATE_INVALID"}
    return {"reason": "GS1_MALFORMED"}


def _parse_hri(body: str) -> tuple[Sequence[GS1ElementString], str]:
    # biip's parse_hri silently drops anything its pattern does not match, such as a
    # trailing "(10)" with no data, so the whole text is checked first.
    hri = "".join(body.split())
    if not _HRI.fullmatch(hri):
        raise ParseError(
            f"Malformed human-readable GS1 string {show(body)}: expected '(AI)data(AI)data...'",
            reason="GS1_HRI_MALFORMED",
        )
    try:
        message = GS1Message.parse_hri(hri)
    except Exception as exc:
        raise ParseError(f"Invalid human-readable GS1 string {show(body)}: {exc}", **_biip_reason(str(exc))) from exc
    return message.element_strings, message.as_hri()


def _to_udi(elements: Sequence[tuple[str, str, dt.date | None]], *, raw: str, normalized: str) -> ParsedUDI:
    """The UDI of the (AI, value, date) elements read by either path: the same checks for both."""
    named: dict[str, tuple[str, str, dt.date | None]] = {}
    others: list[tuple[str, str]] = []
    for element in elements:
        ai, element_value = element[0], element[1]
        if ai not in _NAMED_AIS:
            others.append((ai, element_value))
            continue
        previous = named.setdefault(ai, element)
        if previous[1] != element_value:
            values = f"{previous[1]!r} and {element_value!r}"
            raise ParseError(f"AI ({ai}) appears twice with different values: {values}", reason="GS1_AI_REPEATED", ai=ai)

    gtin = named.get("01")
    if gtin is None:
        raise ParseError(
            f"No GTIN (AI 01) in {show(normalized)}; a GS1 UDI needs a device identifier", reason="GS1_GTIN_MISSING"
        )
    di = gtin[1]
    if not is_valid_gtin(di):
        expected = gtin_check_digit(di[:-1])
        raise ParseError(
            f"GTIN check digit is wrong in (01){di}: expected {expected}, got {di[-1]}",
            reason="GS1_CHECK_DIGIT", gtin=di, expected=expected,
        )

    def value(ai: str) -> str:
        element = named.get(ai)
        return element[1] if element is not None else ""

    def date(ai: str) -> dt.date | None:
        element = named.get(ai)
        return element[2] if element is not None else None

    return ParsedUDI(
        issuer="GS1",
        di=di,
        lot=value("10"),
        serial=value("21"),
        expiry=date("17"),
        production_date=date("11"),
        raw=raw,
        normalized=normalized,
        other_ais=tuple(others),
    )
