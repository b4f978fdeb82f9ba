"""Clinical teams (诊疗组) in a real browser: an SPD operator opens the page from the analysis menu,
creates a team, adds a doctor, is refused (with the reason) when the doctor is put in a second team
of the department on the same days, ends the first membership and then adds him to the second
(test-artifacts/clinical-teams-zh.png)."""
import datetime

import pytest
from playwright.sync_api import expect

from inventory.models import ClinicalTeam, ClinicalTeamMember
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_operator_keeps_a_team_and_its_dated_members(page, world):
    department = world.cabinet.department
    ClinicalTeam.objects.create(hospital=world.warehouse.hospital, department=department, code="T2", name="导管二组")
    login(page, world.operator.username)
    page.locator('nav.mainnav [data-menu="analysis"] > summary').click()
    page.locator('nav a[href="/clinical-teams/"]').first.click()
    form = page.locator('form[data-form="new-team"]')
    form.locator("#id_department").select_option(str(department.pk))
    form.locator("#id_code").fill("T1")
    form.locator("#id_name").fill("导管一组")
    form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("导管一组")

    add = page.locator('form[data-form="add-member"]')
    add.locator("#id_doctor").fill("D0042")
    add.locator("#id_since").fill("2026-01-01")
    add.locator("button[type=submit]").click()
    expect(page.locator('table[data-table="members"] tr[data-member="D0042"]')).to_contain_text("2026-01-01")

    page.goto("/clinical-teams/")
    page.locator('table[data-table="clinical-teams"] a', has_text="导管二组").click()
    add = page.locator('form[data-form="add-member"]')
    add.locator("#id_doctor").fill("D0042")
    add.locator("#id_since").fill("2026-03-01")
    add.locator("button[type=submit]").click()
    problem = page.locator('.problems [data-code="TEAM_MEMBERSHIP_OVERLAPS"]')
    expect(problem).to_contain_text("导管一组")
    screenshot(page, "clinical-teams-zh")

    page.goto("/clinical-teams/")
    page.locator('table[data-table="clinical-teams"] a', has_text="导管一组").click()
    end = page.locator('tr[data-member="D0042"] form[data-form="end-member"]')
    end.locator('input[name="until"]').fill("2026-02-28")
    end.locator("button[type=submit]").click()
    expect(page.locator('tr[data-member="D0042"]')).to_contain_text("2026-02-28")

    page.goto("/clinical-teams/")
    page.locator('table[data-table="clinical-teams"] a', has_text="导管二组").click()
    add = page.locator('form[data-form="add-member"]')
    add.locator("#id_doctor").fill("D0042")
    add.locator("#id_since").fill("2026-03-01")
    add.locator("button[type=submit]").click()
    expect(page.locator('table[data-table="members"] tr[data-member="D0042"]')).to_contain_text("2026-03-01")
    assert list(ClinicalTeamMember.objects.order_by("since").values_list("team__code", "until")) == [
        ("T1", datetime.date(2026, 2, 28)), ("T2", None)]
