"""Purchasing pages through Django's test client: placing an order by hand (refusals shown in the
person's language), the order's page following its deliveries, closing it, and the report."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.models import PurchaseOrder
from inventory.services.purchasing import OrderLineInput, create_purchase_order
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi
from tests.web.test_operations_pages import client_for, text

pytestmark = pytest.mark.django_db


def order_form(supplier, product, quantity="2", **line):
    data = {
        "supplier": supplier.pk, "promised_date": str(TODAY + datetime.timedelta(days=2)),
        "lines-TOTAL_FORMS": "6", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "6",
        "lines-0-product": product.pk, "lines-0-quantity": quantity,
    }
    data.update({f"lines-0-{name}": value for name, value in line.items()})
    return data


def test_keeper_places_an_order_by_hand_and_sees_it_listed(keeper, supplier, product):
    client = client_for(keeper)
    assert client.get("/purchasing/new/").status_code == 200

    response = client.post("/purchasing/new/", order_form(supplier, product, platform_reference="YG-77"))

    order = PurchaseOrder.objects.get()
    assert response.status_code == 302 and response.url == f"/purchasing/{order.pk}/"
    assert order.lines.get().platform_reference == "YG-77"
    listed = text(client.get("/purchasing/"))
    assert order.number in listed


def test_refusals_are_shown_in_chinese_on_the_form(keeper, supplier, product):
    response = client_for(keeper, "zh-hans").post("/purchasing/new/", order_form(supplier, product))

    assert response.status_code == 200
    assert 'data-code="PLATFORM_REFERENCE_REQUIRED"' in text(response)
    assert "只能通过采购平台采购" in text(response)
    assert not PurchaseOrder.objects.exists()


def test_order_page_follows_a_short_delivery_and_closes_with_a_reason(keeper, supplier, product, warehouse):
    actor = Actor(user=keeper)
    order = create_purchase_order(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=product, quantity=3, platform_reference="YG-1")],
    )
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number="DN-P1", receiving_location=warehouse,
        lines=[LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="P1"))], idempotency_key="rcv-p1",
        purchase_order=order,
    )
    scan_every_line(actor, note)
    accept_delivery_note(actor=actor, note=note, idempotency_key="acc-p1")
    client = client_for(keeper)

    page = text(client.get(f"/purchasing/{order.pk}/"))
    assert 'data-order-status="PARTLY_DELIVERED"' in page
    assert 'data-outstanding>2<' in page and "DN-P1" in page

    refused = client.post(f"/purchasing/{order.pk}/close/", {"reason": " "}, follow=True)
    assert 'CLOSE_REASON_MISSING' in text(refused)
    closed = text(client.post(f"/purchasing/{order.pk}/close/", {"reason": "余量取消"}, follow=True))
    assert 'data-order-status="CLOSED"' in closed and "余量取消" in closed


def test_report_shows_the_platform_rate_and_delivery_performance(keeper, operator, supplier, product):
    create_purchase_order(
        actor=Actor(user=operator), hospital=product.hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=product, quantity=1, emergency_reason="急诊手术")],
    )
    create_purchase_order(
        actor=Actor(user=operator), hospital=product.hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=product, quantity=3, platform_reference="YG-2")],
    )

    page = text(client_for(keeper).get("/purchasing/report/", {"period_start": str(TODAY), "period_end": str(TODAY)}))

    assert "data-rate>75.00 %" in page
    assert "急诊手术" in page
    assert f'data-supplier="{supplier.pk}"' in page
    bad = client_for(keeper).get("/purchasing/report/", {"period_start": str(TODAY), "period_end": "2000-01-01"})
    assert bad.status_code == 200 and "problems" in text(bad)


def test_nurses_are_kept_out_and_other_hospitals_orders_do_not_exist(keeper, supplier, product, hospital,
                                                                      other_hospital):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    assert client_for(nurse).get("/purchasing/").status_code == 403
    foreign = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    stranger = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    order = create_purchase_order(
        actor=Actor(user=stranger), hospital=other_hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=foreign.product, quantity=1, platform_reference="X")],
    )
    assert client_for(keeper).get(f"/purchasing/{order.pk}/").status_code == 404
    assert client_for(keeper).post(f"/purchasing/{order.pk}/close/", {"reason": "x"}).status_code == 404
