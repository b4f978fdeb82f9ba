"""Encode and decode RFID EPCs in the SGTIN-96 scheme (GS1 EPC Tag Data Standard, TDS).

An SGTIN-96 EPC is 96 bits, written as 24 hex digits:

    header 8 bits (0x30) | filter 3 | partition 3 | company prefix 20-40 | item reference 24-4 | serial 38

The partition value P (0-6) says how the 44 bits after it split between company prefix
(12 - P digits) and indicator digit + item reference (the other 13 - 12 + P digits); 7 is
reserved. The check digit of the GTIN is not stored and is recomputed on decoding.

The partition arithmetic is epcpy's (pure Python, no prefix lists and no network); this
module checks the input first, so callers only ever see ParseError, and reads the filter
value that epcpy's decoder drops. Smart cabinets often write vendor-specific EPCs instead:
the tag-binding table stays the source of truth, and `epc_to_gtin_serial` is a hint for a
tag nobody has bound yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue
from epcpy.utils.common import ConvertException

from devices.identification.gs1 import is_valid_gtin
from devices.identification.parsed import ParseError, show

__all__ = ["SGTIN96_HEADER", "Sgtin", "decode_sgtin96", "encode_sgtin96", "epc_to_gtin_serial"]

SGTIN96_HEADER = 0x30
_HEX = re.compile(r"[0-9A-Fa-f]+")
_BITS = 96
_MAX_SERIAL = 2**38 - 1
_COMPANY_PREFIX_LENGTHS = range(6, 13)
_RESERVED_PARTITION = 7


@dataclass(frozen=True)
class Sgtin:
    """A decoded SGTIN-96: the GTIN-14 and serial of one item, and how its tag was encoded."""

    gtin14: str
    serial: int
    filter: int
    company_prefix_length: int


def decode_sgtin96(hex_epc: str) -> Sgtin:
    """Decode a 24-hex-digit SGTIN-96 EPC (upper or lower case, surrounding spaces ignored).

    Raises ParseError for text that is not 24 hex digits, a header other than 0x30, the
    reserved partition 7, or a company prefix / item reference too large for its digits.
    """
    bits = _bits(hex_epc)
    if len(bits) != _BITS:
        raise ParseError(f"An SGTIN-96 EPC is 24 hex digits; {show(hex_epc)} has {len(bits) // 4}")
    header = int(bits[:8], 2)
    if header != SGTIN96_HEADER:
        raise ParseError(f"EPC {show(hex_epc)} has header 0x{header:02X}, not 0x30 (SGTIN-96)")
    partition = int(bits[11:14], 2)
    if partition == _RESERVED_PARTITION:
        raise ParseError(f"EPC {show(hex_epc)} uses partition 7, which the Tag Data Standard reserves")
    try:
        sgtin = SGTIN.from_binary(bits)
    except (ConvertException, ValueError) as exc:
        raise ParseError(f"EPC {show(hex_epc)} is not a valid SGTIN-96: {_reason(exc)}") from exc
    # The pure identity URI is urn:epc:id:sgtin:<company prefix>.<indicator + item ref>.<serial>.
    company_prefix, _, serial = sgtin.epc_uri.rsplit(":", 1)[1].split(".")
    return Sgtin(
        gtin14=sgtin.gtin(),
        serial=int(serial),
        filter=int(bits[8:11], 2),
        company_prefix_length=len(company_prefix),
    )


def encode_sgtin96(gtin14: str, serial: int, *, company_prefix_length: int, filter_value: int = 1) -> str:
    """Encode a GTIN-14 and a numeric serial as an SGTIN-96 EPC in 24 upper-case hex digits.

    `company_prefix_length` (6-12) is the length of the GS1 company prefix inside the GTIN,
    which the GTIN itself does not tell; `filter_value` 1 is "point of sale trade item".
    Raises ParseError for a GTIN with a wrong check digit, a serial outside 0..2^38-1, or a
    prefix length or filter value out of range.
    """
    if not isinstance(gtin14, str) or len(gtin14) != 14 or not is_valid_gtin(gtin14):
        raise ParseError(f"{gtin14!r} is not a GTIN-14 with a correct check digit")
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial <= _MAX_SERIAL:
        raise ParseError(f"An SGTIN-96 serial is an integer from 0 to {_MAX_SERIAL}, got {serial!r}")
    if company_prefix_length not in _COMPANY_PREFIX_LENGTHS:
        raise ParseError(f"Company prefix length must be 6 to 12 digits, got {company_prefix_length!r}")
    if filter_value not in range(8):
        raise ParseError(f"Filter value must be 0 to 7, got {filter_value!r}")
    try:
        sgtin = SGTIN.from_gtin_plus_serial(gtin14, str(serial), company_prefix_length)
        bits = sgtin.binary(
            binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96,
            filter_value=SGTINFilterValue(str(filter_value)),
        )
    except (ConvertException, ValueError) as exc:
        raise ParseError(f"Cannot encode {gtin14} serial {serial} as SGTIN-96: {_reason(exc)}") from exc
    return f"{int(bits, 2):0{_BITS // 4}X}"


def epc_to_gtin_serial(hex_epc: str) -> tuple[str, int] | None:
    """Return (GTIN-14, serial) if `hex_epc` is a well-formed SGTIN-96, else None.

    None covers every EPC that is hex but not a decodable SGTIN-96: other schemes, other
    lengths, and vendor-specific data that happens to start with 0x30. Only text that is not
    hexadecimal at all raises ParseError, since it is no EPC of any kind.
    """
    bits = _bits(hex_epc)
    if len(bits) != _BITS or int(bits[:8], 2) != SGTIN96_HEADER:
        return None
    try:
        sgtin = decode_sgtin96(hex_epc)
    except ParseError:
        return None
    return sgtin.gtin14, sgtin.serial


def _bits(hex_epc: str) -> str:
    if not isinstance(hex_epc, str):
        raise ParseError(f"EPC must be text, got {type(hex_epc).__name__}")
    text = hex_epc.strip()
    if not _HEX.fullmatch(text):
        raise ParseError(f"EPC {show(hex_epc)} is not hexadecimal")
    return f"{int(text, 16):0{len(text) * 4}b}"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
