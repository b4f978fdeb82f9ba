"""The dashboard in a real browser (Debian's chromium through Playwright) against the live server on
PostgreSQL: a keeper follows a count from the dashboard to the list it counts, sorts the list and
changes its page size; every role's dashboard is saved as a screenshot in Chinese and in English
(test-artifacts/dashboard-<role>-<language>.png)."""
import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import Unit
from tests import factories
from tests.web.conftest import login, screenshot
from tests.web.test_reconciliation_pages import use_stents_in_the_past

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Days before today with stents used in the cath-lab store: some weeks busier than others (within
# the 30 days the factories' supply documents are valid for).
USE_DAYS = (27, 26, 25, 19, 18, 12, 11, 10, 9, 8, 5, 3)


def test_a_keeper_follows_a_dashboard_count_to_the_filtered_list(page, world):
    Unit.objects.filter(pk=world.units["SN-A2"].pk).update(expiry=timezone.localdate() - datetime.timedelta(days=1))
    login(page, "keeper")
    work = page.locator('[data-card="work"]')
    expect(work.locator('[data-work="alerts-critical"] .count')).to_have_text("1")
    work.locator('[data-work="alerts-critical"] a').click()
    expect(page).to_have_url(re.compile(r"/alerts/\?severity=CRITICAL$"))
    expect(page.locator("li.alert-item")).to_have_count(1)
    expect(page.locator(f'li[data-alert="{world.alert.pk}"]')).to_be_visible()

    page.goto("/")
    expect(work.locator('[data-work="expired"] .count')).to_have_text("1")
    work.locator('[data-work="expired"] a').first.click()
    expect(page).to_have_url(re.compile(r"/stock/\?expiry_before=\d{4}-\d\d-\d\d$"))
    expect(page.locator("table[data-table=units] tbody tr")).to_have_count(1)
    expect(page.locator("table[data-table=units] tbody")).to_contain_text("SN-A2")

    page.goto("/")
    page.locator('[data-card="expiry"] tr[data-tier="30"] a[data-link="units"]').click()
    expect(page).to_have_url(re.compile(r"/stock/\?expiry_after=.*&expiry_before="))
    expect(page.locator("#id_expiry_after")).not_to_have_value("")

    page.goto("/stock/?status=ANY")
    page.locator('th a[data-sort="serial"]').click()
    expect(page.locator("th[aria-sort=ascending] a[data-sort=serial]")).to_be_visible()
    first = page.locator("table[data-table=units] tbody tr").first
    expect(first).to_contain_text("SN-A1")
    page.locator('th a[data-sort="serial"]').click()
    expect(page.locator("th[aria-sort=descending] a[data-sort=serial]")).to_be_visible()
    expect(page.locator("table[data-table=units] tbody tr").first).to_contain_text("SN-C1")
    expect(page).to_have_url(re.compile(r"sort=-serial"))


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_screenshots_of_every_role_dashboard(page, world, hospital, cath_lab_store, live_server, language):
    use_stents_in_the_past(world, cath_lab_store, [(days, True) for days in USE_DAYS], prefix="D")
    soon = timezone.localdate() + datetime.timedelta(days=20)
    Unit.objects.filter(pk=world.units["SN-A1"].pk).update(expiry=soon)
    Unit.objects.filter(pk=world.units["SN-C1"].pk).update(expiry=soon + datetime.timedelta(days=60))
    factories.UserFactory(username="dash-admin", hospital=hospital, roles=["admin"])
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    for role, username in (("keeper", "keeper"), ("operator", "operator"), ("auditor", "auditor"),
                           ("admin", "dash-admin"), ("nurse", "nurse")):
        page.context.clear_cookies(name="sessionid")
        login(page, username)
        page.goto("/")
        if role == "nurse":
            expect(page.locator('[data-card="work"]')).to_have_count(0)
        else:
            expect(page.locator('[data-card="work"]')).to_be_visible()
            expect(page.locator('svg[data-chart="chart-use"] rect')).to_have_count(12)
            expect(page.locator('svg[data-chart="chart-expiry"] rect')).to_have_count(7)
        screenshot(page, f"dashboard-{role}-{'zh' if language.startswith('zh') else 'en'}")
