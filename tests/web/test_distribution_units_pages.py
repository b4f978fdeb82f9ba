"""Quantities in packaging units ("1 盒 5 支") beside base quantities on the requisition, work-queue,
pick-list and delivery pages; exports and the API stay in base units."""
import pytest
from django.urls import reverse

from inventory.models import PackagingUnit, ReplenishmentSuggestion
from inventory.services import picking, replenishment
from inventory.services import requisitions as svc
from tests.factories import gs1_udi
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def boxed(world):
    """The world's lot product (20 in lot L-2026 at the warehouse) packed 盒 = 10 (purchase unit)."""
    PackagingUnit.objects.create(product=world.lot_product, name="盒", factor=10, is_purchase_unit=True)
    return world.lot_product



def test_requisition_and_queue_pages_show_boxes(world, boxed):
    base = boxed.unit_of_measure
    requisition = svc.create_requisition(user=world.nurse, department=world.cabinet.department,
                                         lines=[svc.RequestedLine(boxed, 15)], submit=True)
    page = text(client_for(world.nurse).get(reverse("web:requisition", args=[requisition.pk])))
    assert f"15 {base}" in page and f"<small data-packages>1 盒 5 {base}</small>" in page

    replenishment.save_par_level(user=world.keeper, location=world.cabinet, product=boxed, minimum=4, target=23)
    replenishment.replenish(hospital=world.cabinet.hospital)
    suggestion = ReplenishmentSuggestion.objects.get(status="OPEN", product=boxed)
    queue = text(client_for(world.keeper).get(reverse("web:requisition-queue")))
    whole, rest = divmod(suggestion.quantity, 10)
    assert rest == 0 and f"<small data-packages>{whole} 盒</small>" in queue


def test_pick_list_and_delivery_pages_show_boxes_and_the_api_keeps_base_units(world, boxed):
    base = boxed.unit_of_measure
    requisition = svc.create_requisition(user=world.nurse, department=world.cabinet.department,
                                         lines=[svc.RequestedLine(boxed, 12)], submit=True)
    keeper = client_for(world.keeper)
    assert f"<small data-packages>1 盒 2 {base}</small>" in text(keeper.get(reverse("web:picking")))
    pick_list = picking.create_pick_list(user=world.keeper, hospital=world.warehouse.hospital,
                                         source_location=world.warehouse,
                                         requisition_lines=list(requisition.lines.all()), idempotency_key="pl-1")
    page = text(keeper.get(reverse("web:pick-list", args=[pick_list.pk])))
    assert f"<small data-packages>1 盒 2 {base}</small>" in page
    picking.confirm_pick_scan(user=world.keeper, pick_list=pick_list,
                              code=gs1_udi(boxed.udi_di, lot="L-2026", expiry=boxed.lot_balances.get(
                                  lot="L-2026", location=world.warehouse).expiry), quantity=12)
    picking.dispatch_pick_list(user=world.keeper, pick_list=pick_list, idempotency_key="dispatch-1")
    delivery = pick_list.deliveries.get()
    nurse_page = text(client_for(world.nurse).get(reverse("web:delivery", args=[delivery.pk])))
    assert 'data-field="dispatched">12</strong>' in nurse_page and f"1 盒 2 {base}" in nurse_page
    api = client_for(world.keeper).get(f"/api/v1/deliveries/{delivery.pk}/")
    assert api.status_code == 200 and "盒" not in api.content.decode()


def test_a_product_without_packaging_units_shows_base_units_only(world):
    requisition = svc.create_requisition(user=world.nurse, department=world.cabinet.department,
                                         lines=[svc.RequestedLine(world.lot_product, 15)], submit=True)
    page = text(client_for(world.nurse).get(reverse("web:requisition", args=[requisition.pk])))
    assert "data-packages" not in page
