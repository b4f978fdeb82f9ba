"""The requisition loop in a real browser: a nurse on a phone (390 × 844) starts an urgent requisition,
adds one product by scanning its UDI and one by searching its name, submits it; the keeper finds it at
the top of the distribution queue, above an older routine one. Nothing on the nurse's pages is wider
than the phone."""
import pytest
from playwright.sync_api import expect

from inventory.models import Alert, Requisition
from inventory.services import requisitions as svc
from tests.factories import gs1_udi
from tests.web.conftest import login, screenshot
from tests.web.test_operations_browser import scan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}


def nothing_wider_than_the_viewport(page) -> list[str]:
    """The elements whose right edge goes past the viewport (none, on a page that fits). What sits in a
    scroller of its own (the menu bar, a wide table's wrapper) scrolls there and is not counted."""
    return page.evaluate("""() => {
        const width = window.innerWidth;
        const scrolls = (element) => {
            for (let up = element.parentElement; up && up !== document.body; up = up.parentElement)
                if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return true;
            return false;
        };
        const wide = [];
        for (const element of document.querySelectorAll('body *')) {
            const box = element.getBoundingClientRect();
            if (box.width && box.right > width + 1 && getComputedStyle(element).visibility !== 'hidden'
                && !scrolls(element))
                wide.push(element.tagName + (element.id ? '#' + element.id : '') + '.' + element.className);
        }
        if (document.documentElement.scrollWidth > width) wide.push('document');
        return wide;
    }""")


def test_a_nurse_requests_urgently_on_a_phone_and_the_keeper_sees_it_first(page, world):
    department = world.cabinet.department
    older = svc.create_requisition(user=world.nurse, department=department,
                                   lines=[svc.RequestedLine(world.lot_product, 2)], submit=True)

    page.set_viewport_size(PHONE)
    login(page, "nurse")
    page.locator('a[data-link="requisitions"]').click()
    expect(page.locator(f'[data-requisition="{older.pk}"]')).to_be_visible()
    assert nothing_wider_than_the_viewport(page) == []
    screenshot(page, "requisitions-list-phone")

    page.locator('input[name="urgency"][value="URGENT"]').check()
    page.locator('[data-action="new-requisition"]').click()
    page.wait_for_url("**/requisitions/*/")
    requisition = Requisition.objects.exclude(pk=older.pk).get()
    assert requisition.urgency == "URGENT"

    # By scan: the package's UDI into the product field, Enter.
    field = page.locator("#id_code")
    scan(page, field, gs1_udi(world.product.udi_di, serial="PKG-1", lot="LOT-A"))
    expect(page.locator(f'tr[data-product="{world.product.internal_code}"]')).to_be_visible()

    # By search: part of the name, a suggestion from the catalog, a quantity.
    page.locator("#id_code").fill(world.lot_product.name[:4])
    expect(page.locator("#product-suggestions option").first).to_have_attribute(
        "value", world.lot_product.internal_code)
    page.locator("#id_code").fill(world.lot_product.internal_code)
    page.locator("#id_quantity").fill("20")
    page.locator('[data-action="add-line"]').click()
    row = page.locator(f'tr[data-product="{world.lot_product.internal_code}"]')
    expect(row.locator('[data-cell="requested"]')).to_contain_text("20")
    assert nothing_wider_than_the_viewport(page) == []
    screenshot(page, "requisition-draft-phone")

    page.locator('[data-action="submit"]').click()
    expect(page.locator(".page-head [data-status]")).to_have_attribute("data-status", "APPROVED")
    assert nothing_wider_than_the_viewport(page) == []
    requisition.refresh_from_db()
    assert [(line.product, line.requested_quantity) for line in requisition.lines.order_by("pk")] == [
        (world.product, 1), (world.lot_product, 20)]
    assert Alert.objects.filter(kind=Alert.Kind.URGENT_REQUISITION, subject_key=f"requisition:{requisition.pk}",
                                status="OPEN").exists()

    # The keeper, on a tablet: the urgent one heads the queue, the dashboard counts it.
    page.context.clear_cookies()
    page.set_viewport_size(TABLET)
    login(page, world.keeper.username)
    expect(page.locator('[data-work="requisitions"] .count')).to_have_text("2")
    page.goto("/distribution/queue/")
    rows = page.locator('[data-table="queue"] tbody tr[data-requisition]')
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-requisition", str(requisition.pk))
    expect(rows.nth(1)).to_have_attribute("data-requisition", str(older.pk))
    assert nothing_wider_than_the_viewport(page) == []
    screenshot(page, "distribution-queue-tablet")
