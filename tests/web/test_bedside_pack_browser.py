"""A pack used at the bedside in a real browser: the nurse scans the set's label on "use on a patient",
the pack's page lists its members, she uses the whole pack; each member is charged on her encounter.
An expired member locks the pack and the page names it."""
import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import Charge, PackMember
from tests import factories
from tests.inventory.test_processing import iol_set, station, ward  # noqa: F401 (fixtures)
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _nurse(hospital, ward):  # noqa: F811
    nurse = factories.UserFactory(username="eye-nurse", hospital=hospital, roles=["nurse"])
    nurse.departments.add(ward.department)
    return nurse


def _scan_the_pack(page, ward, pack, encounter):  # noqa: F811
    page.goto(f"/use/?encounter={encounter}&department={ward.department.pk}")
    field = page.locator("#use-scan")
    field.fill(pack.unit.udi)
    field.press("Enter")
    page.wait_for_url(f"**/use/pack/{pack.pk}/**")


def test_scan_a_sets_label_at_the_bedside_and_use_the_whole_pack(page, hospital, iol_set, ward):  # noqa: F811
    _nurse(hospital, ward)
    login(page, "eye-nurse")
    _scan_the_pack(page, ward, iol_set, "ZY2026101")
    expect(page.locator("table[data-table=pack-members]")).to_contain_text("IOL1")
    expect(page.locator("table[data-table=pack-members]")).to_contain_text("INJ1")
    screenshot(page, "bedside-pack")
    page.locator('[data-action="use-whole-pack"]').click()
    page.wait_for_url("**/use/?**")
    expect(page.locator("#uses")).to_contain_text("人工晶状体")
    assert sorted(Charge.objects.values_list("encounter", "unit_price")) == [
        ("ZY2026101", 300), ("ZY2026101", 2800)]


def test_an_expired_member_is_named_and_nothing_is_used(page, hospital, iol_set, ward):  # noqa: F811
    _nurse(hospital, ward)
    PackMember.objects.filter(pack=iol_set, unit__serial="INJ1").update(
        expiry=timezone.localdate() - datetime.timedelta(days=2))
    login(page, "eye-nurse")
    _scan_the_pack(page, ward, iol_set, "ZY2026102")
    expect(page.locator("[role=alert]")).to_contain_text("晶体推注器 SN INJ1")
    page.locator('[data-action="use-whole-pack"]').click()
    expect(page.locator("[role=alert]")).to_contain_text("已锁定")
    assert not Charge.objects.exists()
