"""A recall followed into a member hospital, in a real browser: the lead's page lists the member's
part as counts and places without its patients; the member's keeper sees their own part, with their
patient, and which recall it follows — and not the lead's recall."""
import pytest
from playwright.sync_api import expect

from inventory.models import Recall
from tests.inventory.test_alliance_recall import SECRET, build_split_lot, open_lot_recall
from tests.inventory.test_alliance_transfers import Member
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_lead_sees_the_members_part_as_counts_and_the_member_works_it_with_its_patients(
    page, hospital, keeper, keeper_actor, supplier, warehouse, product, lot_product, cath_lab_store,
):
    member = Member("M1", [product, lot_product])
    build_split_lot(hospital, keeper_actor, supplier, warehouse, product, cath_lab_store, member)
    recall = open_lot_recall(hospital, keeper, product, "L-RC")
    part = Recall.objects.get(hospital=member.hospital)

    login(page, "keeper")
    page.goto(f"/recalls/{recall.pk}/")
    row = page.locator(f'table[data-table=recall-members] tr[data-member-recall="{part.pk}"]')
    expect(row).to_contain_text(member.hospital.name)
    expect(row).to_contain_text(member.store.name)
    assert SECRET not in page.content()
    screenshot(page, "recall-followed-in-member")

    page.context.clear_cookies()
    login(page, member.keeper.username)
    page.goto(f"/recalls/{part.pk}/")
    expect(page.locator("[data-followed-from]")).to_have_attribute("data-followed-from", str(recall.pk))
    expect(page.locator("table[data-table=recall-used] tbody tr").first).to_have_attribute("data-encounter", SECRET)
    expect(page.locator('tr[data-serial="RC3"]')).to_have_attribute("data-handling", "PENDING")
    response = page.goto(f"/recalls/{recall.pk}/")
    assert response.status == 404
