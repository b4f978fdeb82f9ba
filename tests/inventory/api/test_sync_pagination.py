"""Cursor pagination for integrators (inventory.api.sync): a walk in id order, no count, nothing
missed or repeated while rows are added; `updated_after`; the settle time; page numbers for people."""
import datetime

import pytest
from django.utils import timezone

from inventory.models import Alert, ChargeDelivery, Consumption, Movement, Unit
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_settle_time(settings):
    settings.SPD_SYNC_SETTLE_SECONDS = 0


def walk(api, path: str, *, limit: int = 3, between=None, **params) -> tuple[list[int], str]:
    """Every id a cursor walk of `path` returns, calling `between(page_number)` after each page."""
    seen, cursor, page_number = [], "", 0
    while True:
        response = api.get(path, {"cursor": cursor, "limit": limit, **params})
        assert response.status_code == 200, response.content
        body = response.json()
        assert "count" not in body
        seen += [row["id"] for row in body["results"]]
        cursor, page_number = body["next_cursor"], page_number + 1
        if not body["has_more"]:
            return seen, cursor
        assert body["next"] is not None
        if between is not None:
            between(page_number)


def receive(keeper_actor, supplier, warehouse, product, serials):
    return stock_units(keeper_actor, supplier, warehouse, product, serials)


def test_walking_the_ledger_while_movements_are_added_misses_and_repeats_nothing(
    api, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    units = receive(keeper_actor, supplier, warehouse, product, [f"L{n}" for n in range(5)])

    def add_movements(page_number: int) -> None:
        if page_number <= len(units):
            unit = units[page_number - 1]
            transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=[unit],
                           idempotency_key=f"move-{unit.pk}")

    seen, last_cursor = walk(api, "/api/v1/movements/", between=add_movements)

    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert set(seen) == set(Movement.objects.values_list("pk", flat=True))
    # Later, the kept cursor gives exactly what was recorded since.
    later = receive(keeper_actor, supplier, warehouse, product, ["L-later"])
    answer = api.get("/api/v1/movements/", {"cursor": last_cursor}).json()
    assert {row["id"] for row in answer["results"]} == set(
        Movement.objects.filter(unit=later[0]).values_list("pk", flat=True))
    assert answer["has_more"] is False


def test_walking_units_while_units_are_received_misses_and_repeats_nothing(
    api, keeper_actor, supplier, warehouse, product
):
    receive(keeper_actor, supplier, warehouse, product, [f"U{n}" for n in range(7)])

    def add_units(page_number: int) -> None:
        if page_number < 3:
            receive(keeper_actor, supplier, warehouse, product, [f"N{page_number}-{n}" for n in range(2)])

    seen, _ = walk(api, "/api/v1/units/", between=add_units)

    assert len(seen) == len(set(seen)) == Unit.objects.count() == 11


def test_units_updated_after_a_moment_are_those_moved_or_received_since(
    api, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    first, second = receive(keeper_actor, supplier, warehouse, product, ["A1", "A2"])
    moment = timezone.now()
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=[second],
                   idempotency_key="move-a2")
    (third,) = receive(keeper_actor, supplier, warehouse, product, ["A3"])

    for params in ({"cursor": ""}, {}):  # both ways of paging
        answer = api.get("/api/v1/units/", {"updated_after": moment.isoformat(), **params}).json()
        assert {row["id"] for row in answer["results"]} == {second.pk, third.pk}
    everything = api.get("/api/v1/units/", {"updated_after": (moment - datetime.timedelta(days=1)).isoformat()})
    assert {row["id"] for row in everything.json()["results"]} == {first.pk, second.pk, third.pk}


def test_the_cursor_stops_before_rows_too_recent_to_be_final(api, settings, keeper_actor, supplier, warehouse, product):
    receive(keeper_actor, supplier, warehouse, product, ["S1"])
    settings.SPD_SYNC_SETTLE_SECONDS = 3600

    answer = api.get("/api/v1/movements/", {"cursor": ""}).json()

    assert (answer["results"], answer["has_more"]) == ([], False)
    settings.SPD_SYNC_SETTLE_SECONDS = 0
    again = api.get("/api/v1/movements/", {"cursor": answer["next_cursor"]}).json()
    assert len(again["results"]) == Movement.objects.count()


def test_a_young_row_holds_back_the_older_rows_after_it_and_nothing_before_it(
    api, settings, keeper_actor, supplier, warehouse, product
):
    receive(keeper_actor, supplier, warehouse, product, ["Y1", "Y2", "Y3"])
    first, young, last = Unit.objects.order_by("pk")
    Unit.objects.filter(pk__in=[first.pk, last.pk]).update(created_at=timezone.now() - datetime.timedelta(hours=2))
    settings.SPD_SYNC_SETTLE_SECONDS = 60

    answer = api.get("/api/v1/units/", {"cursor": ""}).json()

    assert ([row["id"] for row in answer["results"]], answer["has_more"]) == ([first.pk], False)
    settings.SPD_SYNC_SETTLE_SECONDS = 0
    again = api.get("/api/v1/units/", {"cursor": answer["next_cursor"]}).json()
    assert [row["id"] for row in again["results"]] == [young.pk, last.pk]


@pytest.fixture
def used(keeper_actor, supplier, warehouse, product, cath_lab_store, hospital):
    from inventory.actors import Actor
    from inventory.services.consumption import ClinicalContext, consume_unit

    units = receive(keeper_actor, supplier, warehouse, product, [f"C{n}" for n in range(4)])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    context = ClinicalContext(encounter="ZY2026001", department=cath_lab_store.department)
    return [consume_unit(actor=Actor(user=keeper_actor.user), hospital=hospital, unit=unit, context=context,
                         idempotency_key=f"use-{unit.pk}") for unit in units]


def test_uses_and_his_deliveries_walk_whole_without_a_count(api, used):
    uses, _ = walk(api, "/api/v1/consumptions/")
    deliveries, _ = walk(api, "/api/v1/his/deliveries/")

    assert uses == sorted(Consumption.objects.values_list("pk", flat=True))
    assert deliveries == sorted(ChargeDelivery.objects.values_list("pk", flat=True))


def test_a_use_refunded_after_a_moment_is_updated_after_it(api, used, keeper_actor):
    from inventory.services.consumption import refund_consumption

    moment = timezone.now()
    refund_consumption(actor=keeper_actor, consumption=used[1], reason_code="WRONG", to_quarantine=False,
                       idempotency_key="refund-1")

    answer = api.get("/api/v1/consumptions/", {"updated_after": moment.isoformat(), "cursor": ""}).json()

    assert [row["id"] for row in answer["results"]] == [used[1].pk]


def test_alerts_walk_in_id_order_whatever_their_ordering(api, hospital, product):
    alerts = [Alert.objects.create(hospital=hospital, kind=Alert.Kind.values[0], product=product, subject_key=f"s{n}",
                                   message=f"m{n}") for n in range(5)]

    seen, _ = walk(api, "/api/v1/alerts/", limit=2, ordering="-last_seen_at")

    assert seen == sorted(alert.pk for alert in alerts)


def test_page_numbers_for_people_keep_their_count(api, keeper_actor, supplier, warehouse, product):
    receive(keeper_actor, supplier, warehouse, product, ["P1", "P2"])

    answer = api.get("/api/v1/units/", {"limit": 1}).json()

    assert (answer["count"], len(answer["results"])) == (2, 1)
    assert "next_cursor" not in answer


@pytest.mark.parametrize("cursor", ["garbage!", "eyJhZnRlciI6ICJ4In0", "eyJhZnRlciI6IC0xfQ"])
def test_a_cursor_the_api_did_not_give_is_a_400(api, cursor):
    response = api.get("/api/v1/movements/", {"cursor": cursor})

    assert response.status_code == 400
    assert {"code", "detail"} <= set(response.json())


def test_another_hospitals_rows_never_come_through_a_cursor(
    keeper_actor, supplier, warehouse, product, other_hospital
):
    from tests.conftest import api_client_for

    receive(keeper_actor, supplier, warehouse, product, ["T1", "T2"])
    stranger = factories.UserFactory(username="stranger", hospital=other_hospital, roles=["warehouse"])
    assert walk(api_client_for(stranger), "/api/v1/units/")[0] == []
    assert walk(api_client_for(stranger), "/api/v1/movements/")[0] == []


def test_a_cursor_page_naming_no_filter_lists_every_row_and_one_naming_a_filter_is_filtered_and_checked(
    api, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    units = receive(keeper_actor, supplier, warehouse, product, ["F1", "F2", "F3"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units[:1],
                   idempotency_key="one-to-the-store")
    assert walk(api, "/api/v1/units/")[0] == [unit.pk for unit in units]  # no filter named: the filter set is skipped
    assert walk(api, "/api/v1/units/", location=cath_lab_store.pk)[0] == [units[0].pk]
    assert walk(api, "/api/v1/movements/", location=cath_lab_store.pk)[0] == list(
        Movement.objects.filter(to_location=cath_lab_store).values_list("pk", flat=True))
    refused = api.get("/api/v1/units/", {"cursor": "", "status": "NOT_A_STATUS"})
    assert refused.status_code == 400 and "status" in refused.json()["problems"][0]["field"], refused.content
