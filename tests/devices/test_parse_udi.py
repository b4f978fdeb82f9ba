"""Behaviour of parse_udi: one entry point that sends each scan to its issuer's parser."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from devices.identification import GS, ParseError, issuer_of, parse_udi
from devices.identification.hibc import HIBC_CHARACTERS, check_character

GS1_SCAN = f"]d201095012345678911726123110AB12{GS}21S1"
HIBC_SCAN = "+A99912345/$$52001510X33"
MA_SCAN = "MA.156.M0.100000.1234567.S1234567890.E261231.L2024A01"


@pytest.mark.parametrize(
    ("raw", "issuer", "di"),
    [
        pytest.param(GS1_SCAN, "GS1", "09501234567891", id="gs1-element-string"),
        pytest.param("(01)09501234567891(17)261231", "GS1", "09501234567891", id="gs1-hri"),
        pytest.param("https://id.gs1.org/01/09501234567891/10/AB12", "GS1", "09501234567891", id="gs1-digital-link"),
        pytest.param(HIBC_SCAN, "HIBCC", "A99912345", id="hibc"),
        pytest.param("*+A123BJC5D6E71G*", "HIBCC", "A123BJC5D6E71", id="hibc-code-39-text"),
        pytest.param("]d1+A123BJC5D6E71G", "HIBCC", "A123BJC5D6E71", id="hibc-datamatrix"),
        pytest.param(MA_SCAN, "MA", "MA.156.M0.100000.1234567", id="ma"),
        pytest.param("]Q1MA.156.M0.100000.1234567", "MA", "MA.156.M0.100000.1234567", id="ma-qr"),
    ],
)
def test_each_issuer_is_recognised_and_parsed(raw: str, issuer: str, di: str) -> None:
    udi = parse_udi(raw)

    assert (issuer_of(raw), udi.issuer, udi.di) == (issuer, issuer, di)


def test_ali_health_codes_are_recognised_but_refused() -> None:
    assert issuer_of("AHM0123456789") == "AHM"
    with pytest.raises(ParseError, match="Ali Health"):
        parse_udi("AHM0123456789")


def test_production_identifiers_are_read_for_every_issuer() -> None:
    gs1 = parse_udi(GS1_SCAN)
    hibc = parse_udi(HIBC_SCAN)
    ma = parse_udi(MA_SCAN)

    assert (gs1.lot, gs1.serial, gs1.expiry) == ("AB12", "S1", dt.date(2026, 12, 31))
    assert (hibc.lot, hibc.expiry) == ("10X3", dt.date(2020, 1, 15))
    assert (ma.lot, ma.serial, ma.expiry) == ("2024A01", "1234567890", dt.date(2026, 12, 31))


def test_gs1_separator_applies_to_gs1_and_is_ignored_by_other_issuers() -> None:
    assert parse_udi("01095012345678911726123110AB12|21S1", separator="|").serial == "S1"
    assert parse_udi(HIBC_SCAN, separator="|").lot == "10X3"
    assert parse_udi(MA_SCAN, separator="|").lot == "2024A01"


def test_empty_separator_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="separator"):
        parse_udi(HIBC_SCAN, separator="")


@pytest.mark.parametrize("raw", [b"+A123BJC5D6E71G", None, 42])
def test_non_text_input_raises_parse_error(raw: object) -> None:
    with pytest.raises(ParseError, match="must be text"):
        parse_udi(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("+H123PROD1/$$3250101LOT1Q", "check character is wrong", id="hibc-bad-check"),
        pytest.param("MA.156.M0", "too short", id="ma-truncated"),
        pytest.param("hello world", "Not a GS1 element string", id="plain-text"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_unusable_scans_name_what_was_wrong(raw: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_udi(raw)


# --- never crash ------------------------------------------------------------------------------

PREFIXES = st.sampled_from(
    ["", "+", "*+", "]C0+", "]d1", "]Q1", "MA.", "MA.156.M0.", "AHM", "01", "(01)", "]d2", "]A3+"]
)
SCANNER_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(HIBC_CHARACTERS + "()]^|<>/:?=*_.\x1d\r\nLSMEVDCdQae")),
        st.characters(),
    ),
    max_size=80,
)


@given(prefix=PREFIXES, body=SCANNER_TEXT, separator=st.sampled_from([None, "|", "<GS>", "^"]))
@example(prefix="+", body="", separator=None)
@example(prefix="]A3+", body="", separator=None)
@example(prefix="MA.", body="156.M0.100000.1.E000000", separator=None)
@example(prefix="+", body="A999/$$8", separator=None)
def test_arbitrary_text_raises_nothing_but_parse_error(prefix: str, body: str, separator: str | None) -> None:
    with contextlib.suppress(ParseError):
        parse_udi(prefix + body, separator=separator)


@given(prefix=PREFIXES, body=st.text(alphabet=HIBC_CHARACTERS, max_size=60))
def test_well_checked_hibc_shaped_text_raises_nothing_but_parse_error(prefix: str, body: str) -> None:
    data = "+" + body
    with contextlib.suppress(ParseError):
        parse_udi(prefix.rstrip("+") + data + check_character(data))


@given(data=st.binary(max_size=80), encoding=st.sampled_from(["latin-1", "utf-8", "cp1252", "gb18030"]))
def test_arbitrary_scanner_bytes_raise_nothing_but_parse_error(data: bytes, encoding: str) -> None:
    with contextlib.suppress(ParseError):
        parse_udi(data.decode(encoding, errors="replace"))
