"""Sorting and paging of the lists (inventory.web.listing) through Django's test client: every
sortable column of each list sorts both ways, page sizes are bounded, a page can be jumped to, and
an unknown sort key or page size is ignored (never a 500). Runs on SQLite and on PostgreSQL."""
import datetime
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Alert, ChargeDelivery, Unit
from inventory.services import alerts
from inventory.services.receiving import LineInput, receive_delivery_note
from inventory.web.listing import PAGE_SIZES, Sort, listing
from inventory.web.views import alerts as alert_views
from inventory.web.views import his as his_views
from inventory.web.views import stock as stock_views
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db

UNIT_KEYS = {
    "product": lambda unit: unit.product.internal_code, "serial": lambda unit: unit.serial,
    "lot": lambda unit: unit.lot, "expiry": lambda unit: unit.expiry, "status": lambda unit: unit.status,
    "location": lambda unit: unit.location and unit.location.code, "supplier": lambda unit: unit.supplier.name,
    "cost": lambda unit: unit.unit_cost,
}


def test_every_unit_column_sorts_both_ways(world):
    Unit.objects.filter(pk=world.units["SN-A2"].pk).update(expiry=timezone.localdate() + datetime.timedelta(days=3),
                                                            unit_cost=Decimal("5.00"))
    keeper = client_for(world.keeper)
    assert {sort.key for sort in stock_views.UNIT_SORTS} == set(UNIT_KEYS)
    for key, value in UNIT_KEYS.items():
        for descending in (False, True):
            response = keeper.get(reverse("web:stock"), {"sort": f"{'-' if descending else ''}{key}", "status": "ANY"})
            assert response.status_code == 200
            values = [value(unit) for unit in response.context["page"]]
            present = [item for item in values if item is not None]
            # empty values (the used unit has no location) come last both ways
            assert values == sorted(present, reverse=descending) + [None] * (len(values) - len(present)), key
            assert response.context["listing"].sort == key and response.context["listing"].descending is descending
            assert f'data-sort="{key}"' in text(response)


def test_equal_values_keep_a_stable_order(world):
    keeper = client_for(world.keeper)
    by_lot = [unit.pk for unit in keeper.get(reverse("web:stock"), {"sort": "lot", "status": "ANY"}).context["page"]]
    lots = [unit.lot for unit in Unit.objects.filter(pk__in=by_lot)]
    assert len(set(lots)) < len(lots)  # some share a lot: the primary key decides between them
    same = [pk for pk in by_lot if Unit.objects.get(pk=pk).lot == "LOT-A"]
    assert same == sorted(same)


def test_every_lot_column_sorts(world):
    keeper = client_for(world.keeper)
    for sort in stock_views.LOT_SORTS:
        for prefix in ("", "-"):
            response = keeper.get(reverse("web:stock-lots"), {"sort": prefix + sort.key})
            assert response.status_code == 200 and len(response.context["page"]) == 1, sort.key


@pytest.mark.parametrize("bad", ["password", "-", "--serial", "product__hospital__name", "pk;drop", "é" * 50])
def test_an_unknown_sort_key_is_ignored(world, bad):
    for name in ("web:stock", "web:stock-lots", "web:alerts", "web:receiving", "web:his-deliveries"):
        response = client_for(world.keeper).get(reverse(name), {"sort": bad})
        assert response.status_code == 200, (name, bad)
        assert response.context["listing"].sort_param in ("expiry", "-last_seen", "delivered", "failing_since")


def test_page_size_is_one_of_the_offered_sizes(world, monkeypatch):
    monkeypatch.setattr(stock_views, "PAGE_SIZE", 2)
    keeper = client_for(world.keeper)
    for asked, expected in (("25", 25), ("200", 200), ("100000", 2), ("0", 2), ("-5", 2), ("abc", 2), ("", 2)):
        response = keeper.get(reverse("web:stock"), {"per_page": asked})
        assert response.status_code == 200
        assert response.context["listing"].page_size == response.context["page"].paginator.per_page == expected, asked
    page = text(keeper.get(reverse("web:stock")))
    assert all(f'<option value="{size}"' in page for size in PAGE_SIZES) and 'name="per_page"' in page


def test_jump_to_a_page_keeps_filters_and_sort(world, monkeypatch):
    monkeypatch.setattr(stock_views, "PAGE_SIZE", 2)
    keeper = client_for(world.keeper)
    response = keeper.get(reverse("web:stock"), {"sort": "-serial", "status": "ANY"})
    page = text(response)
    assert 'name="page"' in page and 'max="2"' in page
    assert 'type="hidden" name="sort" value="-serial"' in page and 'type="hidden" name="status" value="ANY"' in page
    second = keeper.get(reverse("web:stock"), {"sort": "-serial", "status": "ANY", "page": "2"})
    assert [unit.serial for unit in second.context["page"]] == ["SN-A2", "SN-A1"]
    assert [unit.serial for unit in response.context["page"]] == ["SN-C1", "SN-A3"]
    for wild in ("999", "-1", "x"):
        assert keeper.get(reverse("web:stock"), {"page": wild}).status_code == 200


def test_a_column_header_sorts_by_it_then_the_other_way(world):
    keeper = client_for(world.keeper)
    page = text(keeper.get(reverse("web:stock"), {"status": "ANY", "sort": "serial"}))
    assert 'href="?status=ANY&amp;sort=-serial" data-sort="serial"' in page and 'aria-sort="ascending"' in page
    page = text(keeper.get(reverse("web:stock"), {"status": "ANY", "sort": "-serial"}))
    assert 'href="?status=ANY&amp;sort=serial" data-sort="serial"' in page and 'aria-sort="descending"' in page


def test_alerts_sort_by_each_choice(world):
    alerts.raise_alert(hospital=world.warehouse.hospital, kind=Alert.Kind.CERTIFICATE_EXPIRING, subject_key="cert:x",
                       severity=Alert.Severity.INFO, message="info one")
    keeper = client_for(world.keeper)
    for sort in alert_views.SORTS:
        for prefix in ("", "-"):
            response = keeper.get(reverse("web:alerts"), {"sort": prefix + sort.key})
            assert response.status_code == 200 and response.context["page"].paginator.count == 3, sort.key
    severities = [alert.severity for alert in keeper.get(reverse("web:alerts"), {"sort": "-severity"}).context["page"]]
    assert severities[0] == Alert.Severity.CRITICAL and severities[-1] == Alert.Severity.INFO
    oldest = [alert.pk for alert in keeper.get(reverse("web:alerts"), {"sort": "raised"}).context["page"]]
    assert oldest == sorted(oldest, key=lambda pk: (Alert.objects.get(pk=pk).first_raised_at, pk))
    assert 'name="sort"' in text(keeper.get(reverse("web:alerts")))


def test_delivery_notes_awaiting_acceptance_sort_and_page(world):
    actor = Actor(user=world.keeper)
    expiry = timezone.localdate() + datetime.timedelta(days=400)
    for number, lots in (("DN-B", ["B1"]), ("DN-A", ["A1"]), ("DN-C", ["C1", "C2"])):
        receive_delivery_note(
            actor=actor, hospital=world.warehouse.hospital, supplier=world.supplier, number=number,
            receiving_location=world.warehouse, idempotency_key=f"rcv-{number}",
            lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot=lot, quantity=1, expiry=expiry)
                   for lot in lots],
        )
    keeper = client_for(world.keeper)
    numbers = [note.number for note in keeper.get(reverse("web:receiving"), {"sort": "number"}).context["page"]]
    assert numbers == ["DN-A", "DN-B", "DN-C"]
    assert [note.number for note in keeper.get(reverse("web:receiving"), {"sort": "-lines"}).context["page"]][0] == "DN-C"
    for key in ("number", "supplier", "delivered", "location", "lines"):
        assert keeper.get(reverse("web:receiving"), {"sort": f"-{key}"}).status_code == 200
    paged = keeper.get(reverse("web:receiving"), {"sort": "number", "per_page": "25", "page": "1"})
    assert paged.context["page"].paginator.per_page == 25
    assert "DN-A" in text(paged) and 'data-sort="lines"' in text(paged)


def test_his_deliveries_filter_and_sort(world):
    auditor = client_for(world.auditor)
    failing = auditor.get(reverse("web:his-deliveries"))
    assert [delivery.status for delivery in failing.context["page"]] == [ChargeDelivery.Status.FAILED]
    ChargeDelivery.objects.update(status=ChargeDelivery.Status.DELIVERED)
    assert list(auditor.get(reverse("web:his-deliveries"), {"status": "FAILING"}).context["page"]) == []
    assert len(auditor.get(reverse("web:his-deliveries"), {"status": "ALL"}).context["page"]) == 1
    for sort in his_views.SORTS:
        assert auditor.get(reverse("web:his-deliveries"), {"status": "ALL", "sort": f"-{sort.key}"}).status_code == 200
    assert client_for(world.nurse).get(reverse("web:his-deliveries")).status_code == 403


def test_listing_orders_by_the_primary_key_last(world):
    request = RequestFactory().get("/", {"sort": "-lot"})
    shown = listing(request, Unit.objects.all(), sorts=(Sort("lot", ("lot",)),), default="lot")
    assert [str(order.expression.name) + str(order.descending) for order in shown.page.object_list.query.order_by] == [
        "lotTrue", "pkTrue"]
