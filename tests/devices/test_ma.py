"""Behaviour of the MA code (IDcode) parser and the Ali Health (AHM) recogniser."""

from __future__ import annotations

import contextlib
import datetime as dt
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.identification import ParsedUDI, ParseError, parse_udi
from devices.identification.ma import parse_ahm, parse_ma

EXAMPLE = "MA.156.M0.100000.1234567.S1234567890.E261231.L2024A01"


def _fields(udi: ParsedUDI) -> tuple[object, ...]:
    return (udi.issuer, udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date, udi.other_ais)


def test_ma_code_gives_di_and_production_identifiers() -> None:
    udi = parse_ma(EXAMPLE)

    assert _fields(udi) == (
        "MA",
        "MA.156.M0.100000.1234567",
        "2024A01",
        "1234567890",
        dt.date(2026, 12, 31),
        None,
        (),
    )
    assert (udi.raw, udi.normalized) == (EXAMPLE, EXAMPLE)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(EXAMPLE, id="bare"),
        pytest.param(f"]Q1{EXAMPLE}", id="qr-aim"),
        pytest.param(f"]d1{EXAMPLE}\r\n", id="datamatrix-aim-crlf"),
        pytest.param(f"  {EXAMPLE} ", id="spaces"),
    ],
)
def test_every_scanned_form_gives_the_same_udi(raw: str) -> None:
    udi = parse_udi(raw)

    assert _fields(udi) == _fields(parse_ma(EXAMPLE))
    assert udi.normalized == EXAMPLE


def test_fields_may_come_in_any_order() -> None:
    reordered = "MA.156.M0.100000.1234567.L2024A01.E261231.S1234567890"

    assert _fields(parse_ma(reordered)) == _fields(parse_ma(EXAMPLE))


@pytest.mark.parametrize(
    ("date", "expected"),
    [("261231", dt.date(2026, 12, 31)), ("20261231", dt.date(2026, 12, 31)), ("240229", dt.date(2024, 2, 29))],
)
def test_dates_are_yymmdd_or_yyyymmdd(date: str, expected: dt.date) -> None:
    assert parse_ma(f"MA.156.M0.100000.1234567.E{date}").expiry == expected


def test_production_date_is_m_or_the_older_p() -> None:
    assert parse_ma("MA.156.M0.100000.1234567.M250301").production_date == dt.date(2025, 3, 1)
    assert parse_ma("MA.156.M0.100000.1234567.P250301").production_date == dt.date(2025, 3, 1)
    assert parse_ma("MA.156.M0.100000.1234567.M250301.P20250301").production_date == dt.date(2025, 3, 1)


def test_valid_until_is_the_expiry_and_the_later_expiry_field_is_kept() -> None:
    udi = parse_ma("MA.156.M0.100000.1234567.E270101.V261231")

    assert udi.expiry == dt.date(2026, 12, 31)
    assert udi.other_ais == (("E", "270101"),)


def test_valid_until_alone_is_the_expiry() -> None:
    assert parse_ma("MA.156.M0.100000.1234567.V261231").expiry == dt.date(2026, 12, 31)


def test_sterilisation_lot_and_check_field_are_kept_and_never_verified() -> None:
    udi = parse_ma("MA.156.M0.100000.1234567.L2024A01.D2024S07.CZ")

    assert udi.lot == "2024A01"
    assert udi.other_ais == (("D", "2024S07"), ("C", "Z"))


def test_check_character_in_the_product_code_stays_part_of_the_di() -> None:
    assert parse_ma("MA.156.M0.100761.21234561.Sx00008").di == "MA.156.M0.100761.21234561"


def test_di_alone_is_a_valid_ma_code() -> None:
    assert _fields(parse_udi("MA.156.M0.100204.13351764")) == (
        "MA",
        "MA.156.M0.100204.13351764",
        "",
        "",
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("MA.156.M0.100000", "too short", id="no-product-code"),
        pytest.param("MA.15.M0.100000.1234567", "country code", id="short-country"),
        pytest.param("MA.156.M.100000.1234567", "industry code", id="short-industry"),
        pytest.param("MA.156.M0.10000.1234567", "registrant code", id="short-registrant"),
        pytest.param("MA.156.M0.100000.12-34", "product code", id="dash-in-product"),
        pytest.param("MA.156.M0.100000.1234567.", "empty field", id="trailing-dot"),
        pytest.param("MA.156.M0.100000.1234567..L1", "empty field", id="double-dot"),
        pytest.param("MA.156.M0.100000.1234567.X1", "Unknown MA field '.X1'", id="unknown-field"),
        pytest.param("MA.156.M0.100000.1234567.L", "followed by 1-64 letters or digits", id="empty-lot"),
        pytest.param("MA.156.M0.100000.1234567.S" + "9" * 65, "1-64", id="serial-too-long"),
        pytest.param("MA.156.M0.100000." + "1" * 33, "product code", id="product-code-too-long"),
        pytest.param("MA.156.M0.100000.1234567.L1.L2", "appears twice", id="two-lots"),
        pytest.param("MA.156.M0.100000.1234567.E2612", "YYMMDD or YYYYMMDD", id="short-date"),
        pytest.param("MA.156.M0.100000.1234567.E261232", "not a real date", id="day-32"),
        pytest.param("MA.156.M0.100000.1234567.M250301.P250302", "twice with different", id="m-and-p-differ"),
        pytest.param("MA.156.M0.100000.1234567.L批号", "character", id="chinese-lot"),
        pytest.param("MA.156.M0.100000.1234567.L1\x1d.S2", "character", id="control-character"),
        pytest.param("MA156M0", "starts with 'MA.'", id="no-dots"),
    ],
)
def test_malformed_ma_codes_are_refused_naming_the_field(raw: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_ma(raw)


# Layouts as they appear on devices from domestic registrants (illustrative values).
CORPUS = [
    pytest.param(
        "MA.156.M0.100350.01004YA10017.SLMSAGAAAC.M210628.LAY21062803.E220628.V220627.C3",
        ("MA.156.M0.100350.01004YA10017", "AY21062803", "LMSAGAAAC", dt.date(2022, 6, 27), dt.date(2021, 6, 28)),
        id="infusion-set-full-pi",
    ),
    pytest.param(
        "MA.156.M0.100011.2cscp023.Ste002.M200206.L343432.D555555.E200228.V200307.C9",
        ("MA.156.M0.100011.2cscp023", "343432", "te002", dt.date(2020, 3, 7), dt.date(2020, 2, 6)),
        id="lower-case-product-code",
    ),
    pytest.param(
        "MA.156.M0.123456.N123456Y.L190726A.S1907260001.E200725.CZ",
        ("MA.156.M0.123456.N123456Y", "190726A", "1907260001", dt.date(2020, 7, 25), None),
        id="catheter-serialised",
    ),
    pytest.param(
        "]Q1MA.156.M0.100472.11103316.S1576130942.P190101.LABS20191201.E20211201",
        ("MA.156.M0.100472.11103316", "ABS20191201", "1576130942", dt.date(2021, 12, 1), dt.date(2019, 1, 1)),
        id="stent-old-production-flag",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CORPUS)
def test_realistic_ma_labels(raw: str, expected: tuple[object, ...]) -> None:
    udi = parse_udi(raw)

    assert udi.issuer == "MA"
    assert (udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date) == expected


# --- Ali Health --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["AHM1234567890", "]Q1AHM.88.1234.SN001"])
def test_ali_health_code_is_recognised_and_refused_with_the_reason(raw: str) -> None:
    with pytest.raises(ParseError, match=r"Ali Health \(AHM\) code; its field layout is not published"):
        parse_udi(raw)


def test_parse_ahm_refuses_text_without_the_ahm_prefix() -> None:
    with pytest.raises(ParseError, match="starts with 'AHM'"):
        parse_ahm("MA.156.M0.100000.1234567")


# --- properties -------------------------------------------------------------------------------

ALNUM = st.text(string.ascii_letters + string.digits, min_size=1, max_size=20)
DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


@given(
    registrant=st.text(string.digits, min_size=6, max_size=6),
    product=ALNUM,
    lot=ALNUM,
    serial=ALNUM,
    expiry=DATES,
    produced=DATES,
    long_years=st.booleans(),
    order=st.permutations(["L", "S", "E", "M"]),
)
def test_built_ma_codes_parse_back_to_their_fields(
    registrant: str,
    product: str,
    lot: str,
    serial: str,
    expiry: dt.date,
    produced: dt.date,
    long_years: bool,
    order: list[str],
) -> None:
    layout = "%Y%m%d" if long_years else "%y%m%d"
    values = {"L": lot, "S": serial, "E": expiry.strftime(layout), "M": produced.strftime(layout)}
    di = f"MA.156.M0.{registrant}.{product}"
    code = di + "".join(f".{flag}{values[flag]}" for flag in order)

    udi = parse_udi(code)

    assert _fields(udi) == ("MA", di, lot, serial, expiry, produced, ())


@given(tail=st.text(alphabet=st.sampled_from(list("MA.156LSEVPDC0123456789ab-\x1d ") + ["批"]), max_size=60))
def test_arbitrary_ma_shaped_text_raises_nothing_but_parse_error(tail: str) -> None:
    with contextlib.suppress(ParseError):
        parse_ma("MA." + tail)
