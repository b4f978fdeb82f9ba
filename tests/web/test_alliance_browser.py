"""The alliance transfer pages in Chromium: the receiving member counts by scanning and receives; the
sender sees its issue, another member nothing."""
import pytest

from inventory.models import AllianceTransfer, Unit
from inventory.services.transfers import create_transfer, dispatch_transfer
from tests import factories
from tests.conftest import stock_units
from tests.web.conftest import login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent(hospital, warehouse, product, supplier, keeper_actor):
    member = factories.HospitalFactory(code="M1", name="东乡卫生院", alliance=hospital.alliance)
    store = factories.LocationFactory(hospital=member, code="CW", name="东乡中心库")
    factories.ProductFactory(hospital=member, udi_di=product.udi_di, internal_code="DX-001", name=product.name)
    receiver = factories.UserFactory(username="dx-keeper", hospital=member, roles=["warehouse"])
    outsider_hospital = factories.HospitalFactory(code="M2", alliance=hospital.alliance)
    outsider = factories.UserFactory(username="other-keeper", hospital=outsider_hospital, roles=["warehouse"])
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["W1"])[0]
    transfer = create_transfer(user=keeper_actor.user, source_location=warehouse, to_hospital=member,
                               destination=store, units=[unit], kind="EMERGENCY", reason="急救",
                               idempotency_key="web-1")
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key="web-d1")
    return transfer, unit, receiver, outsider


def test_the_receiver_counts_by_scan_and_receives_into_its_books(page, sent):
    transfer, unit, receiver, _outsider = sent
    login(page, receiver.username)
    page.goto("/alliance/transfers/?direction=in")
    row = page.locator(f"[data-transfer='{transfer.pk}']")
    assert row.locator("[data-flag='emergency']").count() == 1
    row.locator("a").click()
    assert page.locator("[data-line] td").first.inner_text() == "DX-001"  # its own catalog code
    page.fill("[data-form='scan'] input[name='code']", unit.udi)
    page.click("[data-form='scan'] button")
    assert page.locator("[data-line] td").nth(6).inner_text() == "1"
    page.click("[data-form='receive'] button[type='submit']")
    assert page.locator("[data-status]").get_attribute("data-status") == "RECEIVED"
    assert Unit.objects.get(pk=unit.pk).hospital_id == transfer.to_hospital_id
    assert AllianceTransfer.objects.get(pk=transfer.pk).status == "RECEIVED"


def test_another_member_gets_a_404_and_an_empty_list(page, sent):
    transfer, _unit, _receiver, outsider = sent
    login(page, outsider.username)
    assert page.goto(f"/alliance/transfers/{transfer.pk}/").status == 404
    page.goto("/alliance/transfers/")
    assert page.locator("[data-transfer]").count() == 0
