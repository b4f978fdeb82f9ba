"""Validation of identifiers: China's unified social credit code (统一社会信用代码, GB 32100-2015)
and the HIS references that stand in for patients (never a personal identity number).

Suppliers and manufacturers of medical consumables are identified by this code on
their business licences and registration certificates; a mistyped code would attach
stock and invoices to the wrong legal entity, so the check character is verified
rather than only the length.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

__all__ = [
    "USCC_CHARSET", "is_his_reference", "looks_like_personal_id", "make_uscc", "personal_id_problems",
    "refuse_personal_ids", "uscc_check_character", "validate_uscc",
]

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code characters in value order; I, O, S, V and Z are excluded as easily misread."""

_VALUES = {char: value for value, char in enumerate(USCC_CHARSET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_LENGTH = 18


def uscc_check_character(first17: str) -> str:
    """Return the 18th (check) character for the first 17 characters of a code.

    Raises ValueError for a wrong length or a character outside the code charset, since
    this helper is meant for generating codes, not for user input (see validate_uscc).
    """
    if len(first17) != _LENGTH - 1:
        raise ValueError(f"Expected 17 characters, got {len(first17)}: {first17!r}")
    for position, char in enumerate(first17, start=1):
        if char not in _VALUES:
            raise ValueError(f"Invalid character {char!r} at position {position} of {first17!r}")
    total = sum(_VALUES[char] * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return USCC_CHARSET[-total % 31]


def make_uscc(first17: str) -> str:
    """Complete the first 17 characters into a valid code, for demo data and tests."""
    return first17 + uscc_check_character(first17)


def validate_uscc(code: str) -> None:
    """Django validator: raise ValidationError unless `code` is a well-formed USCC.

    The message says what is wrong (length, which character, or which check character was
    expected) so that staff can correct a typo against the paper licence.
    """
    if not isinstance(code, str):
        raise ValidationError(
            "Unified social credit code must be text, got %(type)s.",
            code="uscc_type",
            params={"type": type(code).__name__},
        )
    if len(code) != _LENGTH:
        raise ValidationError(
            "Unified social credit code must be 18 characters long, got %(length)d.",
            code="uscc_length",
            params={"length": len(code)},
        )
    for position, char in enumerate(code, start=1):
        if char not in _VALUES:
            hint = " (letters must be upper case)" if char.upper() in _VALUES else ""
            raise ValidationError(
                "Unified social credit code contains the invalid character %(char)r at position "
                "%(position)d%(hint)s; allowed are digits and the letters %(letters)s.",
                code="uscc_character",
                params={"char": char, "position": position, "hint": hint, "letters": USCC_CHARSET[10:]},
            )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise ValidationError(
            "Unified social credit code check character is wrong: expected %(expected)r, got %(actual)r.",
            code="uscc_check",
            params={"expected": expected, "actual": code[17]},
        )


HIS_REFERENCE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# An 18-character resident identity number (GB 11643): 17 digits and a check digit or X. Such a value
# must never be stored: not in the HIS references (encounter, doctor, surgery id), and not inside any
# free text (surgery name, refund reason, notes). A whole value of that shape is refused; inside
# longer text, a run of exactly 18 such characters with a valid check character.
PERSONAL_ID = re.compile(r"^\d{17}[\dXx]$")
EMBEDDED_PERSONAL_ID = re.compile(r"(?<!\d)(\d{17}[\dXx])(?![\dXx])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_check_character(first17: str) -> str:
    return _ID_CHECK[sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def looks_like_personal_id(value: str) -> bool:
    """Whether `value` is, or holds, what looks like a resident identity number."""
    value = (value or "").strip()
    if PERSONAL_ID.match(value):
        return True
    return any(
        _id_check_character(match[:17]) == match[17].upper() for match in EMBEDDED_PERSONAL_ID.findall(value)
    )


def personal_id_problems(**fields: str) -> list:
    """One LOOKS_LIKE_PERSONAL_ID problem per field whose text looks like, or holds, an identity number:
    what every service checks before it stores free text typed about a patient's care."""
    from inventory.errors import Problem, Refusal  # errors names fields; validators stay importable alone

    return [
        Problem(Refusal.LOOKS_LIKE_PERSONAL_ID, {"field": name})
        for name, value in fields.items() if looks_like_personal_id(value)
    ]


def refuse_personal_ids(**fields: str) -> None:
    """Raise one refusal naming every field that holds what looks like an identity number."""
    from inventory.errors import Refused

    if problems := personal_id_problems(**fields):
        raise Refused(problems)


def is_his_reference(value: str) -> bool:
    return bool(HIS_REFERENCE.match(value or ""))
