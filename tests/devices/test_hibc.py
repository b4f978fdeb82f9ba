"""Behaviour of the HIBCC (HIBC LIC) parser: supplier labels on US and European devices."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.identification import ParsedUDI, ParseError, parse_udi
from devices.identification.hibc import HIBC_CHARACTERS, check_character, parse_hibc, parse_hibc_pair


def _symbol(data: str) -> str:
    """Complete `data` with its mod-43 check character, as a label printer does."""
    return data + check_character(data)


def _fields(udi: ParsedUDI) -> tuple[object, ...]:
    return (udi.issuer, udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date, udi.other_ais)


# --- the check character --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "check"),
    [
        # Examples printed in ANSI/HIBC 2.6 (primary, separate secondary, concatenated).
        ("+A123BJC5D6E71", "G"),
        ("+$$52001510X3G", "D"),
        ("+A99912345/$$52001510X3", "3"),
        ("+A99912345/$$52001510X3/16D20111212/S77DEFG45", "7"),
        ("+A99912345/$10X3/16D20111231/14D20200131", "3"),
        ("+J123AQ3451/$$3231231BC34567/S4012", "R"),
        ("+A999111", " "),
    ],
)
def test_check_character_is_the_mod_43_sum_of_every_character(data: str, check: str) -> None:
    assert check_character(data) == check


def test_check_character_rejects_characters_outside_code_39() -> None:
    with pytest.raises(ValueError, match="not in the HIBC"):
        check_character("+a123")


def test_wrong_check_character_is_refused_with_the_expected_one() -> None:
    with pytest.raises(ParseError, match=r"check character is wrong .*expected 'G', got 'H'"):
        parse_hibc("+A123BJC5D6E71H")


@given(position=st.integers(0, 13), replacement=st.sampled_from(HIBC_CHARACTERS))
def test_any_single_changed_character_is_caught_by_the_check(position: int, replacement: str) -> None:
    label = "+A123BJC5D6E71G"
    changed = label[:position] + replacement + label[position + 1 :]
    if changed == label:
        return
    with pytest.raises(ParseError):
        parse_hibc(changed)


# --- primary data -----------------------------------------------------------------------------


def test_primary_symbol_gives_lic_product_and_unit_of_measure_as_di() -> None:
    udi = parse_hibc("+A123BJC5D6E71G")

    assert _fields(udi) == ("HIBCC", "A123BJC5D6E71", "", "", None, None, ())
    assert udi.normalized == "+A123BJC5D6E71G"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("+A123BJC5D6E71G", id="bare"),
        pytest.param("*+A123BJC5D6E71G*", id="code-39-asterisks"),
        pytest.param("]C0+A123BJC5D6E71G", id="code-128-aim"),
        pytest.param("]d1+A123BJC5D6E71G", id="datamatrix-aim"),
        pytest.param("]Q1+A123BJC5D6E71G", id="qr-aim"),
        pytest.param("]A1+A123BJC5D6E71G", id="code-39-check-transmitted"),
        pytest.param("]A3+A123BJC5D6E71", id="code-39-check-stripped-by-reader"),
        pytest.param("  +A123BJC5D6E71G\r\n", id="whitespace-and-crlf"),
        pytest.param("]A0*+A123BJC5D6E71G*\n", id="aim-and-asterisks"),
    ],
)
def test_every_scanned_form_of_a_primary_gives_the_same_udi(raw: str) -> None:
    udi = parse_udi(raw)

    assert _fields(udi) == ("HIBCC", "A123BJC5D6E71", "", "", None, None, ())
    assert (udi.normalized, udi.raw) == ("+A123BJC5D6E71G", raw)


def test_space_check_character_survives_and_may_be_printed_as_underscore() -> None:
    assert parse_hibc("+A999111 \r\n").di == "A999111"
    assert parse_hibc("*+A999111_*").normalized == "+A999111 "


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("+A12", "labeler code"),
        ("+A123BJC5D6E7X", "unit-of-measure digit"),
        ("+A123" + "P" * 19 + "1", "1-18 letters or digits"),
    ],
)
def test_malformed_primary_is_refused(data: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_hibc(_symbol(data))


# --- secondary data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secondary", "lot", "serial", "expiry", "others"),
    [
        pytest.param("$$0726LOT1", "LOT1", "", dt.date(2026, 7, 31), (), id="MMYY"),
        pytest.param("$$1226LOT1", "LOT1", "", dt.date(2026, 12, 31), (), id="MMYY-december"),
        pytest.param("$$2071526LOT1", "LOT1", "", dt.date(2026, 7, 15), (), id="MMDDYY"),
        pytest.param("$$3260715LOT1", "LOT1", "", dt.date(2026, 7, 15), (), id="YYMMDD"),
        pytest.param("$$426071508LOT1", "LOT1", "", dt.date(2026, 7, 15), (("expiry_hour", "08"),), id="YYMMDDHH"),
        pytest.param("$$526196LOT1", "LOT1", "", dt.date(2026, 7, 15), (), id="YYJJJ"),
        pytest.param("$$62619623LOT1", "LOT1", "", dt.date(2026, 7, 15), (("expiry_hour", "23"),), id="YYJJJHH"),
        pytest.param("$$7LOT1", "LOT1", "", None, (), id="no-date"),
        pytest.param("$$3260715", "", "", dt.date(2026, 7, 15), (), id="date-without-lot"),
        pytest.param("$$+3260715SN001", "", "SN001", dt.date(2026, 7, 15), (), id="serial-with-date"),
        pytest.param("$$+7SN001", "", "SN001", None, (), id="serial-no-date"),
        pytest.param("$LOT1", "LOT1", "", None, (), id="lot-only"),
        pytest.param("$+SN001", "", "SN001", None, (), id="serial-only"),
        pytest.param("26196LOT1", "LOT1", "", dt.date(2026, 7, 15), (), id="julian-then-lot"),
        pytest.param("$$8253260701LOT1", "LOT1", "", dt.date(2026, 7, 1), (("Q", "25"),), id="quantity-2-digits"),
        pytest.param("$$9001203260701LOT1", "LOT1", "", dt.date(2026, 7, 1), (("Q", "120"),), id="quantity-5-digits"),
        pytest.param("$$8107LOT1", "LOT1", "", None, (("Q", "10"),), id="quantity-no-date"),
        pytest.param("$$810LOT1", "LOT1", "", None, (("Q", "10"),), id="quantity-then-lot"),
        pytest.param("$$+9000050726SN9", "", "SN9", dt.date(2026, 7, 31), (("Q", "5"),), id="quantity-serial-MMYY"),
        pytest.param("$$3260715LOT-2024.A", "LOT-2024.A", "", dt.date(2026, 7, 15), (), id="lot-with-dash-and-dot"),
    ],
)
def test_secondary_formats(secondary: str, lot: str, serial: str, expiry: dt.date | None, others: object) -> None:
    udi = parse_hibc(_symbol(f"+A99912345/{secondary}"))

    assert (udi.di, udi.lot, udi.serial, udi.expiry, udi.other_ais) == ("A99912345", lot, serial, expiry, others)


def test_supplementary_data_adds_production_date_serial_expiry_and_quantity() -> None:
    udi = parse_hibc(_symbol("+A99912345/$10X3/16D20111231/14D20200131/S77DE/Q500"))

    assert (udi.lot, udi.serial, udi.expiry, udi.production_date) == (
        "10X3",
        "77DE",
        dt.date(2020, 1, 31),
        dt.date(2011, 12, 31),
    )
    assert udi.other_ais == (("Q", "500"),)


def test_unknown_supplementary_data_identifier_is_kept_in_other_ais() -> None:
    assert parse_hibc(_symbol("+A99912345/$10X3/1TX9")).other_ais == (("1T", "X9"),)


@pytest.mark.parametrize(
    ("secondary", "reason"),
    [
        pytest.param("", "must start with", id="empty"),
        pytest.param("LOT1", "must start with", id="no-flag"),
        pytest.param("$$", "date format digit", id="bare-double-dollar"),
        pytest.param("$$A", "date format digit", id="letter-after-double-dollar"),
        pytest.param("$$8", "2 digits", id="short-quantity"),
        pytest.param("$$9012", "5 digits", id="short-long-quantity"),
        pytest.param("$$3261332LOT", "not a real date", id="month-13"),
        pytest.param("$$3270229LOT", "not a real date", id="not-a-leap-year"),
        pytest.param("$$527366LOT", "not a real date", id="day-366-of-common-year"),
        pytest.param("$$526000LOT", "not a real date", id="day-000"),
        pytest.param("$$42607152400LOT", "not a real date", id="hour-24"),
        pytest.param("$$32607", "does not match", id="truncated-date"),
        pytest.param("$", "lot is missing", id="empty-lot"),
        pytest.param("$+", "serial is missing", id="empty-serial"),
        pytest.param("$$7" + "L" * 19, "1-18", id="lot-too-long"),
        pytest.param("26196" + "L" * 14, "1-13", id="julian-lot-too-long"),
        pytest.param("2619", "does not match", id="short-julian"),
        pytest.param("$$3260715L/14D20260716", "twice", id="two-expiries"),
        pytest.param("$$+7SN1/SSN2", "twice", id="two-serials"),
        pytest.param("$$8107L/Q11", "twice", id="two-quantities"),
        pytest.param("$L/", "data identifier", id="empty-supplementary"),
        pytest.param("$L/16D2011", "does not match", id="short-production-date"),
        pytest.param("$L/QX", "digits", id="non-numeric-quantity"),
        pytest.param("$L%", "capital letters, digits", id="percent-in-lot"),
    ],
)
def test_malformed_secondary_data_is_refused(secondary: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_hibc(_symbol(f"+A99912345/{secondary}"))


def test_mmyy_expiry_is_the_last_day_of_the_month() -> None:
    assert parse_hibc(_symbol("+A99912345/$$0228L")).expiry == dt.date(2028, 2, 29)


# --- separate secondary symbols -----------------------------------------------------------------


def test_separate_secondary_symbol_is_linked_by_the_primary_check_character() -> None:
    udi = parse_hibc_pair("+A123BJC5D6E71G", "+$$52001510X3GD")

    assert _fields(udi) == ("HIBCC", "A123BJC5D6E71", "10X3", "", dt.date(2020, 1, 15), None, ())
    assert udi.raw == "+A123BJC5D6E71G\n+$$52001510X3GD"
    assert _fields(parse_hibc(udi.normalized)) == _fields(udi)


def test_secondary_symbol_of_another_product_is_refused() -> None:
    with pytest.raises(ParseError, match="link character 'G' does not match the primary's check character '-'"):
        parse_hibc_pair(_symbol("+A1231234561"), "+$$52001510X3GD")


def test_secondary_symbol_alone_is_refused_with_a_pointer_to_the_pair() -> None:
    with pytest.raises(ParseError, match="parse_hibc_pair"):
        parse_udi("+$$52001510X3GD")


@pytest.mark.parametrize(
    ("primary", "secondary", "reason"),
    [
        ("+A99912345/$$52001510X33", "+$$52001510X3GD", "not a HIBC primary"),
        ("+A123BJC5D6E71G", "+A123BJC5D6E71G", "not a HIBC secondary"),
        ("+A123BJC5D6E71G", _symbol("+$"), "no data before its link"),
    ],
)
def test_pair_needs_a_primary_then_a_secondary(primary: str, secondary: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_hibc_pair(primary, secondary)


# --- what is not a HIBC supplier label ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(_symbol("+/EO52320"), "Provider Applications", id="pas-label"),
        pytest.param("+a123bjc5d6e71g", "not in the HIBC character set", id="lower-case"),
        pytest.param("+A123BJC5D6E71\u00c7", "not in the HIBC character set", id="non-ascii"),
        pytest.param("*+A123BJC5D6E71G", "Unbalanced", id="unbalanced-asterisk"),
        pytest.param("*", "Unbalanced", id="lone-asterisk"),
        pytest.param("+", "too short", id="lone-plus"),
        pytest.param("]A3+", "too short", id="stripped-check-lone-plus"),
        pytest.param("]", "symbology", id="lone-bracket"),
        pytest.param("A123BJC5D6E71G", "must start with", id="no-plus"),
        pytest.param(_symbol("+-123BJC5D6E71"), "labeler code", id="odd-first-character"),
    ],
)
def test_text_that_is_not_a_hibc_label_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_hibc(raw)


# --- realistic labels -------------------------------------------------------------------------

CORPUS = [
    pytest.param(
        "+A99912345/$$52001510X33",
        ("A99912345", "10X3", "", dt.date(2020, 1, 15), None, ()),
        id="standard-concatenated",
    ),
    pytest.param(
        "+A99912345/$$52001510X3/16D20111212/S77DEFG457",
        ("A99912345", "10X3", "77DEFG45", dt.date(2020, 1, 15), dt.date(2011, 12, 12), ()),
        id="standard-supplementary",
    ),
    pytest.param(
        "+J123AQ3451/$$3231231BC34567/S4012R",
        ("J123AQ3451", "BC34567", "4012", dt.date(2023, 12, 31), None, ()),
        id="standard-lot-and-serial",
    ),
    pytest.param(
        "*+A99912349/$10X3/16D20111231/14D20200131/Q500Z*",
        ("A99912349", "10X3", "", dt.date(2020, 1, 31), dt.date(2011, 12, 31), (("Q", "500"),)),
        id="code-39-variable-quantity",
    ),
    pytest.param(
        "]d1+E1652101109/$$9000063260831L01656I",
        ("E1652101109", "L01656", "", dt.date(2026, 8, 31), None, (("Q", "6"),)),
        id="orthopaedic-screw-box-of-6",
    ),
    pytest.param(
        "+E2513079NL1/$$90001020331222021050425-1P",
        ("E2513079NL1", "2021050425-1", "", dt.date(2022, 3, 31), None, (("Q", "10"),)),
        id="suture-box-dash-in-lot",
    ),
    pytest.param(
        "+D002624225011/$$705224372/16D202201195",
        ("D002624225011", "05224372", "", None, dt.date(2022, 1, 19), ()),
        id="implant-no-expiry",
    ),
    pytest.param(
        "]C0+EDMG2203430/$$0723244375H",
        ("EDMG2203430", "244375", "", dt.date(2023, 7, 31), None, ()),
        id="catheter-gs1-128-mmyy",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CORPUS)
def test_realistic_device_labels(raw: str, expected: tuple[object, ...]) -> None:
    udi = parse_udi(raw)

    assert udi.issuer == "HIBCC"
    assert (udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date, udi.other_ais) == expected


# --- properties -------------------------------------------------------------------------------

UPPER_ALNUM = string.ascii_uppercase + string.digits
LICS = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_uppercase),
    st.text(UPPER_ALNUM, min_size=3, max_size=3),
)
PCNS = st.text(UPPER_ALNUM, min_size=1, max_size=18)
UNITS = st.sampled_from(string.digits)
VALUES = st.text(UPPER_ALNUM, min_size=1, max_size=18)
DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def _expiry_field(date: dt.date, flag: str) -> tuple[str, dt.date]:
    """Write `date` in the layout of `flag`; return the text and the date it stands for."""
    if flag == "0":  # MMYY: any day of the month reads as its last day
        last = date.replace(day=calendar.monthrange(date.year, date.month)[1])
        return date.strftime("%m%y"), last
    layout = {"2": "%m%d%y", "3": "%y%m%d", "4": "%y%m%d08", "5": "%y%j", "6": "%y%j08"}[flag]
    return flag + date.strftime(layout), date


@st.composite
def hibc_labels(draw: st.DrawFn) -> tuple[str, str, tuple[object, ...]]:
    """A primary and a secondary data string, and the fields parsing them must give."""
    lic, pcn, unit = draw(LICS), draw(PCNS), draw(UNITS)
    primary = f"+{lic}{pcn}{unit}"
    kind = draw(st.sampled_from(["$$", "$$+", "$", "$+"]))
    value = draw(VALUES)
    expiry: dt.date | None = None
    others: list[tuple[str, str]] = []
    if kind in ("$", "$+"):
        secondary = kind + value
    else:
        quantity = draw(st.one_of(st.none(), st.integers(0, 99), st.integers(0, 99999)))
        prefix = ""
        if quantity is not None:
            prefix = f"8{quantity:02d}" if quantity <= 99 else f"9{quantity:05d}"
            others.append(("Q", str(quantity)))
        flag = draw(st.sampled_from("0234567"))
        if flag == "7":
            date_text = "7"
        else:
            date_text, expiry = _expiry_field(draw(DATES), flag)
            if flag in "46":
                others.append(("expiry_hour", "08"))
        secondary = kind + prefix + date_text + value
    produced = draw(st.one_of(st.none(), DATES))
    if produced is not None:
        secondary += "/16D" + produced.strftime("%Y%m%d")
    lot, serial = (value, "") if kind in ("$$", "$") else ("", value)
    expected = ("HIBCC", lic + pcn + unit, lot, serial, expiry, produced, tuple(others))
    return primary, secondary, expected


@given(label=hibc_labels(), wrapper=st.sampled_from(["{}", "*{}*", "]C0{}", "]d1{}\r\n"]))
def test_encoded_labels_parse_back_to_their_fields(label: tuple[str, str, tuple[object, ...]], wrapper: str) -> None:
    primary, secondary, expected = label
    concatenated = _symbol(f"{primary}/{secondary}")

    udi = parse_udi(wrapper.format(concatenated))

    assert _fields(udi) == expected
    assert udi.normalized == concatenated


@given(label=hibc_labels())
def test_separate_symbols_give_the_same_udi_as_the_concatenated_one(label: tuple[str, str, tuple[object, ...]]) -> None:
    primary, secondary, expected = label
    primary_symbol = _symbol(primary)
    secondary_symbol = _symbol(f"+{secondary}{primary_symbol[-1]}")

    udi = parse_hibc_pair(primary_symbol, secondary_symbol)

    assert _fields(udi) == expected
    assert udi.normalized == _symbol(f"{primary}/{secondary}")


HIBC_TEXT = st.text(alphabet=st.sampled_from(HIBC_CHARACTERS + "*_]d1a\r\n"), max_size=60)


@given(body=HIBC_TEXT, complete=st.booleans())
def test_arbitrary_hibc_shaped_text_raises_nothing_but_parse_error(body: str, complete: bool) -> None:
    text = "+" + body
    if complete and all(char in HIBC_CHARACTERS for char in text):
        text = _symbol(text)
    with contextlib.suppress(ParseError):
        parse_hibc(text)
    with contextlib.suppress(ParseError):
        parse_hibc_pair(text, text)
