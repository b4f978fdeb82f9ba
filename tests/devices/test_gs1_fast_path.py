"""The GS1 fast path (AIs 01, 11, 17, 10, 21) against biip: on any element string both give the same
UDI field for field, or the same refusal — the fast path reads what it is sure of and leaves the
rest to biip. Hypothesis builds the element strings from the pieces scanners send, valid or not."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devices.identification import ParseError, parse_udi
from devices.identification.gs1 import GS, _fast_elements, gtin_check_digit, parse_gs1

# The GS1 character set 82 and a few characters outside it (space, #, non-ASCII are refused earlier).
CHARSET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
VALUE_CHARACTERS = st.sampled_from(CHARSET_82 + "# $@[]{}|~" + GS)

digits = st.text(alphabet="0123456789", min_size=0, max_size=16)
gtin_bodies = st.text(alphabet="0123456789", min_size=13, max_size=13)


@st.composite
def gtins(draw) -> str:
    body = draw(gtin_bodies)
    check = gtin_check_digit(body) if draw(st.booleans()) else draw(st.sampled_from("0123456789"))
    return body + check


@st.composite
def dates(draw) -> str:
    """YYMMDD, mostly real dates; also day 00 (the month's last), month 00 or 13, day 32, Feb 30."""
    year = draw(st.integers(0, 99))
    month = draw(st.sampled_from([*range(1, 13), 0, 13]))
    day = draw(st.sampled_from([*range(0, 32), 32, 30]))
    return f"{year:02d}{month:02d}{day:02d}"


@st.composite
def elements(draw) -> tuple[str, bool]:
    """One element string and whether a GS must follow it when another comes after."""
    ai = draw(st.sampled_from(["01", "01", "17", "11", "10", "10", "21", "21", "30", "240", "7003", "99", "00"]))
    if ai == "01":
        value = draw(st.one_of(gtins(), digits))
    elif ai in ("11", "17"):
        value = draw(st.one_of(dates(), digits))
    elif ai in ("10", "21", "240", "99"):
        value = draw(st.text(alphabet=VALUE_CHARACTERS, min_size=0, max_size=24))
    elif ai == "7003":
        value = draw(st.text(alphabet="0123456789", min_size=8, max_size=11))
    else:
        value = draw(digits)
    return ai + value, ai not in ("01", "11", "17", "00")


@st.composite
def scans(draw) -> tuple[str, str | None]:
    parts = draw(st.lists(elements(), min_size=1, max_size=6))
    text = ""
    for index, (element, needs_separator) in enumerate(parts):
        text += element
        last = index == len(parts) - 1
        if not last and (needs_separator or draw(st.integers(0, 4)) == 0):
            text += GS * draw(st.integers(1, 2))
    prefix = draw(st.sampled_from(["", "", "]d2", "]C1", "]Q3", "]e0", "]C0", "]d1", "]E0", GS]))
    separator = draw(st.sampled_from([None, None, "|", "<GS>"]))
    if separator is not None:
        text = text.replace(GS, separator)
    return prefix + text + draw(st.sampled_from(["", "\r\n", GS])), separator


def outcome(raw: str, separator: str | None, *, fast: bool) -> object:
    try:
        return parse_gs1(raw, separator=separator, fast=fast)
    except ParseError as error:
        return ("refused", error.reason, error.params)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scan=scans())
@example(scan=(f"]d201095012345678911726123110AB12{GS}21S1", None))
@example(scan=("17261231", None))  # a bare GTIN-8 as well as a date: refused as a bare GTIN by both
@example(scan=("0109501234567891170000001012345678901234567890123", None))  # (10) longer than 20
@example(scan=(f"010950123456789117260200{GS}21A", None))  # day 00: the last of February
def test_the_fast_path_and_biip_agree_field_for_field_or_refuse_alike(scan):
    raw, separator = scan
    assert outcome(raw, separator, fast=True) == outcome(raw, separator, fast=False)


@pytest.mark.parametrize("raw", [
    f"]d201095012345678911726123110AB12{GS}21S1",
    "0109501234567891172612311123010110LOT-7/A",
    f"{GS}01095012345678912112345{GS}10X",
])
def test_the_common_layouts_take_the_fast_path(raw):
    assert _fast_elements(raw.strip()) is not None
    assert parse_udi(raw) == parse_gs1(raw, fast=False)


@pytest.mark.parametrize("raw", [
    "(01)09501234567891(17)261231",  # human-readable
    "https://id.gs1.org/01/09501234567891/10/AB",  # Digital Link
    "010950123456789130100",  # (30), another AI
    "]C00109501234567891",  # not a GS1 symbology
    "0109501234567891171302301",  # 30 February
    "010950123456789110A B",  # a space in the lot
])
def test_anything_else_is_left_to_biip(raw):
    assert _fast_elements(raw) is None


@st.composite
def common_scans(draw) -> str:
    """The layout on most labels, well formed: (01) then (11)/(17)/(10)/(21) in any order, the lot and
    serial from the whole character set 82 — mostly fast-path reads, whose fields must be biip's."""
    body = draw(gtin_bodies)
    text = "01" + body + gtin_check_digit(body)
    others = draw(st.lists(st.sampled_from(["11", "17", "10", "21"]), unique=True, max_size=4))
    for index, ai in enumerate(others):
        if ai in ("11", "17"):
            text += ai + draw(dates())
            continue
        text += ai + draw(st.text(alphabet=CHARSET_82, min_size=1, max_size=20))
        if index < len(others) - 1:
            text += GS
    return draw(st.sampled_from(["", "]d2", "]C1"])) + text


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=common_scans())
def test_on_common_labels_the_fast_path_reads_exactly_what_biip_reads(raw):
    assert outcome(raw, None, fast=True) == outcome(raw, None, fast=False)
