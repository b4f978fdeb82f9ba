"""Behaviour of the SGTIN-96 codec used for RFID tags in smart cabinets."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.identification import ParseError, gtin_check_digit
from devices.identification.epc import Sgtin, decode_sgtin96, encode_sgtin96, epc_to_gtin_serial

# The worked example of the GS1 EPC Tag Data Standard: urn:epc:tag:sgtin-96:3.0614141.812345.6789
TDS_EXAMPLE = "3074257BF7194E4000001A85"


def test_tag_data_standard_example_decodes() -> None:
    assert decode_sgtin96(TDS_EXAMPLE) == Sgtin(gtin14="80614141123458", serial=6789, filter=3, company_prefix_length=7)


def test_tag_data_standard_example_encodes() -> None:
    assert encode_sgtin96("80614141123458", 6789, company_prefix_length=7, filter_value=3) == TDS_EXAMPLE


def test_lower_case_and_surrounding_spaces_are_accepted() -> None:
    assert decode_sgtin96(f" {TDS_EXAMPLE.lower()}\r\n").gtin14 == "80614141123458"


def test_filter_value_defaults_to_point_of_sale_item() -> None:
    epc = encode_sgtin96("06901234567892", 1, company_prefix_length=7)

    assert decode_sgtin96(epc).filter == 1


@pytest.mark.parametrize(
    ("company_prefix_length", "serial"),
    [(6, 0), (7, 1), (8, 123456), (9, 2**38 - 1), (10, 42), (11, 7), (12, 99)],
)
def test_every_partition_round_trips(company_prefix_length: int, serial: int) -> None:
    epc = encode_sgtin96("06901234567892", serial, company_prefix_length=company_prefix_length)

    assert len(epc) == 24
    assert decode_sgtin96(epc) == Sgtin("06901234567892", serial, 1, company_prefix_length)


@pytest.mark.parametrize(
    ("hex_epc", "reason"),
    [
        pytest.param("", "not hexadecimal", id="empty"),
        pytest.param("30G4257BF7194E4000001A85", "not hexadecimal", id="non-hex"),
        pytest.param("0x3074257BF7194E4000001A85", "not hexadecimal", id="0x-prefix"),
        pytest.param("\uff13\uff10", "not hexadecimal", id="fullwidth-digits"),
        pytest.param("3074257BF7194E4000001A", "24 hex digits", id="too-short"),
        pytest.param(TDS_EXAMPLE + "00", "24 hex digits", id="too-long"),
        pytest.param("E2003412012345678901ABCD", "header 0xE2", id="vendor-header"),
        pytest.param("3674257BF7194E4000001A85", "header 0x36, not 0x30", id="sgtin-198-header"),
        pytest.param("307C257BF7194E4000001A85", "partition 7", id="reserved-partition"),
        pytest.param("3023FFFFFFFFFC0000000000", "not a valid SGTIN-96", id="company-prefix-overflow"),
    ],
)
def test_bad_epcs_are_refused_with_the_reason(hex_epc: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        decode_sgtin96(hex_epc)


@pytest.mark.parametrize(
    ("gtin14", "serial", "kwargs", "reason"),
    [
        ("06901234567891", 1, {"company_prefix_length": 7}, "check digit"),
        ("6901234567892", 1, {"company_prefix_length": 7}, "GTIN-14"),
        ("06901234567892", -1, {"company_prefix_length": 7}, "serial"),
        ("06901234567892", 2**38, {"company_prefix_length": 7}, "serial"),
        ("06901234567892", True, {"company_prefix_length": 7}, "serial"),
        ("06901234567892", 1, {"company_prefix_length": 5}, "prefix length"),
        ("06901234567892", 1, {"company_prefix_length": 13}, "prefix length"),
        ("06901234567892", 1, {"company_prefix_length": 7, "filter_value": 8}, "Filter value"),
    ],
)
def test_bad_encode_arguments_are_refused(gtin14: str, serial: int, kwargs: dict[str, int], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        encode_sgtin96(gtin14, serial, **kwargs)


def test_epc_to_gtin_serial_reads_sgtin_96() -> None:
    assert epc_to_gtin_serial(TDS_EXAMPLE) == ("80614141123458", 6789)


@pytest.mark.parametrize(
    "hex_epc",
    [
        pytest.param("E2003412012345678901ABCD", id="vendor-96-bit"),
        pytest.param("E28011700000020F6E3D5C1A0000", id="vendor-112-bit"),
        pytest.param("3074257BF7194E40", id="sgtin-header-short"),
        pytest.param("307C257BF7194E4000001A85", id="sgtin-header-reserved-partition"),
        pytest.param("3023FFFFFFFFFC0000000000", id="sgtin-header-overflow"),
    ],
)
def test_epc_to_gtin_serial_gives_none_for_what_is_not_an_sgtin_96(hex_epc: str) -> None:
    assert epc_to_gtin_serial(hex_epc) is None


def test_epc_to_gtin_serial_refuses_text_that_is_no_epc() -> None:
    with pytest.raises(ParseError, match="not hexadecimal"):
        epc_to_gtin_serial("not-an-epc")


# --- properties -------------------------------------------------------------------------------

GTIN_BODIES = st.text(alphabet="0123456789", min_size=13, max_size=13)


@given(
    body=GTIN_BODIES,
    serial=st.integers(0, 2**38 - 1),
    company_prefix_length=st.integers(6, 12),
    filter_value=st.integers(0, 7),
)
def test_encode_then_decode_round_trips(body: str, serial: int, company_prefix_length: int, filter_value: int) -> None:
    gtin14 = body + gtin_check_digit(body)

    epc = encode_sgtin96(gtin14, serial, company_prefix_length=company_prefix_length, filter_value=filter_value)

    assert decode_sgtin96(epc) == Sgtin(gtin14, serial, filter_value, company_prefix_length)
    assert epc_to_gtin_serial(epc) == (gtin14, serial)


@given(data=st.binary(min_size=12, max_size=12))
def test_any_96_bits_decode_or_raise_parse_error(data: bytes) -> None:
    hex_epc = "30" + data.hex()[2:]
    with contextlib.suppress(ParseError):
        sgtin = decode_sgtin96(hex_epc)
        assert (
            encode_sgtin96(
                sgtin.gtin14, sgtin.serial, company_prefix_length=sgtin.company_prefix_length, filter_value=sgtin.filter
            )
            == hex_epc.upper()
        )


@given(text=st.text(max_size=40))
def test_arbitrary_text_raises_nothing_but_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        epc_to_gtin_serial(text)
    with contextlib.suppress(ParseError):
        decode_sgtin96(text)
