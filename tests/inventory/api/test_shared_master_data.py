"""Who may change the alliance's shared master data (suppliers, manufacturers, certificates): the
hospital that keeps a record, or an alliance steward — an alliance administrator, or an administrator
or SPD operator of the lead hospital; a certificate another hospital's acceptance relies on, only a
steward."""
import datetime

import pytest

from inventory.models import Certificate, Manufacturer, Supplier
from inventory.validators import make_uscc
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def member_operator(other_hospital):
    """An SPD operator of a member hospital (`hospital` is the lead one)."""
    return factories.UserFactory(username="member-op", hospital=other_hospital, roles=["spd_operator"])


@pytest.fixture
def lead_admin(hospital):
    return factories.UserFactory(username="lead-admin", hospital=hospital, roles=["admin"])


@pytest.fixture
def alliance_admin(db):
    return factories.UserFactory(username="alliance", hospital=None, is_superuser=True, roles=[])


def day(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


def records_kept_by(keeper) -> dict:
    """One record of each shared kind kept by `keeper` (None: the alliance), relied on by no one."""
    supplier = factories.SupplierFactory(licences=False, owner_hospital=keeper)
    return {
        "suppliers": supplier,
        "manufacturers": factories.ManufacturerFactory(owner_hospital=keeper),
        "certificates": factories.CertificateFactory(
            supplier=supplier, kind=Certificate.Kind.AUTHORISATION, owner_hospital=keeper
        ),
    }


CHANGES = {"suppliers": {"contact": "王经理"}, "manufacturers": {"country": "DE"}, "certificates": {"valid_to": day(999)}}


@pytest.mark.parametrize("prefix", list(CHANGES))
@pytest.mark.parametrize(("who", "kept_by", "allowed"), [
    ("member_operator", "member", True),
    ("member_operator", "lead", False),
    ("member_operator", "alliance", False),
    ("operator", "member", True),  # the lead hospital's SPD operator is a steward
    ("lead_admin", "alliance", True),
    ("alliance_admin", "member", True),
    ("keeper", "lead", False),  # a warehouse keeper writes no master data at all
])
def test_a_shared_record_is_changed_only_by_its_keeper_or_a_steward(
    request, hospital, other_hospital, keeper, prefix, who, kept_by, allowed
):
    owner = {"member": other_hospital, "lead": hospital, "alliance": None}[kept_by]
    record = records_kept_by(owner)[prefix]
    client = api_client_for(request.getfixturevalue(who))

    def stored() -> dict:
        row = type(record).objects.filter(pk=record.pk).first()
        return {name: str(getattr(row, name)) for name in CHANGES[prefix]} if row else {}

    before = stored()
    response = client.patch(f"{API}/{prefix}/{record.pk}/", CHANGES[prefix], format="json")

    assert response.status_code == (200 if allowed else 403), response.json()
    assert (stored() == CHANGES[prefix]) is allowed
    if not allowed and who != "keeper":
        assert response.json()["code"] == "SHARED_RECORD_KEPT_ELSEWHERE"
    deleted = client.delete(f"{API}/{prefix}/{record.pk}/")
    assert deleted.status_code in ((204, 409) if allowed else (403,))
    if not allowed:
        assert stored() == before


def test_a_new_shared_record_is_kept_by_the_hospital_that_enters_it(member_operator, other_hospital, hospital):
    client = api_client_for(member_operator)

    response = client.post(f"{API}/suppliers/", {"name": "新供应商", "uscc": make_uscc("91330100MA7654321"),
                                                 "owner_hospital": hospital.pk}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["owner_hospital"] == other_hospital.pk
    assert Supplier.objects.get(pk=response.json()["id"]).owner_hospital == other_hospital
    made = client.post(f"{API}/manufacturers/", {"name": "Neu GmbH", "country": "DE"}, format="json")
    assert Manufacturer.objects.get(pk=made.json()["id"]).owner_hospital == other_hospital


def test_an_alliance_administrator_enters_records_the_alliance_keeps(alliance_admin):
    response = api_client_for(alliance_admin).post(f"{API}/manufacturers/", {"name": "联盟厂商"}, format="json")

    assert response.status_code == 201
    assert response.json()["owner_hospital"] is None


@pytest.fixture
def expired_registration(hospital, other_hospital):
    """A registration certificate, expired, kept by the member hospital — and registering a product of
    the lead hospital, whose acceptance therefore relies on it."""
    manufacturer = factories.ManufacturerFactory()
    certificate = factories.CertificateFactory(
        manufacturer=manufacturer, valid_from=TODAY - datetime.timedelta(days=800),
        valid_to=TODAY - datetime.timedelta(days=1), owner_hospital=other_hospital,
    )
    factories.ProductFactory(hospital=hospital, manufacturer=manufacturer, registration_certificate=certificate)
    return certificate


def test_a_member_hospital_cannot_extend_a_certificate_another_hospitals_acceptance_relies_on(
    member_operator, expired_registration
):
    client = api_client_for(member_operator)

    for change in ({"valid_to": day(365)}, {"valid_from": day(-1), "valid_to": day(365)}):
        response = client.patch(f"{API}/certificates/{expired_registration.pk}/", change, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "CERTIFICATE_RELIED_ON_ELSEWHERE")
    assert client.delete(f"{API}/certificates/{expired_registration.pk}/").status_code == 403
    expired_registration.refresh_from_db()
    assert expired_registration.valid_to == TODAY - datetime.timedelta(days=1)


def test_a_steward_extends_a_certificate_the_alliance_relies_on(operator, expired_registration):
    response = api_client_for(operator).patch(
        f"{API}/certificates/{expired_registration.pk}/", {"valid_to": day(365)}, format="json"
    )

    assert response.status_code == 200, response.json()
    expired_registration.refresh_from_db()
    assert expired_registration.valid_to == TODAY + datetime.timedelta(days=365)


def test_a_member_hospital_cannot_add_a_licence_to_a_supplier_another_hospital_buys_from(
    member_operator, agreement, other_hospital
):
    """Acceptance takes any valid licence of the supplier: a new one would unblock the lead hospital."""
    supplier = agreement.supplier
    supplier.owner_hospital = other_hospital
    supplier.save()
    body = {"kind": "DISTRIBUTION_LICENCE", "number": "浙械经营许2099001", "supplier": supplier.pk,
            "valid_from": day(-1), "valid_to": day(700)}

    response = api_client_for(member_operator).post(f"{API}/certificates/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "CERTIFICATE_RELIED_ON_ELSEWHERE")
    assert not Certificate.objects.filter(number="浙械经营许2099001").exists()


def test_a_member_hospital_licenses_its_own_supplier(member_operator, other_hospital):
    supplier = factories.SupplierFactory(licences=False, owner_hospital=other_hospital)
    factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    body = {"kind": "DISTRIBUTION_LICENCE", "number": "浙械经营许2099002", "supplier": supplier.pk,
            "valid_from": day(-1), "valid_to": day(700)}

    response = api_client_for(member_operator).post(f"{API}/certificates/", body, format="json")

    assert response.status_code == 201, response.json()
    assert Certificate.objects.get(number="浙械经营许2099002").owner_hospital == other_hospital


def test_a_certificate_cannot_be_moved_to_a_supplier_another_hospital_relies_on(
    member_operator, agreement, other_hospital
):
    own = factories.SupplierFactory(licences=False, owner_hospital=other_hospital)
    licence = factories.CertificateFactory(supplier=own, kind=Certificate.Kind.AUTHORISATION,
                                           owner_hospital=other_hospital)

    response = api_client_for(member_operator).patch(
        f"{API}/certificates/{licence.pk}/", {"supplier": agreement.supplier.pk}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (403, "CERTIFICATE_RELIED_ON_ELSEWHERE")
    licence.refresh_from_db()
    assert licence.supplier == own
