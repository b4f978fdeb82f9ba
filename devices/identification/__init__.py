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
from devices.identification.hibc import parse_hibc
from devices.identification.ma import parse_ahm, parse_ma
from devices.identification.parsed import ParsedUDI, ParseError

__all__ = ["GS", "ParseError", "ParsedUDI", "gtin_check_digit", "is_valid_gtin", "issuer_of", "parse_udi"]

_SYMBOLOGY = re.compile(r"\][A-Za-z][0-9A-Za-z]")


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
    e.g. "|" or "<GS>"; only GS1 element strings use one, so other issuers ignore it.
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
