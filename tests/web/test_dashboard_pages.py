"""The dashboard of each role through Django's test client: what is waiting, each count linking to
the list that shows the same things, the charts with their numbers, and no sum of lot quantities
across units of measure. Runs on SQLite and on PostgreSQL."""
import datetime
import re
from decimal import Decimal
from html import unescape
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Alert, DeliveryNote, LotBalance, LotCostLayer
from inventory.selectors.dashboard import expiry_by_month, weekly_use
from inventory.selectors.stock import StockScope
from inventory.services.receiving import LineInput, receive_delivery_note
from tests import factories
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db


def link_of(page: str, marker: str) -> str:
    """The href of the first link inside the element carrying `marker` (an attribute)."""
    found = re.search(rf'{marker}[^>]*>\s*<a href="([^"]+)"', page)
    assert found, f"no link under {marker}"
    return unescape(found.group(1))


def follow(client, href: str):
    response = client.get(href)
    assert response.status_code == 200, href
    return response


def test_keeper_sees_notes_to_accept_and_the_count_opens_them(world):
    receive_delivery_note(
        actor=Actor(user=world.keeper), hospital=world.warehouse.hospital, supplier=world.supplier, number="DN-WAIT-1",
        receiving_location=world.warehouse,
        lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot="L-W", quantity=5,
                         expiry=timezone.localdate() + datetime.timedelta(days=400))],
        idempotency_key="rcv-wait-1",
    )
    keeper = client_for(world.keeper)
    response = keeper.get("/")
    assert response.context["figures"].work.notes_to_accept == 1
    page = text(response)
    listed = follow(keeper, link_of(page, 'data-work="notes"'))
    assert [note.number for note in listed.context["page"]] == ["DN-WAIT-1"]
    assert listed.context["page"].paginator.count == DeliveryNote.objects.filter(
        status=DeliveryNote.Status.RECEIVED).count()


def test_alert_counts_link_to_the_alerts_they_count(world):
    keeper = client_for(world.keeper)
    page = text(keeper.get("/"))
    figures = keeper.get("/").context["figures"]
    new = follow(keeper, link_of(page, 'data-work="alerts-new"'))
    assert new.context["page"].paginator.count == figures.work.alerts_new == 2
    assert {alert.status for alert in new.context["page"]} == {Alert.Status.OPEN}
    critical = follow(keeper, link_of(page, 'data-work="alerts-critical"'))
    assert [alert.pk for alert in critical.context["page"]] == [world.alert.pk] and figures.work.alerts_critical == 1
    for count in figures.alerts:
        listed = follow(keeper, link_of(page, f'data-alert-kind="{count.kind}"'))
        assert listed.context["page"].paginator.count == count.total


def test_each_expiry_tier_links_to_the_units_and_lots_it_counts(world):
    today = timezone.localdate()
    Unit = type(world.units["SN-A1"])
    Unit.objects.filter(pk=world.units["SN-A1"].pk).update(expiry=today + datetime.timedelta(days=10))
    Unit.objects.filter(pk=world.units["SN-A2"].pk).update(expiry=today + datetime.timedelta(days=45))
    Unit.objects.filter(pk=world.units["SN-C1"].pk).update(expiry=today - datetime.timedelta(days=2))
    keeper = client_for(world.keeper)
    response = keeper.get("/")
    page = text(response)
    tiers = {tier.days: tier for tier in response.context["figures"].expiry}
    assert (tiers[None].units, tiers[30].units, tiers[60].units, tiers[90].units) == (1, 1, 1, 0)
    for days, serial in ((None, ["SN-C1"]), (30, ["SN-A1"]), (60, ["SN-A2"]), (90, [])):
        marker = f'data-tier="{days or "expired"}"'
        row = page[page.index(marker):]
        href = unescape(re.search(r'<a href="([^"]+)" data-link="units"', row).group(1))
        assert sorted(unit.serial for unit in follow(keeper, href).context["page"]) == serial, days
        lots = unescape(re.search(r'<a href="([^"]+)" data-link="lots"', row).group(1))
        assert urlparse(lots).path == "/stock/lots/" and list(follow(keeper, lots).context["page"]) == []
    expired = follow(keeper, link_of(page, 'data-work="expired"'))
    assert [unit.serial for unit in expired.context["page"]] == ["SN-C1"]


def test_lot_quantities_are_shown_per_unit_of_measure_never_added(world, hospital, warehouse):
    boxed = factories.SupplyAgreementFactory(product__hospital=hospital, product__unit_of_measure="盒",
                                             product__tracking="LOT", product__is_high_value=False,
                                             supplier=world.supplier).product
    balance = LotBalance.objects.create(hospital=hospital, product=boxed, lot="B-1", location=warehouse,
                                        unit_cost=Decimal("10.00"), quantity=7,
                                        expiry=timezone.localdate() + datetime.timedelta(days=20))
    LotCostLayer.objects.create(balance=balance, unit_cost=Decimal("10.00"), quantity=7)
    response = client_for(world.keeper).get("/")
    page = text(response)
    measure = world.lot_product.unit_of_measure
    warehouse_row = next(row for row in response.context["figures"].stock_value.locations
                         if row.location_id == warehouse.pk)
    assert [(quantity.amount, quantity.measure) for quantity in warehouse_row.lot_quantities] == [(20, measure),
                                                                                                  (7, "盒")]
    assert f"20 {measure} · 7 盒" in page and ">27<" not in page
    within_30 = next(tier for tier in response.context["figures"].expiry if tier.days == 30)
    assert [(quantity.amount, quantity.measure) for quantity in within_30.lot_quantities] == [(7, "盒")]


def test_the_charts_carry_their_numbers(world):
    keeper = client_for(world.keeper)
    response = keeper.get("/")
    page = text(response)
    weeks = response.context["figures"].use_by_week
    assert len(weeks) == 12 and weeks[-1].first_day <= timezone.localdate() <= weeks[-1].last_day
    assert (weeks[-1].uses, str(weeks[-1].value)) == (1, "1200.00")
    assert sum(week.uses for week in weeks[:-1]) == 0
    assert page.count('data-chart="chart-use"') == 1 and page.count('data-chart="chart-expiry"') == 1
    assert "<title>" in page and "¥1,200.00" in page[page.index('data-chart="chart-use"'):]
    months = response.context["figures"].expiry_months
    assert months[0].month is None and len(months) == 7
    assert 'data-table="use-by-week"' in page and 'data-table="expiry-by-month"' in page
    assert "cdn" not in page.lower() and "<script" not in page[page.index('data-card="work"'):].split("</main>")[0]


def test_weekly_use_folds_days_into_weeks_and_leaves_refunds_out(world):
    scope = StockScope.of(world.keeper)
    today = timezone.localdate()
    weeks = weekly_use(scope, weeks=3, today=today)
    assert [week.first_day.weekday() for week in weeks] == [0, 0, 0]
    assert weeks[-1].uses == 1
    from inventory.models import Consumption

    Consumption.objects.filter(pk=world.consumption.pk).update(refunded_at=timezone.now())
    assert weekly_use(scope, weeks=3, today=today)[-1].uses == 0


def test_expiry_by_month_counts_units_and_values_at_cost(world):
    today = datetime.date(2027, 1, 20)
    Unit = type(world.units["SN-A1"])
    Unit.objects.filter(pk=world.units["SN-A1"].pk).update(expiry=datetime.date(2027, 1, 25))
    Unit.objects.filter(pk=world.units["SN-A2"].pk).update(expiry=datetime.date(2027, 3, 1))
    Unit.objects.filter(pk=world.units["SN-C1"].pk).update(expiry=datetime.date(2027, 1, 5))
    months = expiry_by_month(StockScope.of(world.keeper), months=3, today=today)
    assert [(month.month, month.units, str(month.value)) for month in months] == [
        (None, 1, "8800.00"), (datetime.date(2027, 1, 1), 1, "1200.00"), (datetime.date(2027, 2, 1), 0, "0.00"),
        (datetime.date(2027, 3, 1), 1, "1200.00"),
    ]
    assert (months[1].first_day, months[1].last_day) == (today, datetime.date(2027, 1, 31))


def test_his_count_links_to_the_failing_charges(world):
    auditor = client_for(world.auditor)
    page = text(auditor.get("/"))
    listed = follow(auditor, link_of(page, 'data-work="his"'))
    assert [delivery.charge.encounter for delivery in listed.context["page"]] == [world.consumption.encounter]
    assert "HIS answered 503" in text(listed)


@pytest.mark.parametrize("role", ["keeper", "operator", "auditor"])
def test_each_book_keeping_role_sees_the_work_list_and_charts(world, role):
    page = text(client_for(getattr(world, role)).get("/"))
    assert 'data-card="work"' in page and 'data-chart="chart-use"' in page
    assert ('data-work="notes"' in page) is (role != "auditor")  # auditors do not receive


def test_admin_sees_the_work_list(world, hospital):
    admin = factories.UserFactory(username="dash-admin", hospital=hospital, roles=["admin"])
    page = text(client_for(admin).get("/"))
    assert 'data-work="notes"' in page and 'data-chart="chart-expiry"' in page


def test_a_nurse_home_leads_to_her_work_without_the_books(world):
    page = text(client_for(world.nurse).get("/"))
    assert 'data-link="use"' in page and 'data-card="work"' not in page and "data-chart" not in page
    assert client_for(world.nurse).get("/his/").status_code == 403


def test_the_dashboard_in_english(world):
    page = text(client_for(world.keeper, language="en").get("/"))
    assert "Waiting for you" in page and "Held stock expiring by month" in page
