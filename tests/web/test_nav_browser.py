"""The main menu: every page a role may open is in it once, grouped in a few menus that open and
close without script, by keyboard, and fit a nurse's phone (390 px)."""
import re

from django.urls import reverse
from playwright.sync_api import expect

from inventory.web.nav import GROUP_OF, GROUPS, NAV
from tests.web.conftest import login, screenshot

PHONE = {"width": 390, "height": 844}


def expected_links(user) -> list[str]:
    return sorted(reverse(item.url_name) for item in NAV if item.shown_to(user))


def shown_links(page) -> list[str]:
    return sorted(page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))"))


def test_every_nav_entry_has_a_menu_and_every_menu_is_known():
    names = {item.url_name for item in NAV}
    assert set(GROUP_OF) <= names, "a menu place for a page that is not in NAV"
    assert {key for key in GROUP_OF.values() if key} <= {group.key for group in GROUPS}


def test_each_role_finds_every_page_it_may_open_once_in_the_menus(page, world):
    for user in (world.keeper, world.auditor):
        page.context.clear_cookies()
        login(page, user.username)
        assert shown_links(page) == expected_links(user)
        assert page.locator("nav.mainnav details").count() >= 5
        assert page.locator("nav.mainnav .menu a").first.is_hidden(), "menus start closed"


def test_a_nurse_opens_a_menu_by_keyboard_on_her_phone_and_it_fits(page, world):
    page.set_viewport_size(PHONE)
    login(page, "nurse")
    assert shown_links(page) == expected_links(world.nurse)
    assert page.locator('nav.mainnav a[href="/reconciliation/"]').count() == 0  # not hers, as before
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    menu = page.locator('nav.mainnav details[data-menu="distribution"]')
    summary = menu.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    use_link = menu.locator('a[href="/use/"]')
    expect(use_link).to_be_visible()
    box = use_link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "the open list is within the screen"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "nav-menu-phone")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()

    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(menu.locator("a").first).to_be_focused()
    other = page.locator('nav.mainnav details[data-menu="inventory"]')
    other.locator("summary").click()  # one menu open at a time
    expect(other).to_have_attribute("open", "")
    expect(menu).not_to_have_attribute("open", "")
    page.mouse.click(2, PHONE["height"] - 4)  # a click elsewhere (the left margin, at the bottom) closes it
    expect(other).not_to_have_attribute("open", "")

    menu.locator("summary").click()
    use_link.click()
    expect(page).to_have_url(re.compile(r"/use/"))
    expect(page.locator('nav.mainnav details.current[data-menu="distribution"]')).to_have_count(1)
    expect(page.locator('nav.mainnav a[aria-current="page"][href="/use/"]')).to_have_count(1)


def test_the_menus_open_without_script(chromium, live_server, world):
    context = chromium.get().new_context(base_url=live_server.url, java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    login(page, "auditor")
    page.locator('nav.mainnav [data-menu="counts"] > summary').click()  # 盘点与月结
    page.locator('nav.mainnav a[href="/reconciliation/"]').click()
    expect(page).to_have_url(re.compile(r"/reconciliation/$"))
    context.close()
