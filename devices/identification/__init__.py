"""Read what scanners and RFID readers deliver: UDIs of every issuer China accepts, and EPCs.

`parse_udi` looks at the first characters of a scan to tell its issuer and hands it to that
issuer's parser; every parser returns the same `ParsedUDI` and raises only `ParseError`:

    "+..." or "*+...*"     HIBCC (HIBC LIC)        devices.identification.hibc
    "MA."                  MA code (IDcode)        devices.identification.ma
    "AHM"                  Ali Health              devices.identification.ma (recognised, refused)
    anything else          GS1                     devices.identification.gs1

An AIM symbology identifier (]d2, ]C0, ]Q1, ...) in front is looked past. RFID EPCs
(SGTIN-96) are in devices.identification.epc.
"""

from __future__ import annotations

import re

from devices.identification.gs1 import GS, gtin_check_digit, is_valid_gtin, parse_gs1
from devices.identification.hibc import HIBC_CHARACTERS, parse_hibc
from devices.identification.ma import parse_ahm, parse_ma
from devices.identification.parsed import ParsedUDI, ParseError

__all__ = [
    "GS", "ParseError", "ParsedUDI", "gs_substitute_problem", "gtin_check_digit", "is_valid_gtin", "issuer_of",
    "parse_udi",
]

_SYMBOLOGY = re.compile(r"\][A-Za-z][0-9A-Za-z]")


# Characters that occur in UDI data, so a GS substitute made of one of them would split a field.
# GS1: the 82-character set of AI values (which also covers MA codes and Digital Link URIs) and
# the 39-character set (adds "#"); HIBC: Code 39 (adds space and "$"); "]" opens a symbology identifier.
_GS1_CHARACTERS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz#"
_DATA_CHARACTERS = frozenset(_GS1_CHARACTERS + HIBC_CHARACTERS + "]")


def gs_substitute_problem(substitute: object) -> str | None:
    """Why `substitute` cannot stand for GS in a scan, or None if it can.

    A substitute is replaced by GS before a code is parsed, so it must never occur in the data
    itself: a "-", "." or "/" in a lot, a "$" or space in a HIBC label, a digit or letter anywhere
    would be read as a field boundary and silently change the code. Whitespace and control
    characters are refused too (a keyboard wedge cannot type them, and CR/LF end a frame).
    Safe choices are e.g. "|", "~", "^", "@", "{", "}", "[", "\\", "`" or a non-ASCII mark.
    """
    if not isinstance(substitute, str) or not substitute:
        return "the GS substitute must be a non-empty string"
    if len(substitute) > 8:
        return "the GS substitute must be at most 8 characters"
    unsafe = sorted({char for char in substitute if char in _DATA_CHARACTERS or char.isspace() or not char.isprintable()})
    if unsafe:
        shown = ", ".join(repr(char) for char in unsafe)
        return (f"the GS substitute {substitute!r} contains {shown}, which occurs in GS1 or HIBC data; "
                f"choose a character such as | ~ ^ @ that never does")
    return None


def issuer_of(raw: str) -> str:
    """Tell which issuer's grammar a scan is in: "HIBCC", "MA", "AHM" or "GS1" (the default)."""
    text = raw.strip()
    if _SYMBOLOGY.match(text):
        text = text[3:].lstrip()
    if text.startswith(("+", "*+")):
        return "HIBCC"
    if text.startswith("MA."):
        return "MA"
    if text.startswith("AHM"):
        return "AHM"
    return "GS1"


def parse_udi(raw: str, *, separator: str | None = None) -> ParsedUDI:
    """Parse one scanned UDI, whoever issued it, into a `ParsedUDI`.

    `separator` is the text a scanner sends instead of the GS1 group separator (ASCII 29),
    e.g. "|" or "~" (see `gs_substitute_problem`); only GS1 element strings use one, so other issuers ignore it.
    Raises ParseError, and nothing else, for any text that is not a usable UDI.
    """
    if separator is not None and not separator:
        raise ValueError("separator must be a non-empty string or None")
    if not isinstance(raw, str):
        raise ParseError(f"UDI must be text, got {type(raw).__name__}")
    issuer = issuer_of(raw)
    if issuer == "HIBCC":
        return parse_hibc(raw)
    if issuer == "MA":
        return parse_ma(raw)
    if issuer == "AHM":
        parse_ahm(raw)
    return parse_gs1(raw, separator=separator)
