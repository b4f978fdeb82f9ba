"""Parse HIBCC supplier labels (HIBC LIC, ANSI/HIBC Supplier Labeling Standard 2.x).

A HIBC LIC label is written in the 43 characters of Code 39 and ends in a mod-43 check
character computed over everything before it, the leading "+" included:

    primary symbol     +  LIC PCN U  C
    concatenated       +  LIC PCN U / secondary [/ supplementary ...]  C
    secondary symbol   +  secondary [/ supplementary ...]  L  C

LIC is the 4-character labeler code (first a letter), PCN the labeler's product or catalogue
number (1-18 letters or digits), U the unit-of-measure digit (0 = unit of use, 1-8 packaging
levels, 9 variable quantity), C the check character. A secondary printed as its own symbol
repeats the primary's check character as its link character L.

Secondary data starts with one of:

    YYJJJ lot           a Julian expiry date, then a lot of up to 13 characters
    $ lot               lot only              $+ serial          serial only
    $$ [Q] [D] lot      $$+ [Q] [D] serial    with an optional quantity Q and expiry D:
        Q:  8 + 2 digits, or 9 + 5 digits
        D:  0 or 1 starts MMYY; 2 MMDDYY, 3 YYMMDD, 4 YYMMDDHH, 5 YYJJJ, 6 YYJJJHH follow the
            flag digit; 7 means no date
then optional supplementary fields, each "/" + an ANSI MH10.8.2 data identifier: 14D expiry
and 16D production date (YYYYMMDD), S serial, Q quantity.

Readings this module commits to (the standard leaves them open or to context):
- The DI of a HIBC label is LIC + PCN + U, without "+" and check character ("A99912345"):
  the same product in another unit of measure is another DI, as a GTIN would be.
- Two-digit years are 20YY; an MMYY expiry is the last day of that month, as GS1's day 00.
- After a quantity, a digit 0-7 is read as the date flag, never as the start of the lot.
- Lot and serial hold letters, digits, "-" and "." (real labels use the last two).
- Quantity goes to `other_ais` as ("Q", n), the hour of a YYMMDDHH / YYJJJHH expiry as
  ("expiry_hour", "HH"), and any other supplementary field as (data identifier, value).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

from devices.identification.parsed import ParsedUDI, ParseError, show

__all__ = ["HIBC_CHARACTERS", "check_character", "parse_hibc", "parse_hibc_pair"]

HIBC_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
"""The Code 39 character set, in the order that gives each character its mod-43 value."""

_VALUES = {char: value for value, char in enumerate(HIBC_CHARACTERS)}
_SYMBOLOGY = re.compile(r"\][A-Za-z][0-9A-Za-z]")
# Code 39 AIM modifiers 3 and 7: the reader checked the mod-43 character and dropped it.
_CHECK_STRIPPED = frozenset({"]A3", "]A7"})
_PRIMARY = re.compile(r"([A-Z][A-Z0-9]{3})([A-Z0-9]{1,18})([0-9])")
_VALUE = re.compile(r"[A-Z0-9.\-]+")
_SUPPLEMENTARY = re.compile(r"([0-9]{0,3}[A-Z])(.+)")
_DIGITS = re.compile(r"[0-9]+")
_DATE_LAYOUTS = {"2": "MMDDYY", "3": "YYMMDD", "4": "YYMMDDHH", "5": "YYJJJ", "6": "YYJJJHH"}
_MAX_LOT = 18
_MAX_JULIAN_LOT = 13


def check_character(data: str) -> str:
    """Return the HIBC mod-43 check character for `data` (the symbol text before it, "+" included)."""
    try:
        total = sum(_VALUES[char] for char in data)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not in the HIBC (Code 39) character set") from None
    return HIBC_CHARACTERS[total % 43]


def parse_hibc(raw: str) -> ParsedUDI:
    """Parse a HIBC primary symbol, or a primary concatenated with its secondary data.

    Accepts an AIM symbology identifier (]C0, ]d1, ]Q1, ]A0, ...; after ]A3/]A7 the reader
    has already checked and dropped the check character), the Code 39 "*...*" start/stop
    characters of the printed text, and "_" for a space check character as Code 39 prints it.
    A secondary symbol on its own carries no DI: pass it with its primary to parse_hibc_pair().

    Raises ParseError, naming what was wrong, for anything else: a wrong check character, an
    unknown secondary format, an impossible date, a Provider Applications (+/) label.
    """
    data, check = _read_symbol(raw)
    if data[1] == "/":
        raise ParseError(
            f"{show(data + check)} is a HIBC Provider Applications (+/) label, which identifies an item "
            "inside a hospital, not a supplier's device"
        )
    if data[1] == "$" or data[1].isdigit():
        raise ParseError(
            f"{show(data + check)} is a HIBC secondary symbol (lot/expiry only) without the device's "
            "primary symbol; scan both and combine them with parse_hibc_pair()"
        )
    return _parse_data(data, raw=raw, normalized=data + check)


def parse_hibc_pair(primary: str, secondary: str) -> ParsedUDI:
    """Combine a primary symbol and the separate secondary symbol linked to it.

    The secondary's link character must equal the primary's check character, which is how
    HIBC tells which two labels belong together. The result is the same as parsing the
    concatenated form (`normalized`), and `raw` holds both scans, one per line.
    """
    primary_data, primary_check = _read_symbol(primary)
    if not _PRIMARY.fullmatch(primary_data[1:]):
        raise ParseError(f"{show(primary)} is not a HIBC primary symbol (+ LIC, product number, unit of measure)")
    secondary_data, _ = _read_symbol(secondary)
    if secondary_data[1] != "$" and not secondary_data[1].isdigit():
        raise ParseError(f"{show(secondary)} is not a HIBC secondary symbol: it must start with '+$' or '+' and a date")
    if len(secondary_data) < 3:
        raise ParseError(f"HIBC secondary symbol {show(secondary)} has no data before its link character")
    link = secondary_data[-1]
    if link != primary_check:
        raise ParseError(
            f"The secondary symbol's link character {link!r} does not match the primary's check character "
            f"{primary_check!r}: the two labels belong to different products"
        )
    data = f"{primary_data}/{secondary_data[1:-1]}"
    return _parse_data(data, raw=f"{primary}\n{secondary}", normalized=data + check_character(data))


def _read_symbol(raw: str) -> tuple[str, str]:
    """Strip what scanners and printers add, and return the verified (data, check character)."""
    if not isinstance(raw, str):
        raise ParseError(f"UDI must be text, got {type(raw).__name__}")
    # Only line endings are trimmed at the end: a space is a valid check character.
    text = raw.lstrip().rstrip("\r\n\t")
    check_stripped = False
    if text.startswith("]"):
        if not _SYMBOLOGY.match(text):
            raise ParseError(f"Unrecognised symbology identifier at the start of {show(text)}")
        check_stripped = text[:3] in _CHECK_STRIPPED
        text = text[3:]
    if text.startswith("*") or text.rstrip().endswith("*"):
        text = text.rstrip()
        if len(text) < 2 or not (text.startswith("*") and text.endswith("*")):
            raise ParseError(f"Unbalanced Code 39 start/stop '*' in {show(raw)}")
        text = text[1:-1]
    if text.endswith("_"):
        text = text[:-1] + " "
    for position, char in enumerate(text):
        if char not in _VALUES:
            raise ParseError(
                f"{char!r} at position {position} of {show(text)} is not in the HIBC character set "
                "(capital letters, digits and - . space $ / + %)"
            )
    if not text.startswith("+"):
        raise ParseError(f"HIBC data must start with '+': {show(text)}")
    data, check = (text, check_character(text)) if check_stripped else (text[:-1], text[-1:])
    if len(data) < 2:
        raise ParseError(f"{show(raw)} is too short to be a HIBC label")
    expected = check_character(data)
    if check != expected:
        raise ParseError(f"HIBC check character is wrong in {show(data + check)}: expected {expected!r}, got {check!r}")
    return data, check


def _parse_data(data: str, *, raw: str, normalized: str) -> ParsedUDI:
    primary, has_secondary, secondary = data[1:].partition("/")
    match = _PRIMARY.fullmatch(primary)
    if match is None:
        raise ParseError(
            f"HIBC primary data {primary!r} is not a labeler code (4 characters, the first a letter), "
            "a product number (1-18 letters or digits) and a unit-of-measure digit"
        )
    fields = _Fields()
    if has_secondary:
        _read_secondary(secondary, fields)
    return ParsedUDI(
        issuer="HIBCC",
        di="".join(match.groups()),
        lot=fields.lot,
        serial=fields.serial,
        expiry=fields.expiry,
        production_date=fields.production_date,
        raw=raw,
        normalized=normalized,
        other_ais=tuple(fields.others),
    )


@dataclass
class _Fields:
    lot: str = ""
    serial: str = ""
    expiry: dt.date | None = None
    production_date: dt.date | None = None
    others: list[tuple[str, str]] = field(default_factory=list)

    def put(self, name: str, value: str | dt.date) -> None:
        current = getattr(self, name)
        if current and current != value:
            label = name.replace("_", " ")
            raise ParseError(f"HIBC {label} is given twice with different values: {current} and {value}")
        setattr(self, name, value)

    def add(self, tag: str, value: str) -> None:
        for known, current in self.others:
            if known == tag and current != value:
                raise ParseError(f"HIBC {tag} is given twice with different values: {current} and {value}")
        if (tag, value) not in self.others:
            self.others.append((tag, value))


def _read_secondary(text: str, fields: _Fields) -> None:
    core, *supplementary = text.split("/")
    if core.startswith("$$+"):
        fields.put("serial", _value("serial", _quantity_and_date(core[3:], fields), allow_empty=True))
    elif core.startswith("$$"):
        fields.put("lot", _value("lot", _quantity_and_date(core[2:], fields), allow_empty=True))
    elif core.startswith("$+"):
        fields.put("serial", _value("serial", core[2:]))
    elif core.startswith("$"):
        fields.put("lot", _value("lot", core[1:]))
    elif core[:1].isdigit():
        expiry, _ = _date(core[:5], "YYJJJ")
        fields.put("expiry", expiry)
        fields.put("lot", _value("lot", core[5:], allow_empty=True, limit=_MAX_JULIAN_LOT))
    else:
        raise ParseError(
            f"HIBC secondary data {core!r} must start with a Julian date (YYJJJ), '$', '$+', '$$' or '$$+'"
        )
    for item in supplementary:
        _read_supplementary(item, fields)


def _quantity_and_date(text: str, fields: _Fields) -> str:
    """Read the optional quantity and expiry after '$$' / '$$+'; return what follows (lot or serial)."""
    if not text:
        raise ParseError("HIBC '$$' must be followed by a date format digit 0-7 or a quantity flag 8 or 9")
    flag = text[0]
    if flag in "89":
        width = 2 if flag == "8" else 5
        quantity = text[1 : 1 + width]
        if len(quantity) != width or not _DIGITS.fullmatch(quantity):
            raise ParseError(f"HIBC quantity flag '$${flag}' must be followed by {width} digits, got {quantity!r}")
        fields.add("Q", str(int(quantity)))
        text = text[1 + width :]
        if not text or text[0] not in "01234567":
            return text
    elif flag not in "01234567":
        raise ParseError(
            f"HIBC '$$' must be followed by a date format digit 0-7 or a quantity flag 8 or 9, got {flag!r}"
        )
    flag = text[0]
    if flag == "7":
        return text[1:]
    if flag in "01":
        layout, start = "MMYY", 0
    else:
        layout, start = _DATE_LAYOUTS[flag], 1
    end = start + len(layout)
    expiry, hour = _date(text[start:end], layout)
    fields.put("expiry", expiry)
    if hour:
        fields.add("expiry_hour", hour)
    return text[end:]


def _read_supplementary(text: str, fields: _Fields) -> None:
    match = _SUPPLEMENTARY.fullmatch(text)
    if match is None:
        raise ParseError(
            f"HIBC supplementary data {'/' + text!r} must be a data identifier (such as 14D, 16D, S or Q) and a value"
        )
    identifier, value = match.groups()
    if identifier == "14D":
        fields.put("expiry", _date(value, "YYYYMMDD")[0])
    elif identifier == "16D":
        fields.put("production_date", _date(value, "YYYYMMDD")[0])
    elif identifier == "S":
        fields.put("serial", _value("serial", value))
    elif identifier == "Q":
        if not _DIGITS.fullmatch(value):
            raise ParseError(f"HIBC quantity /Q must be digits, got {value!r}")
        fields.add("Q", str(int(value)))
    else:
        fields.add(identifier, value)


def _value(name: str, value: str, *, allow_empty: bool = False, limit: int = _MAX_LOT) -> str:
    if not value:
        if allow_empty:
            return value
        raise ParseError(f"HIBC {name} is missing")
    if len(value) > limit or not _VALUE.fullmatch(value):
        raise ParseError(f"HIBC {name} {value!r} must be 1-{limit} capital letters, digits, '-' or '.'")
    return value


def _date(value: str, layout: str) -> tuple[dt.date, str]:
    """Read `value` in `layout`; return the date and the hour ("" when the layout has none)."""
    if len(value) != len(layout) or not _DIGITS.fullmatch(value):
        raise ParseError(f"HIBC date {value!r} does not match its format {layout}")

    def part(name: str) -> int:
        start = layout.index(name)
        return int(value[start : start + len(name)])

    year = part("YYYY") if "YYYY" in layout else 2000 + part("YY")
    hour = value[layout.index("HH") :] if "HH" in layout else ""
    try:
        if hour and int(hour) > 23:
            raise ValueError(f"hour {hour} is out of range")
        if "JJJ" in layout:
            day_of_year = part("JJJ")
            if not 1 <= day_of_year <= (366 if calendar.isleap(year) else 365):
                raise ValueError(f"day {day_of_year} is not in {year}")
            return dt.date(year, 1, 1) + dt.timedelta(days=day_of_year - 1), hour
        month = part("MM")
        day = part("DD") if "DD" in layout else calendar.monthrange(year, month)[1]
        return dt.date(year, month, day), hour
    except ValueError as exc:  # also calendar.IllegalMonthError
        raise ParseError(f"HIBC date {value!r} ({layout}) is not a real date: {exc}") from exc
