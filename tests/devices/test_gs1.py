"""Behaviour of the GS1 UDI parser used when receiving medical consumables."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from devices.identification import ParsedUDI, ParseError
from devices.identification.gs1 import GS, gtin_check_digit, is_valid_gtin, parse_gs1

HRI = "(01)09501234567891(17)261231(10)AB12(21)S1"
ELEMENT_STRING = f"01095012345678911726123110AB12{GS}21S1"


def _fields(udi: ParsedUDI) -> tuple[object, ...]:
    return (udi.issuer, udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date, udi.normalized)


EXPECTED = ("GS1", "09501234567891", "AB12", "S1", dt.date(2026, 12, 31), None, HRI)


@pytest.mark.parametrize(
    ("raw", "separator"),
    [
        pytest.param(ELEMENT_STRING, None, id="bare-gs"),
        pytest.param(f"]d2{ELEMENT_STRING}", None, id="datamatrix-aim"),
        pytest.param(f"]C1{ELEMENT_STRING}", None, id="gs1-128-aim"),
        pytest.param(f"]Q3{ELEMENT_STRING}", None, id="gs1-qr-aim"),
        pytest.param(f"]e0{ELEMENT_STRING}", None, id="databar-aim"),
        pytest.param(f"{GS}{ELEMENT_STRING}", None, id="leading-fnc1"),
        pytest.param(f"  ]d2{ELEMENT_STRING}{GS}\r\n", None, id="whitespace-and-crlf"),
        pytest.param(HRI, None, id="hri"),
        pytest.param("(01) 09501234567891 (17) 261231 (10) AB12 (21) S1\n", None, id="hri-with-spaces"),
        pytest.param("01095012345678911726123110AB12|21S1", "|", id="pipe-separator"),
        pytest.param("]d201095012345678911726123110AB12^21S1\r", "^", id="caret-separator"),
        pytest.param("01095012345678911726123110AB12<GS>21S1<GS>", "<GS>", id="literal-gs-text"),
    ],
)
def test_every_scanned_form_of_the_same_label_gives_the_same_fields(raw: str, separator: str | None) -> None:
    udi = parse_gs1(raw, separator=separator)

    assert _fields(udi) == EXPECTED
    assert udi.raw == raw


def test_normalized_form_parses_back_to_the_same_udi() -> None:
    udi = parse_gs1(f"]d2{ELEMENT_STRING}")

    assert _fields(parse_gs1(udi.normalized)) == _fields(udi)


def test_normalized_form_keeps_the_ai_order_of_the_scan() -> None:
    udi = parse_gs1(f"0109501234567891{'21'}S1{GS}10AB12{GS}17261231")

    assert udi.normalized == "(01)09501234567891(21)S1(10)AB12(17)261231"


def test_gs1_digital_link_uri_is_accepted() -> None:
    udi = parse_gs1("https://id.gs1.org/01/09501234567891/10/AB12/21/S1?17=261231")

    assert (udi.di, udi.lot, udi.serial, udi.expiry) == (
        "09501234567891",
        "AB12",
        "S1",
        dt.date(2026, 12, 31),
    )


def test_gtin_with_wrong_check_digit_is_refused() -> None:
    with pytest.raises(ParseError, match=r"GTIN check digit .*expected 1, got 0"):
        parse_gs1(f"]d201095012345678901726123110AB12{GS}21S1")


def test_gtin_with_wrong_check_digit_is_refused_in_hri_form() -> None:
    with pytest.raises(ParseError, match="GTIN check digit"):
        parse_gs1("(01)09501234567890(17)261231")


@pytest.mark.parametrize(
    ("yymm00", "last_day"),
    [
        ("261100", dt.date(2026, 11, 30)),
        ("261200", dt.date(2026, 12, 31)),
        ("270200", dt.date(2027, 2, 28)),
        ("280200", dt.date(2028, 2, 29)),
        ("240200", dt.date(2024, 2, 29)),
    ],
)
def test_expiry_day_00_means_last_day_of_that_month(yymm00: str, last_day: dt.date) -> None:
    assert parse_gs1(f"0109501234567891{'17'}{yymm00}10L1").expiry == last_day


def test_production_date_day_00_means_last_day_of_that_month() -> None:
    assert parse_gs1("(01)09501234567891(11)240200").production_date == dt.date(2024, 2, 29)


def test_impossible_expiry_date_is_refused() -> None:
    with pytest.raises(ParseError):
        parse_gs1("(01)09501234567891(17)270229")


def test_variable_length_lot_is_terminated_by_gs_before_the_next_field() -> None:
    udi = parse_gs1(f"010950123456789110LOT-2024/07.A{GS}17270131{GS}21SN0001")

    assert (udi.lot, udi.expiry, udi.serial) == ("LOT-2024/07.A", dt.date(2027, 1, 31), "SN0001")


def test_variable_length_serial_is_terminated_by_gs_before_the_lot() -> None:
    udi = parse_gs1(f"010950123456789121{'1' * 20}{GS}10{'2' * 20}")

    assert (udi.serial, udi.lot) == ("1" * 20, "2" * 20)


def test_digits_of_a_lot_look_like_an_ai_without_gs_are_kept_in_the_lot() -> None:
    # Without GS a scanner gives no way to tell where the lot ends; the digits stay in it.
    assert parse_gs1("0109501234567891100117261231").lot == "0117261231"


def test_substitute_separator_is_only_applied_when_configured() -> None:
    with pytest.raises(ParseError):
        parse_gs1("01095012345678911726123110AB12|21S1")


def test_empty_substitute_separator_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="separator"):
        parse_gs1(ELEMENT_STRING, separator="")


def test_lot_serial_and_dates_are_empty_when_absent() -> None:
    udi = parse_gs1("]d20109501234567891")

    assert (udi.lot, udi.serial, udi.expiry, udi.production_date) == ("", "", None, None)


def test_other_ais_are_accepted_and_exposed_in_scan_order() -> None:
    udi = parse_gs1(f"0109501234567891240REF-77{GS}3010{GS}7003270131123010X1")

    assert udi.lot == "X1"
    assert udi.other_ais == (("240", "REF-77"), ("30", "10"), ("7003", "2701311230"))


def test_repeated_ai_with_different_values_is_refused() -> None:
    with pytest.raises(ParseError, match=r"\(10\) appears twice"):
        parse_gs1(f"010950123456789110A{GS}10B")


def test_udi_without_gtin_is_refused() -> None:
    with pytest.raises(ParseError, match="No GTIN"):
        parse_gs1(f"10AB12{GS}17261231")


@pytest.mark.parametrize("raw", ["4006381333931", "]E04006381333931", "09501234567891"])
def test_bare_linear_gtin_is_refused_as_not_a_udi(raw: str) -> None:
    with pytest.raises(ParseError):
        parse_gs1(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param(" \r\n", id="whitespace"),
        pytest.param(GS * 3, id="only-separators"),
        pytest.param("]", id="lone-bracket"),
        pytest.param("]d", id="truncated-aim"),
        pytest.param("]X", id="aim-without-data"),
        pytest.param("hello world", id="text"),
        pytest.param("+H123PROD1/$$3250101LOT1Q", id="hibcc-is-not-gs1"),
        pytest.param("0109501234567891\uff21\uff22", id="fullwidth"),
        pytest.param("01" + "".join(chr(0x660 + int(d)) for d in "09501234567891"), id="arabic-indic-digits"),
        pytest.param("010950123456789", id="short-gtin"),
        pytest.param("(01)09501234567891(10)", id="hri-empty-value"),
        pytest.param("(01)09501234567891(999)X", id="hri-unknown-ai"),
        pytest.param("(01", id="hri-truncated"),
        pytest.param("()", id="hri-empty-ai"),
        pytest.param("https://example.com/not-a-udi", id="foreign-url"),
    ],
)
def test_garbage_raises_parse_error(raw: str) -> None:
    with pytest.raises(ParseError):
        parse_gs1(raw)


def test_non_text_input_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="must be text"):
        parse_gs1(b"0109501234567891")  # type: ignore[arg-type]


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)


# Realistic labels: layouts as printed on sterile single-use devices, implants and IVD kits.
CORPUS = [
    pytest.param(
        f"]d2010690362108321311240312172903111024C123{GS}21000000458",
        ("06903621083213", "24C123", "000000458", dt.date(2029, 3, 11), dt.date(2024, 3, 12)),
        id="syringe-datamatrix",
    ),
    pytest.param(
        "(01)00885074123455(17)280630(10)7284451",
        ("00885074123455", "7284451", "", dt.date(2028, 6, 30), None),
        id="catheter-gs1-128-hri",
    ),
    pytest.param(
        f"]C1010088507412345517280600107284451{GS}",
        ("00885074123455", "7284451", "", dt.date(2028, 6, 30), None),
        id="catheter-gs1-128-day-00",
    ),
    pytest.param(
        f"0104035479123451112503051727030421OS-2503-00781{GS}10B2503{GS}",
        ("04035479123451", "B2503", "OS-2503-00781", dt.date(2027, 3, 4), dt.date(2025, 3, 5)),
        id="orthopaedic-implant-serialised",
    ),
    pytest.param(
        f"]d2010692026700004617261100102611A{GS}240KIT-48T",
        ("06920267000046", "2611A", "", dt.date(2026, 11, 30), None),
        id="ivd-kit-with-additional-id",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CORPUS)
def test_realistic_device_labels(raw: str, expected: tuple[object, ...]) -> None:
    udi = parse_gs1(raw)

    assert (udi.di, udi.lot, udi.serial, udi.expiry, udi.production_date) == expected


def test_corpus_gtins_are_valid() -> None:
    for param in CORPUS:
        assert is_valid_gtin(param.values[1][0])  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("0950123456789", "1"),
        ("400638133393", "1"),
        ("0088507412345", "5"),
        ("978030640615", "7"),
        ("0", "0"),
    ],
)
def test_gtin_check_digit_follows_gs1_mod_10(body: str, check: str) -> None:
    assert gtin_check_digit(body) == check


@pytest.mark.parametrize("body", ["", "12a4", "\uff11\uff12\uff13", "\u0660\u0669\u0665"])
def test_gtin_check_digit_rejects_non_digits(body: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        gtin_check_digit(body)


@pytest.mark.parametrize("code", ["09501234567891", "4006381333931", "036000291452", "96385074"])
def test_valid_gtins_of_every_length_are_accepted(code: str) -> None:
    assert is_valid_gtin(code)


INVALID_GTINS = ["09501234567890", "4006381333932", "", "123", "095012345678911", "0950123456789X"]


@pytest.mark.parametrize("code", INVALID_GTINS)
def test_invalid_gtins_are_rejected(code: str) -> None:
    assert not is_valid_gtin(code)


# --- properties -------------------------------------------------------------------------

# biip resolves two-digit years in a sliding window around the current year (GS1 GenSpecs 7.12).
_THIS_YEAR = dt.date.today().year
DATES = st.dates(min_value=dt.date(_THIS_YEAR - 30, 1, 1), max_value=dt.date(_THIS_YEAR + 30, 12, 31))
GTIN_BODIES = st.text(alphabet="0123456789", min_size=13, max_size=13)
ALNUM = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=20)
SYMBOLOGY = st.sampled_from(["", "]d2", "]C1", "]Q3", "]e0"])


def _yymmdd(date: dt.date) -> str:
    return date.strftime("%y%m%d")


@given(body=GTIN_BODIES, lot=ALNUM, serial=ALNUM, expiry=DATES, prefix=SYMBOLOGY)
@example(body="0950123456789", lot="0117", serial="1", expiry=dt.date(2026, 12, 31), prefix="")
def test_gs_and_hri_forms_round_trip(body: str, lot: str, serial: str, expiry: dt.date, prefix: str) -> None:
    di = body + gtin_check_digit(body)
    element_string = f"{prefix}01{di}17{_yymmdd(expiry)}10{lot}{GS}21{serial}\r\n"
    hri = f"(01){di}(17){_yymmdd(expiry)}(10){lot}(21){serial}"

    from_scan = parse_gs1(element_string)
    from_hri = parse_gs1(hri)

    assert (from_scan.di, from_scan.lot, from_scan.serial, from_scan.expiry) == (di, lot, serial, expiry)
    assert from_scan.normalized == hri
    assert _fields(from_hri) == _fields(from_scan)


SUBSTITUTES = st.sampled_from(["|", "^", "<GS>", "~"])


@given(body=GTIN_BODIES, lot=ALNUM, serial=ALNUM, produced=DATES, separator=SUBSTITUTES)
def test_substitute_round_trip(body: str, lot: str, serial: str, produced: dt.date, separator: str) -> None:
    di = body + gtin_check_digit(body)
    scan = f"]d201{di}10{lot}{separator}11{_yymmdd(produced)}21{serial}{separator}"

    udi = parse_gs1(scan, separator=separator)

    assert (udi.di, udi.lot, udi.serial, udi.production_date) == (di, lot, serial, produced)


@given(year=st.integers(_THIS_YEAR - 30, _THIS_YEAR + 30), month=st.integers(1, 12))
def test_day_00_is_always_the_last_day_of_the_month(year: int, month: int) -> None:
    udi = parse_gs1(f"(01)09501234567891(17){year % 100:02d}{month:02d}00")

    assert udi.expiry == dt.date(year, month, calendar.monthrange(year, month)[1])


@given(body=GTIN_BODIES, wrong=st.integers(1, 9))
def test_any_wrong_check_digit_is_refused(body: str, wrong: int) -> None:
    bad = str((int(gtin_check_digit(body)) + wrong) % 10)

    with pytest.raises(ParseError, match="GTIN check digit"):
        parse_gs1(f"01{body}{bad}10LOT1")


SCANNER_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list("0123456789()]^|<>GS/:?=\x1d\r\n dCQe")), st.characters()),
    max_size=80,
)


@given(raw=st.one_of(st.text(), SCANNER_TEXT), separator=st.sampled_from([None, "|", "<GS>", "^"]))
@example(raw="]", separator=None)
@example(raw="]X0", separator=None)
@example(raw="(01)(10)", separator=None)
def test_arbitrary_text_raises_nothing_but_parse_error(raw: str, separator: str | None) -> None:
    with contextlib.suppress(ParseError):
        parse_gs1(raw, separator=separator)


@given(data=st.binary(max_size=80), encoding=st.sampled_from(["latin-1", "utf-8", "cp1252", "gb18030"]))
def test_arbitrary_scanner_bytes_raise_nothing_but_parse_error(data: bytes, encoding: str) -> None:
    with contextlib.suppress(ParseError):
        parse_gs1(data.decode(encoding, errors="replace"))
