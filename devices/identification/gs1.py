"""Parse GS1 UDI barcodes as they arrive from the scanners at the receiving desk.

Scanners deliver the same DataMatrix or GS1-128 label in several shapes depending on
their configuration: with or without an AIM symbology identifier, with FNC1 sent as
ASCII 29 or as a configured substitute, or as the printed human-readable text. Every
shape must give the same `ParsedUDI`, so receiving can match a scan to stock no matter
which scanner was used. The GS1 grammar itself is left to biip; this module only
normalises the input, enforces what a UDI needs, and refuses what biip merely flags.
"""

from __future__ import annotations

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


def parse_gs1(raw: str, *, separator: str | None = None) -> ParsedUDI:
    """Parse one scanned GS1 UDI in any of the forms scanners produce.

    Accepted: element strings with GS (ASCII 29) after variable-length fields, optionally
    prefixed with a symbology identifier (]d2, ]C1, ]Q3, ]e0, ...); the human-readable
    form "(01)...(17)..."; and GS1 Digital Link URIs. `separator` is the text a scanner
    has been configured to send instead of GS (e.g. "|", "^" or "<GS>").

    Raises ParseError, and nothing else, for any input that is not a usable GS1 UDI,
    including a GTIN with a wrong check digit, which biip only flags.
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

    elements, normalized = _parse_gs1(text)
    return _to_udi(elements, raw=raw, normalized=normalized)


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


def _to_udi(elements: Sequence[GS1ElementString], *, raw: str, normalized: str) -> ParsedUDI:
    named: dict[str, GS1ElementString] = {}
    others: list[tuple[str, str]] = []
    for element in elements:
        ai = element.ai.ai
        if ai not in _NAMED_AIS:
            others.append((ai, element.value))
            continue
        previous = named.setdefault(ai, element)
        if previous.value != element.value:
            values = f"{previous.value!r} and {element.value!r}"
            raise ParseError(f"AI ({ai}) appears twice with different values: {values}", reason="GS1_AI_REPEATED", ai=ai)

    gtin = named.get("01")
    if gtin is None:
        raise ParseError(
            f"No GTIN (AI 01) in {show(normalized)}; a GS1 UDI needs a device identifier", reason="GS1_GTIN_MISSING"
        )
    di = gtin.value
    if not is_valid_gtin(di):
        expected = gtin_check_digit(di[:-1])
        raise ParseError(
            f"GTIN check digit is wrong in (01){di}: expected {expected}, got {di[-1]}",
            reason="GS1_CHECK_DIGIT", gtin=di, expected=expected,
        )

    def value(ai: str) -> str:
        element = named.get(ai)
        return element.value if element is not None else ""

    def date(ai: str) -> dt.date | None:
        element = named.get(ai)
        return element.date if element is not None else None

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
