"""What every issuer's parser returns (`ParsedUDI`) or raises (`ParseError`).

They live apart from the issuers' modules so that GS1, HIBCC, MA and EPC parsing can share
them without importing one another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["ParseError", "ParsedUDI"]


class ParseError(ValueError):
    """A scan that cannot be turned into a UDI (or EPC); the message says what was wrong.

    `reason` is a stable code for what was wrong (a key of inventory.errors.REASONS, which holds
    its zh/en wording) and `params` its values; the English message is for logs and tests.
    """

    def __init__(self, message: str, *, reason: str = "UDI_MALFORMED", **params: object) -> None:
        super().__init__(message)
        self.reason, self.params = reason, params

    def refusal_params(self) -> dict:
        """The parameters of the UDI_UNPARSEABLE refusal this error becomes."""
        return {**self.params, "reason": self.reason}


@dataclass(frozen=True)
class ParsedUDI:
    """The parts of a UDI that receiving and traceability need, whoever issued it.

    `issuer` is "GS1", "HIBCC", "MA" or "AHM". `di` is the issuer's device identifier: the
    GTIN for GS1, LIC + PCN + unit of measure for HIBCC, "MA.<country>.<industry>.<registrant>.
    <product>" for MA. `normalized` is one canonical text per label, whatever the scanner sent.

    `other_ais` keeps, in scan order, the (tag, value) pairs that have no field of their own:
    GS1 application identifiers such as (240) or (30); HIBCC quantity ("Q"), expiry hour and
    supplementary data identifiers; MA sterilisation lot ("D") and check field ("C").
    """

    issuer: str
    di: str
    lot: str
    serial: str
    expiry: dt.date | None
    production_date: dt.date | None
    raw: str
    normalized: str
    other_ais: tuple[tuple[str, str], ...] = ()


def show(text: str, limit: int = 80) -> str:
    """Quote scanned text for an error message, shortened so a runaway scan stays readable."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
