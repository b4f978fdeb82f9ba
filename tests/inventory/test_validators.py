"""Behaviour of the unified social credit code (GB 32100-2015) validator."""

from __future__ import annotations

import contextlib

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from inventory.validators import (
    USCC_CHARSET,
    looks_like_personal_id,
    make_uscc,
    personal_id_problems,
    uscc_check_character,
    validate_uscc,
)

REAL_CODES = ["91350100M000100Y43", "91110000802100433B"]


def _message(code: object) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_uscc(code)  # type: ignore[arg-type]
    return caught.value.messages[0]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code: str) -> None:
    validate_uscc(code)


@pytest.mark.parametrize("code", REAL_CODES)
def test_check_character_of_real_codes_is_recomputed(code: str) -> None:
    assert uscc_check_character(code[:17]) == code[17]
    assert make_uscc(code[:17]) == code


def test_check_character_zero_when_weighted_sum_is_a_multiple_of_31() -> None:
    assert uscc_check_character("0" * 17) == "0"


def test_charset_excludes_easily_misread_letters() -> None:
    assert len(USCC_CHARSET) == 31
    assert not set("IOSVZ") & set(USCC_CHARSET)


@pytest.mark.parametrize("code", ["", "91350100M000100Y4", "91350100M000100Y433"])
def test_wrong_length_is_reported(code: str) -> None:
    assert f"18 characters long, got {len(code)}" in _message(code)


def test_wrong_check_character_names_the_expected_one() -> None:
    message = _message("91350100M000100Y44")

    assert "check character" in message
    assert "expected '3'" in message
    assert "got '4'" in message


EXCLUDED_LETTERS = [("91350100I000100Y43", "I", 9), ("9135010OM000100Y43", "O", 8)]


@pytest.mark.parametrize(("code", "char", "position"), EXCLUDED_LETTERS)
def test_excluded_letter_is_reported_with_its_position(code: str, char: str, position: int) -> None:
    message = _message(code)

    assert f"invalid character {char!r} at position {position}" in message


def test_lower_case_letter_is_reported_with_a_hint() -> None:
    assert "upper case" in _message("91350100m000100Y43")


def test_non_text_value_is_rejected() -> None:
    assert "must be text" in _message(913501)


def test_validation_errors_carry_distinct_codes() -> None:
    codes = []
    for value in ["short", "91350100I000100Y43", "91350100M000100Y44"]:
        with pytest.raises(ValidationError) as caught:
            validate_uscc(value)
        codes.append(caught.value.code)

    assert codes == ["uscc_length", "uscc_character", "uscc_check"]


@pytest.mark.parametrize("first17", ["9135010", "91350100I000100Y4"])
def test_check_character_helper_rejects_malformed_input(first17: str) -> None:
    with pytest.raises(ValueError, match=r"Expected 17 characters|Invalid character"):
        uscc_check_character(first17)


FIRST17 = st.text(alphabet=USCC_CHARSET, min_size=17, max_size=17)


@given(first17=FIRST17)
def test_made_codes_always_validate(first17: str) -> None:
    validate_uscc(make_uscc(first17))


@given(first17=FIRST17, position=st.integers(0, 17), data=st.data())
def test_any_single_substitution_is_detected(first17: str, position: int, data: st.DataObject) -> None:
    code = make_uscc(first17)
    replacement = data.draw(st.sampled_from([c for c in USCC_CHARSET if c != code[position]]))
    corrupted = code[:position] + replacement + code[position + 1 :]

    with pytest.raises(ValidationError):
        validate_uscc(corrupted)


@given(code=st.text(max_size=25))
def test_arbitrary_text_raises_nothing_but_validation_error(code: str) -> None:
    with contextlib.suppress(ValidationError):
        validate_uscc(code)


@pytest.mark.parametrize(("text", "holds"), [
    ("11010519491231002X", True),  # a whole value of that shape, check digit or not
    ("110105194912310021", True),
    ("患者 11010519491231002X 术后", True),  # inside text, with a valid check character
    ("11010519491231002x", True),
    ("ID:110105199003071239;", True),
    ("医嘱 110105199003071230", False),  # 18 digits whose check digit is wrong: an order number
    ("ZY2026112300000000000001", False),  # longer runs of digits are not identity numbers
    ("OP-77", False),
    ("", False),
])
def test_identity_numbers_are_found_as_whole_values_and_inside_text(text: str, holds: bool) -> None:
    assert looks_like_personal_id(text) is holds


def test_every_field_holding_an_identity_number_is_named() -> None:
    problems = personal_id_problems(note="见 110105199003071239", reason="损坏", doctor="110105194912310021")
    assert [problem.params["field"] for problem in problems] == ["note", "doctor"]
