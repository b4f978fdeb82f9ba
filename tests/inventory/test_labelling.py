import pytest

from inventory.models import TagBinding, Unit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests.conftest import scan_every_line
from tests.factories import gs1_udi

pytestmark = pytest.mark.django_db


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    price = product.agreements.get().unit_price
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN", receiving_location=warehouse,
        lines=[LineInput(price, udi=gs1_udi(product.udi_di, serial=s)) for s in ("T1", "T2")], idempotency_key="dn",
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc")
    return list(Unit.objects.order_by("serial"))


def test_tag_is_bound_normalised_and_shown_on_the_unit(api, units):
    response = api.post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": "3034 257b f400 b780 0000 0001"})
    assert response.status_code == 200, response.data
    assert response.data["epc"] == "3034257BF400B78000000001"
    again = api.post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": "3034257BF400B78000000001"})
    assert again.status_code == 200
    assert TagBinding.objects.count() == 1


def test_a_tag_cannot_move_to_another_unit_without_an_explicit_unbind(api, units):
    api.post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": "E2801160600002054CC2096F"})
    stolen = api.post(f"/api/v1/units/{units[1].pk}/bind-tag/", {"epc": "E2801160600002054CC2096F"})
    assert (stolen.status_code, stolen.data["code"]) == (409, "TAG_IN_USE")
    second_tag = api.post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": "E2801160600002054CC20970"})
    assert (second_tag.status_code, second_tag.data["code"]) == (409, "UNIT_ALREADY_TAGGED")

    assert api.post(f"/api/v1/units/{units[0].pk}/unbind-tag/", {}).status_code == 400
    assert api.post(f"/api/v1/units/{units[0].pk}/unbind-tag/", {"reason": "标签损坏"}).status_code == 200
    moved = api.post(f"/api/v1/units/{units[1].pk}/bind-tag/", {"epc": "E2801160600002054CC2096F"})
    assert moved.status_code == 200
    history = list(TagBinding.objects.values_list("unit__serial", "unbind_reason"))
    assert history == [("T1", "标签损坏"), ("T2", "")]


@pytest.mark.parametrize("epc", ["not-hex", "ABC", "A" * 66, "ABCDE"])
def test_invalid_epc_is_refused(api, units, epc):
    response = api.post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": epc})
    assert (response.status_code, response.data["code"]) == (400, "INVALID_EPC")


def test_unbinding_an_untagged_unit_is_refused(api, units):
    response = api.post(f"/api/v1/units/{units[0].pk}/unbind-tag/", {"reason": "x"})
    assert (response.status_code, response.data["code"]) == (409, "UNIT_NOT_TAGGED")


def test_auditor_cannot_bind_tags(auditor, units):
    from tests.conftest import api_client_for

    assert api_client_for(auditor).post(f"/api/v1/units/{units[0].pk}/bind-tag/", {"epc": "AABBCCDD"}).status_code == 403
