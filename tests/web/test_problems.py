"""How refusals are worded for people (inventory/web/problems.py): every wording of the unit status
machine reads as an action in both languages, with its unit named and nothing left unformatted."""
import re

import pytest
from django.utils import translation

from inventory.errors import Problem, Refusal, Refused
from inventory.models import UnitStatus
from inventory.web.problems import _TRANSITIONS, problems_of, sentence, worded


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(("current", "target"), sorted(_TRANSITIONS, key=str))
def test_every_status_refusal_names_the_unit_and_says_what_to_do(language, current, target):
    params = {"unit": "SN-77", "current": "x", "target": "y", "from_status": str(current),
              "to_status": str(target or UnitStatus.IN_STOCK)}
    with translation.override(language):
        text = worded(Problem(Refusal.ILLEGAL_TRANSITION, params, 42))
    assert "SN-77" in text and "%(" not in text and "42" not in text
    if language == "zh-hans":
        assert not re.search(r"[A-Za-z]{3,}", text.replace("SN-77", "").replace("RFID", "").replace("UDI", ""))
        assert "不能从" not in text


def test_a_transition_without_a_wording_keeps_the_catalogue_sentence():
    params = {"unit": "SN-1", "current": "在库", "target": "在库", "from_status": "IN_STOCK", "to_status": "IN_STOCK"}
    with translation.override("zh-hans"):
        assert worded(Problem(Refusal.ILLEGAL_TRANSITION, params)) == "耗材 SN-1 当前为“在库”，不能改为“在库”。"


def test_a_units_database_id_is_never_shown_as_the_item():
    refused = Refused([Problem(Refusal.UNIT_NOT_TAGGED, {"unit": "SN-5"}, 1234),
                       Problem(Refusal.INVALID_REQUEST, {"detail": "x"}, {"row": 3, "field": "lot"}),
                       Problem(Refusal.NOT_FOUND, {"what": "unit"}, "SN SN-9")])
    assert [problem.item for problem in problems_of(refused)] == ["", "", "SN SN-9"]


@pytest.mark.parametrize(("language", "fragment", "expected"), [
    ("en", "nothing was scanned", "Nothing was scanned."),
    ("zh-hans", "未扫描到任何内容", "未扫描到任何内容。"),
    ("zh-hans", "已结束。", "已结束。"),
])
def test_a_fragment_becomes_one_sentence(language, fragment, expected):
    with translation.override(language):
        assert sentence(fragment) == expected


def test_service_details_in_english_are_translated_and_unknown_ones_kept():
    with translation.override("zh-hans"):
        known = worded(Problem(Refusal.INVALID_REQUEST, {"detail": "name at least one unit or lot"}))
        assert known == "请先扫描至少一件耗材或添加一个批次。"
        assert worded(Problem(Refusal.UDI_UNPARSEABLE, {"detail": "Failed to parse GS1 AI (01)"})).startswith(
            "这个条码无法识别为 UDI")
