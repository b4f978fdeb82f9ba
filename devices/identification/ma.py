"""Parse China's MA codes (IDcode, 中国 MA 码) and recognise Ali Health (AHM, 阿里健康) codes.

MA code, as the MA (IDcode) UDI coding manual for medical devices lays it out: fields joined by
".", the device identifier first, then production-identifier fields each introduced by a
letter:

    MA.156.M0.100204.13351764.S1576130942.M190101.L2019A01.E211231.C7
    |  |   |  |      |        |           |       |        |       '- .C check field
    |  |   |  |      |        |           |       |        '- .E 失效期 (expiry)
    |  |   |  |      |        |           |       '- .L 批号 (lot)
    |  |   |  |      |        |           '- .M 生产日期 (production date; .P before 2020-08)
    |  |   |  |      |        '- .S 序列号 (serial)
    |  |   |  |      '- product code: packaging digit, item code, optional check character
    |  |   |  '- registrant code (注册人代码, 6 characters)
    |  |   '- industry code (M0 = medical devices)
    |  '- country code (156 = China)
    '- issuing agency code MA
    also .V 有效期 (valid until) and .D 灭菌批号 (sterilisation lot)

Readings this module commits to:
- The DI is the first five fields verbatim, e.g. "MA.156.M0.100204.13351764", which is what
  registrants file with the national UDI database; a check character at the end of the
  product code stays part of it.
- Check characters (in the product code and the .C field) are issued by the agency with an
  algorithm that is not public: they are kept, never verified, never a reason to refuse.
- Dates are YYMMDD (years 20YY) or YYYYMMDD; both are accepted, as the manual allows.
- `expiry` is the last day of use, as GS1's (17) and receiving read it: .V (有效期至) when present,
  else .E as printed. Labels that carry both print .E one day after .V (失效期 is the first day
  the device is no longer valid); the one not used for `expiry` stays in `other_ais`.
- Field values are letters and digits, as the manual says, case kept ("Ste002" occurs). The
  manual sets no maximum; 32 characters for the product code and 64 for a field are sanity
  bounds far above real labels that keep a DI, lot or serial within the stock tables' columns.
- .D (sterilisation lot) and .C (check) go to `other_ais` as ("D", ...) and ("C", ...).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NoReturn

from devices.identification.parsed import ParsedUDI, ParseError, show

__all__ = ["parse_ahm", "parse_ma"]

_SYMBOLOGY = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_COUNTRY = re.compile(r"[0-9]{3}")
_INDUSTRY = re.compile(r"[0-9A-Z]{2}")
_REGISTRANT = re.compile(r"[0-9A-Z]{6}")
_PRODUCT = re.compile(r"[0-9A-Za-z]{1,32}")
_VALUE = re.compile(r"[0-9A-Za-z]{1,64}")
_DATE = re.compile(r"(?:[0-9]{2})?[0-9]{6}")
_FIELDS = {
    "L": "lot",
    "S": "serial",
    "M": "production date",
    "P": "production date (before 2020-08)",
    "E": "expiry (失效期)",
    "V": "valid-until date (有效期)",
    "D": "sterilisation lot (灭菌批号)",
    "C": "check field",
}
_DATE_FIELDS = frozenset("MPEV")


def parse_ma(raw: str) -> ParsedUDI:
    """Parse one scanned MA code (a QR or DataMatrix text starting "MA.").

    Raises ParseError, naming the field at fault, for anything that does not follow the MA
    structure: a missing DI part, an unknown field letter, a repeated field, a bad date.
    """
    text = _clean(raw)
    if not text.startswith("MA."):
        raise ParseError(f"An MA code starts with 'MA.': {show(text)}")
    for char in text:
        if not char.isascii() or not char.isprintable():
            raise ParseError(f"MA code contains the character {char!r}; MA codes are letters, digits and '.'")

    parts = text.split(".")
    if len(parts) < 5:
        raise ParseError(f"MA code {show(text)} is too short: expected MA.<country>.<industry>.<registrant>.<product>")
    _, country, industry, registrant, product = parts[:5]
    for name, value, pattern, expected in (
        ("country code", country, _COUNTRY, "3 digits, 156 for China"),
        ("industry code", industry, _INDUSTRY, "2 letters or digits, M0 for medical devices"),
        ("registrant code", registrant, _REGISTRANT, "6 digits or capital letters"),
        ("product code", product, _PRODUCT, "1-32 letters and digits"),
    ):
        if not pattern.fullmatch(value):
            raise ParseError(f"MA {name} {value!r} in {show(text)} must be {expected}")

    values: dict[str, str] = {}
    order: list[str] = []
    for part in parts[5:]:
        if not part:
            raise ParseError(f"MA code {show(text)} has an empty field (two dots in a row or a trailing dot)")
        flag, value = part[0], part[1:]
        if flag not in _FIELDS:
            known = ", ".join(f".{letter} {name}" for letter, name in _FIELDS.items())
            raise ParseError(f"Unknown MA field '.{part}' in {show(text)}; known fields: {known}")
        if flag in values:
            raise ParseError(f"MA field .{flag} ({_FIELDS[flag]}) appears twice in {show(text)}")
        if not _VALUE.fullmatch(value):
            raise ParseError(f"MA {_FIELDS[flag]} '.{flag}' must be followed by 1-64 letters or digits, got {value!r}")
        values[flag] = value
        order.append(flag)

    dates = {flag: _date(flag, values[flag]) for flag in _DATE_FIELDS & values.keys()}
    if "M" in dates and "P" in dates and dates["M"] != dates["P"]:
        raise ParseError(
            f"MA production date is given twice with different values: .M{values['M']} and .P{values['P']}"
        )
    expiry_flag = "V" if "V" in values else "E"
    others = tuple((flag, values[flag]) for flag in order if flag in "DC" or (flag in "EV" and flag != expiry_flag))
    return ParsedUDI(
        issuer="MA",
        di=".".join(parts[:5]),
        lot=values.get("L", ""),
        serial=values.get("S", ""),
        expiry=dates.get(expiry_flag),
        production_date=dates.get("M", dates.get("P")),
        raw=raw,
        normalized=text,
        other_ais=others,
    )


def parse_ahm(raw: str) -> NoReturn:
    """Recognise an Ali Health (阿里健康, issuer code AHM) UDI, and refuse it with the reason.

    AHM is one of the three UDI issuers China's NMPA accepts. What is published about its
    codes is the issuer code AHM and the names of their parts (DI = labeler code + product
    code; PI = batch BN, serial SN, production date MD, shelf-life date BD, expiry ED), not
    their layout: no lengths, separators or field order. Any split of such a code would be a
    guess, and a wrong DI or serial is worse than none, so the code is recognised by its
    prefix and refused with a message that tells the operator what to do instead.
    """
    text = _clean(raw)
    if not text.startswith("AHM"):
        raise ParseError(f"An Ali Health code starts with 'AHM': {show(text)}")
    raise ParseError(
        f"{show(text)} is an Ali Health (AHM) code; its field layout is not published, so its DI and "
        "production data cannot be read from the scan. Identify the unit by its catalogue entry or bound RFID tag."
    )


def _clean(raw: str) -> str:
    if not isinstance(raw, str):
        raise ParseError(f"UDI must be text, got {type(raw).__name__}")
    text = raw.strip()
    if text.startswith("]"):
        if not _SYMBOLOGY.match(text):
            raise ParseError(f"Unrecognised symbology identifier at the start of {show(text)}")
        text = text[3:].strip()
    return text


def _date(flag: str, value: str) -> dt.date:
    if not _DATE.fullmatch(value):
        raise ParseError(f"MA {_FIELDS[flag]} .{flag}{value} must be YYMMDD or YYYYMMDD")
    digits = value if len(value) == 8 else "20" + value
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise ParseError(f"MA {_FIELDS[flag]} .{flag}{value} is not a real date: {exc}") from exc
