"""Tenancy in a county alliance (医共体), the isolation matrix: alliance staff read every member of
their alliance and write none of a member's books; a member's staff still see only their hospital —
member A never sees member B's encounters, stock or prices except through the alliance catalog they
share; and a hospital of another alliance is, for everyone here, as if it did not exist."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.services.alliance_catalog import add_agreement, adopt_entries, create_entry
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY, gtin
from tests.inventory.api.test_tenancy import DETAILS, MISSING, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def ours(hospital, supplier):
    return build_world(hospital, supplier, "A")


@pytest.fixture
def theirs(other_hospital, supplier):
    """Member B of the same alliance."""
    return build_world(other_hospital, supplier, "B")


@pytest.fixture
def elsewhere(supplier):
    """A hospital of another county's alliance on the same instance."""
    return build_world(factories.HospitalFactory(code="X001", name="邻县医院", alliance="邻县医共体"), supplier, "X")


def staff(hospital, *roles):
    return factories.UserFactory(hospital=hospital, roles=list(roles))


@pytest.mark.parametrize(("path", "attribute"), DETAILS)
def test_alliance_staff_read_every_member_and_nothing_of_another_alliance(
    ours, theirs, elsewhere, hospital, path, attribute
):
    for role in ("alliance_auditor", "alliance_operator", "alliance_admin"):
        client = api_client_for(staff(hospital, role))

        assert client.get(path.format(getattr(ours, attribute).pk)).status_code == 200
        assert client.get(path.format(getattr(theirs, attribute).pk)).status_code == 200
        foreign = client.get(path.format(getattr(elsewhere, attribute).pk))
        assert foreign.status_code == 404 and foreign.content == client.get(path.format(MISSING)).content


def test_alliance_staff_list_every_members_encounters_and_stock(ours, theirs, elsewhere, hospital):
    client = api_client_for(staff(hospital, "alliance_auditor"))

    encounters = {row["encounter"] for row in client.get("/api/v1/consumptions/").json()["results"]}
    units = {row["id"] for row in client.get("/api/v1/units/", {"limit": 100}).json()["results"]}

    assert encounters == {"ENC-A", "ENC-B"}
    assert {theirs.in_store.pk, ours.in_store.pk} <= units and elsewhere.in_store.pk not in units


def test_alliance_staff_write_nothing_in_a_members_books(ours, theirs, hospital):
    client = api_client_for(staff(hospital, "alliance_auditor", "alliance_operator", "alliance_admin"))

    moved = client.post("/api/v1/transfers/", {
        "units": [theirs.in_store.pk], "to_location": theirs.warehouse.pk, "idempotency_key": "alliance-move",
    }, format="json")
    renamed = client.patch(f"/api/v1/products/{theirs.product.pk}/", {"name": "改名"}, format="json")

    assert moved.status_code == 403 and renamed.status_code == 403
    theirs.product.refresh_from_db()
    assert theirs.product.name != "改名"


@pytest.mark.parametrize(("path", "attribute"), DETAILS)
def test_a_member_never_sees_another_members_objects(ours, theirs, path, attribute, other_hospital):
    for user in (ours.keeper, staff(ours.warehouse.hospital, "auditor"), staff(ours.warehouse.hospital, "admin")):
        answer = api_client_for(user).get(path.format(getattr(theirs, attribute).pk))
        assert answer.status_code == 404


@pytest.mark.parametrize(("path", "attribute"), DETAILS)
def test_an_alliance_role_held_with_a_hospital_role_keeps_the_hospitals_scope(ours, theirs, hospital, path, attribute):
    """A keeper who is also an alliance auditor writes in their hospital: their scope there stays it."""
    client = api_client_for(staff(hospital, "warehouse", "alliance_auditor"))
    assert client.get(path.format(getattr(theirs, attribute).pk)).status_code == 404
    assert client.get(path.format(getattr(ours, attribute).pk)).status_code == 200


def test_members_share_the_alliance_catalog_and_its_prices_but_not_each_others(
    ours, theirs, hospital, other_hospital, supplier
):
    lead_operator = staff(hospital, "spd_operator")
    entry = create_entry(actor=Actor(user=lead_operator), code="AL-1", name="导尿管", udi_di=gtin(940001),
                         manufacturer=factories.ManufacturerFactory(), tracking="LOT")
    add_agreement(actor=Actor(user=lead_operator), entry=entry, supplier=supplier, unit_price=Decimal("12.00"),
                  valid_from=TODAY, valid_to=TODAY + datetime.timedelta(days=90))
    for member, world in ((hospital, ours), (other_hospital, theirs)):
        admin = staff(member, "admin")
        adopt_entries(actor=Actor(user=admin), hospital=member, entries=[entry],
                      codes={entry.pk: {"internal_code": f"{world.warehouse.code}-DNG"}})
    member_a = api_client_for(ours.keeper)

    shared = member_a.get(f"/api/v1/alliance/entries/{entry.pk}/").json()
    their_agreements = member_a.get("/api/v1/supply-agreements/", {"product": theirs.product.pk}).json()

    assert [a["unit_price"] for a in shared["agreements"]] == ["12.00"]  # the alliance's price, shared
    assert [m["internal_code"] for m in shared["members"]] == ["ACW-DNG"]  # only its own link
    assert their_agreements["count"] == 0
    alliance_view = api_client_for(staff(hospital, "alliance_auditor")).get(f"/api/v1/alliance/entries/{entry.pk}/")
    assert [m["internal_code"] for m in alliance_view.json()["members"]] == ["ACW-DNG", "BCW-DNG"]
    elsewhere_admin = staff(factories.HospitalFactory(code="X002", alliance="邻县医共体"), "admin")
    assert api_client_for(elsewhere_admin).get(f"/api/v1/alliance/entries/{entry.pk}/").status_code == 404
    assert api_client_for(elsewhere_admin).get("/api/v1/alliance/entries/").json()["count"] == 0
