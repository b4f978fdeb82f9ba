"""Price changes (调价): a new dated agreement with a reason and an approver; the old one ends the day
before; editing a price in place is refused (API, admin); the change alerts and shows on the timeline."""
import datetime
from decimal import Decimal

import pytest
from django.test import Client

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Alert, SupplyAgreement
from inventory.selectors.prices import price_timeline
from inventory.services.prices import change_price
from inventory.services.receiving import LineInput, accept_delivery_note, agreed_price, receive_delivery_note
from tests import factories
from tests.conftest import api_client_for, scan_every_line
from tests.factories import TODAY, gs1_udi
from tests.web.test_operations_pages import client_for, text

pytestmark = pytest.mark.django_db
TOMORROW = TODAY + datetime.timedelta(days=1)


def codes(refused) -> list[str]:
    return [problem.code for problem in refused.value.problems]


def test_a_change_ends_the_old_agreement_the_day_before_and_starts_a_new_one(keeper_actor, operator, agreement):
    change = change_price(
        actor=keeper_actor, agreement=agreement, new_price=Decimal("1100.00"), effective_from=TOMORROW,
        reason="省平台联动降价", approved_by=operator,
    )

    agreement.refresh_from_db()
    new = change.agreement
    assert (agreement.unit_price, agreement.valid_to) == (Decimal("1200.00"), TODAY)
    assert (new.unit_price, new.valid_from, new.valid_to, new.supplier) == (
        Decimal("1100.00"), TOMORROW, TODAY + datetime.timedelta(days=365), agreement.supplier,
    )
    assert (change.old_price, change.approved_by, change.recorded_by) == (Decimal("1200.00"), operator, keeper_actor.user)
    # Today the old price is in force, from tomorrow the new one: no day with two prices or none.
    assert agreed_price(hospital=agreement.hospital, supplier=agreement.supplier, product=agreement.product) == Decimal(
        "1200.00"
    )
    in_force = SupplyAgreement.objects.filter(product=agreement.product, valid_from__lte=TOMORROW,
                                              valid_to__gte=TOMORROW)
    assert list(in_force) == [new]


def test_a_change_from_today_is_the_price_acceptance_checks(keeper_actor, operator, agreement, supplier, warehouse):
    change_price(actor=keeper_actor, agreement=agreement, new_price=Decimal("1100.00"), effective_from=TODAY,
                 reason="降价", approved_by=operator)
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-1", receiving_location=warehouse,
        lines=[LineInput(Decimal("1200.00"), udi=gs1_udi(agreement.product.udi_di, serial="OLD")),
               LineInput(Decimal("1100.00"), udi=gs1_udi(agreement.product.udi_di, serial="NEW"))],
        idempotency_key="rcv-1",
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1")

    decisions = dict(note.lines.values_list("serial", "acceptance__reason_code"))
    assert decisions == {"OLD": "PRICE_MISMATCH", "NEW": ""}


def test_every_problem_of_a_change_is_refused_and_nothing_changes(keeper_actor, keeper, agreement, other_hospital):
    foreign_operator = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    for approver in (keeper, foreign_operator):
        with pytest.raises(Refused) as refused:
            change_price(actor=keeper_actor, agreement=agreement, new_price=Decimal("1200.00"),
                         effective_from=TODAY - datetime.timedelta(days=1), reason=" ", approved_by=approver)
        assert codes(refused) == [
            "PRICE_CHANGE_DATE_INVALID", "PRICE_CHANGE_APPROVER_INVALID", "PRICE_CHANGE_REASON_MISSING",
            "PRICE_UNCHANGED",
        ]
    assert SupplyAgreement.objects.count() == 1


def test_a_change_raises_a_price_alert_for_the_people_who_bill(keeper_actor, operator, agreement):
    change = change_price(actor=keeper_actor, agreement=agreement, new_price=Decimal("980.00"),
                          effective_from=TOMORROW, reason="集采中选价", approved_by=operator)

    alert = Alert.objects.get(kind=Alert.Kind.PRICE_CHANGED)
    assert (alert.product, alert.subject_key) == (agreement.product, f"price-change:{change.pk}")
    assert "1200.00 → 980.00" in alert.message
    assert alert.details["new_price"] == "980.00"


def test_patching_a_price_in_place_is_409_and_other_fields_still_change(operator, agreement):
    client = api_client_for(operator)
    url = f"/api/v1/supply-agreements/{agreement.pk}/"

    for method in (client.patch, client.put):
        body = {"unit_price": "999.00"} if method is client.patch else {
            "supplier": agreement.supplier_id, "product": agreement.product_id, "unit_price": "999.00",
            "valid_from": str(agreement.valid_from), "valid_to": str(agreement.valid_to),
        }
        response = method(url, body, format="json")
        assert (response.status_code, response.json()["code"]) == (409, "PRICE_EDIT_REFUSED")
    assert client.patch(url, {"unit_price": "1200.00", "platform_reference": "GD-1"}, format="json").status_code == 200
    agreement.refresh_from_db()
    assert (agreement.unit_price, agreement.platform_reference) == (Decimal("1200.00"), "GD-1")


def test_the_admin_shows_the_price_read_only(agreement, hospital):
    admin = factories.UserFactory(hospital=None, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    url = f"/admin/inventory/supplyagreement/{agreement.pk}/change/"

    page = client.get(url).content.decode()
    assert 'name="unit_price"' not in page
    client.post(url, {
        "hospital": hospital.pk, "supplier": agreement.supplier_id, "product": agreement.product_id,
        "unit_price": "1.00", "valid_from": str(agreement.valid_from), "valid_to": str(agreement.valid_to),
        "is_active": "on",
    })
    agreement.refresh_from_db()
    assert agreement.unit_price == Decimal("1200.00")


def test_price_change_api_and_the_products_timeline_page(operator, keeper, agreement):
    client = api_client_for(operator)
    response = client.post("/api/v1/price-changes/", {
        "agreement": agreement.pk, "new_price": "1050.00", "effective_from": str(TOMORROW), "reason": "谈判降价",
        "approved_by": operator.pk,
    }, format="json")
    assert response.status_code == 201, response.json()
    assert api_client_for(keeper).post("/api/v1/price-changes/", {}, format="json").status_code == 403
    listed = client.get("/api/v1/price-changes/", {"product": agreement.product_id}).json()
    assert [row["new_price"] for row in listed["results"]] == ["1050.00"]

    timeline = price_timeline(agreement.product)
    assert [(period.unit_price, period.change is not None) for period in timeline] == [
        (Decimal("1200.00"), False), (Decimal("1050.00"), True)
    ]
    page = text(client_for(keeper).get(f"/products/{agreement.product_id}/prices/"))
    assert "谈判降价" in page and page.count("data-agreement=") == 2
    assert 'data-form="price-change"' not in page  # keepers read, SPD operators and admins change


def test_price_change_on_the_page_by_an_operator(operator, agreement):
    client = client_for(operator, "zh-hans")
    refused = client.post(f"/products/{agreement.product_id}/prices/", {
        "agreement": agreement.pk, "new_price": "1200.00", "effective_from": str(TOMORROW), "reason": "x",
        "approved_by": operator.pk,
    })
    assert 'data-code="PRICE_UNCHANGED"' in text(refused)

    done = client.post(f"/products/{agreement.product_id}/prices/", {
        "agreement": agreement.pk, "new_price": "1180.00", "effective_from": str(TOMORROW), "reason": "调价",
        "approved_by": operator.pk,
    })
    assert done.status_code == 302
    assert SupplyAgreement.objects.filter(product=agreement.product).count() == 2


def test_another_hospitals_product_prices_do_not_exist(keeper, other_hospital):
    foreign = factories.SupplyAgreementFactory(product__hospital=other_hospital)
    stranger = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    change = change_price(actor=Actor(user=stranger), agreement=foreign, new_price=Decimal("1.00"),
                          effective_from=TOMORROW, reason="x", approved_by=stranger)
    assert client_for(keeper).get(f"/products/{foreign.product_id}/prices/").status_code == 404
    assert api_client_for(keeper).get("/api/v1/price-changes/").json()["count"] == 0
    assert api_client_for(keeper).get(f"/api/v1/price-changes/{change.pk}/").status_code == 404
