"""A GS1 code that cannot be read says why with a stable reason code and a zh/en message, never
biip's English text (whose wording may change between releases)."""
import pytest
from django.utils import translation

from devices.identification import GS, parse_udi
from devices.identification.parsed import ParseError
from inventory.errors import REASONS, Problem, Refusal
from tests.factories import gs1_udi

GTIN = "09506000134352"


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "UDI_EMPTY"),
    ("   ", "UDI_EMPTY"),
    ("01095060001343521721123\u00e9", "UDI_NOT_ASCII"),
    ("]", "GS1_SYMBOLOGY_UNKNOWN"),
    ("9506000134352", "GS1_BARE_GTIN"),
    ("foo", "GS1_AI_UNKNOWN"),
    (f"01{GTIN}172099", "GS1_AI_VALUE_INVALID"),
    (f"01{GTIN}171413321", "GS1_AI_VALUE_INVALID"),
    ("(01)09506000134352(17", "GS1_HRI_MALFORMED"),
    (f"01{GTIN}10A{GS}10B", "GS1_AI_REPEATED"),
    ("9912345", "GS1_GTIN_MISSING"),
    ("0109506000134353", "GS1_CHECK_DIGIT"),
])
def test_each_unreadable_gs1_code_has_its_reason(raw, reason):
    with pytest.raises(ParseError) as error:
        parse_udi(raw)
    assert error.value.reason == reason
    assert reason in REASONS


def test_the_refusal_names_the_reason_in_the_callers_language():
    with pytest.raises(ParseError) as error:
        parse_udi("0109506000134353")
    problem = Problem(Refusal.UDI_UNPARSEABLE, error.value.refusal_params())
    with translation.override("en"):
        english = problem.as_dict()
    with translation.override("zh-hans"):
        chinese = problem.as_dict()
    assert english == {
        "code": "UDI_UNPARSEABLE", "reason": "GS1_CHECK_DIGIT",
        "detail": "The UDI cannot be read: the GTIN check digit is wrong in (01)09506000134353: expected 2.",
    }
    assert chinese["detail"] == "UDI 无法识别：(01)09506000134353 的 GTIN 校验位错误：应为 2。"
    assert "Failed" not in english["detail"]  # biip's wording stays out


@pytest.mark.django_db
def test_a_scan_resolution_of_an_unreadable_code_is_a_translated_refusal(api):
    english = api.post("/api/v1/scans/resolve/", {"code": f"01{GTIN}172099"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    chinese = api.post("/api/v1/scans/resolve/", {"code": f"01{GTIN}172099"}, format="json")
    assert english.status_code == chinese.status_code == 400
    assert english.data["problems"][0]["reason"] == "GS1_AI_VALUE_INVALID"
    assert english.data["detail"] == "The UDI cannot be read: the value of AI (17) does not have the form GS1 requires."
    assert chinese.data["detail"] == "UDI 无法识别：AI (17) 的值不符合 GS1 规定的格式。"


def test_a_readable_code_still_parses():
    assert parse_udi(gs1_udi(GTIN, serial="S1")).serial == "S1"
