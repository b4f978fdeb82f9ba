"""The master-data API: CRUD, who may write, hospital scoping, validation, filters, protected deletes."""

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import models
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory.api.master_data import ProductSerializer
from inventory.models import (
    Certificate,
    Department,
    Hospital,
    Location,
    Manufacturer,
    Product,
    Supplier,
    SupplyAgreement,
)
from inventory.validators import make_uscc
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    """These tests read the messages' wording; the product's default language is Chinese."""
    settings.LANGUAGE_CODE = "en"

API = "/api/v1"
VALID_USCC = make_uscc("91330100MA2ABCDE1")


def days(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


def product_payload(hospital: Hospital, **overrides: Any) -> dict:
    manufacturer = factories.ManufacturerFactory()
    certificate = factories.CertificateFactory(manufacturer=manufacturer)
    return {
        "internal_code": "HV-NEW-1",
        "name": "球囊扩张导管",
        "specification": "2.5×15mm",
        "manufacturer": manufacturer.pk,
        "registration_certificate": certificate.pk,
        "udi_di": factories.gtin(900001),
        "tracking": "UNIT",
        "is_high_value": True,
        **overrides,
    }


@dataclass(frozen=True)
class Resource:
    """How to test one endpoint: make an object of a hospital, a valid create body, a valid change."""

    prefix: str
    model: type[models.Model]
    make: Callable[[Hospital], models.Model]
    payload: Callable[[Hospital], dict]
    change: dict = field(default_factory=dict)
    hospital_owned: bool = False

    def url(self, obj: models.Model | None = None) -> str:
        return f"{API}/{self.prefix}/" + (f"{obj.pk}/" if obj is not None else "")


RESOURCES = {
    r.prefix: r
    for r in [
        Resource(
            "hospitals",
            Hospital,
            make=lambda h: h,
            payload=lambda h: {"code": "H009", "name": "县妇幼保健院", "alliance": "测试县医共体"},
            change={"name": "县人民医院（总院）"},
            hospital_owned=True,
        ),
        Resource(
            "departments",
            Department,
            make=lambda h: factories.DepartmentFactory(hospital=h),
            payload=lambda h: {"code": "ORTHO", "name": "骨科", "kind": "CLINICAL"},
            change={"name": "骨科二病区"},
            hospital_owned=True,
        ),
        Resource(
            "locations",
            Location,
            make=lambda h: factories.LocationFactory(hospital=h),
            payload=lambda h: {
                "code": "ORTHO-STORE",
                "name": "骨科二级库",
                "kind": "DEPARTMENT_STORE",
                "department": factories.DepartmentFactory(hospital=h).pk,
            },
            change={"name": "骨科二级库（新）", "is_active": False},
            hospital_owned=True,
        ),
        Resource(
            "suppliers",
            Supplier,
            make=lambda h: factories.SupplierFactory(licences=False),
            payload=lambda h: {"name": "浙江某医疗器械有限公司", "uscc": VALID_USCC},
            change={"contact": "王经理 0571-88888888"},
        ),
        Resource(
            "manufacturers",
            Manufacturer,
            make=lambda h: factories.ManufacturerFactory(),
            payload=lambda h: {"name": "Medizintechnik GmbH", "uscc": "", "country": "DE"},
            change={"name": "Medizintechnik AG"},
        ),
        Resource(
            "certificates",
            Certificate,
            make=lambda h: factories.CertificateFactory(manufacturer=factories.ManufacturerFactory()),
            payload=lambda h: {
                "kind": "BUSINESS_LICENCE",
                "number": "91330100-LIC-1",
                "supplier": factories.SupplierFactory(licences=False).pk,
                "manufacturer": None,
                "valid_from": days(-10),
                "valid_to": days(700),
            },
            change={"valid_to": days(900)},
        ),
        Resource(
            "products",
            Product,
            make=lambda h: factories.ProductFactory(hospital=h),
            payload=product_payload,
            change={"name": "药物洗脱冠脉支架（新）", "his_charge_code": "HIS-NEW"},
            hospital_owned=True,
        ),
        Resource(
            "supply-agreements",
            SupplyAgreement,
            make=lambda h: factories.SupplyAgreementFactory(product__hospital=h),
            payload=lambda h: {
                "supplier": factories.SupplierFactory().pk,
                "product": factories.ProductFactory(hospital=h).pk,
                "unit_price": "1200.00",  # the factory's: a PUT may not change the price
                "valid_from": days(0),
                "valid_to": days(365),
                "vbp_contract": "VBP-2024-01",
            },
            change={"platform_reference": "GD-2025-0042"},
            hospital_owned=True,
        ),
    ]
}
MASTER_DATA = [prefix for prefix in RESOURCES if prefix != "hospitals"]
HOSPITAL_OWNED = [prefix for prefix, r in RESOURCES.items() if r.hospital_owned]


@pytest.fixture
def nurse(hospital):
    return factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])


@pytest.fixture
def hospital_admin(hospital):
    return factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])


@pytest.fixture
def alliance_admin(db):
    return factories.UserFactory(username="alliance", hospital=None, is_superuser=True, roles=[])


@pytest.fixture
def as_operator(operator):
    return api_client_for(operator)


def problem_fields(response) -> set[str]:
    return {problem["field"] for problem in response.json()["problems"]}


def assert_invalid(response, field_name: str) -> None:
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "INVALID_REQUEST"
    assert field_name in problem_fields(response), response.json()


# --- CRUD by an SPD operator -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_lists_resource_paginated(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)

    response = as_operator.get(resource.url(), {"limit": 100})

    assert response.status_code == 200
    body = response.json()
    assert obj.pk in [row["id"] for row in body["results"]]
    assert body["count"] == len(body["results"])


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_retrieves_resource(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)

    response = as_operator.get(resource.url(obj))

    assert response.status_code == 200
    assert response.json()["id"] == obj.pk


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_creates_resource(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]

    response = as_operator.post(resource.url(), resource.payload(hospital), format="json")

    assert response.status_code == 201, response.json()
    created = resource.model.objects.get(pk=response.json()["id"])
    if resource.hospital_owned:
        assert created.hospital == hospital
        assert response.json()["hospital"] == hospital.pk


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_updates_resource(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)

    response = as_operator.patch(resource.url(obj), resource.change, format="json")

    assert response.status_code == 200, response.json()
    for name, value in resource.change.items():
        assert response.json()[name] == value
    obj.refresh_from_db()
    assert {name: str(getattr(obj, name)) for name in resource.change} == {
        name: str(value) for name, value in resource.change.items()
    }


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_replaces_resource_with_put(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)
    body = {**resource.payload(hospital), **resource.change}

    response = as_operator.put(resource.url(obj), body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == obj.pk


@pytest.mark.parametrize("prefix", MASTER_DATA)
def test_operator_deletes_unreferenced_resource(as_operator, hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)

    response = as_operator.delete(resource.url(obj))

    assert response.status_code == 204
    assert not resource.model.objects.filter(pk=obj.pk).exists()


# --- who may write -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", RESOURCES)
def test_unauthenticated_request_is_refused(hospital, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)
    client = APIClient()

    assert client.get(resource.url()).status_code == 401
    assert client.get(resource.url(obj)).status_code == 401
    response = client.post(resource.url(), {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "NOT_AUTHENTICATED"


def test_token_authentication_is_accepted(operator):
    token = Token.objects.create(user=operator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get(f"{API}/products/").status_code == 200


def test_user_bound_to_no_hospital_is_refused(db):
    drifter = factories.UserFactory(hospital=None, roles=["spd_operator"])

    response = api_client_for(drifter).get(f"{API}/suppliers/")

    assert response.status_code == 403


@pytest.mark.parametrize("prefix", RESOURCES)
@pytest.mark.parametrize("role", ["auditor", "nurse", "keeper"])
def test_auditor_nurse_and_warehouse_keeper_read_but_cannot_write(request, hospital, role, prefix):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)
    client = api_client_for(request.getfixturevalue(role))
    count = resource.model.objects.count()

    assert client.get(resource.url(obj)).status_code == 200
    for response in (
        client.post(resource.url(), resource.payload(hospital), format="json"),
        client.patch(resource.url(obj), resource.change, format="json"),
        client.delete(resource.url(obj)),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "PERMISSION_DENIED"
    assert resource.model.objects.count() == count


def test_operator_cannot_edit_hospitals(as_operator, hospital):
    response = as_operator.patch(f"{API}/hospitals/{hospital.pk}/", {"name": "改名"}, format="json")

    assert response.status_code == 403


def test_hospital_admin_renames_own_hospital_but_not_its_alliance_facts(hospital_admin, hospital):
    response = api_client_for(hospital_admin).patch(
        f"{API}/hospitals/{hospital.pk}/", {"name": "县人民医院（总院）", "code": "X1", "is_lead": False}, format="json"
    )

    assert response.status_code == 200
    hospital.refresh_from_db()
    assert (hospital.name, hospital.code, hospital.is_lead) == ("县人民医院（总院）", "H001", True)


def test_only_an_alliance_admin_adds_or_removes_hospitals(hospital_admin, alliance_admin, hospital):
    payload = RESOURCES["hospitals"].payload(hospital)

    assert api_client_for(hospital_admin).post(f"{API}/hospitals/", payload, format="json").status_code == 403
    assert api_client_for(hospital_admin).delete(f"{API}/hospitals/{hospital.pk}/").status_code == 403
    response = api_client_for(alliance_admin).post(f"{API}/hospitals/", payload, format="json")
    assert response.status_code == 201
    assert api_client_for(alliance_admin).delete(f"{API}/hospitals/{response.json()['id']}/").status_code == 204


# --- hospital scoping --------------------------------------------------------------------------


@pytest.fixture
def theirs(other_hospital):
    """One object of every hospital-owned resource, belonging to the other hospital."""
    return {prefix: RESOURCES[prefix].make(other_hospital) for prefix in HOSPITAL_OWNED}


@pytest.mark.parametrize("prefix", HOSPITAL_OWNED)
def test_other_hospitals_objects_are_absent_from_list(hospital_admin, hospital, theirs, prefix):
    resource = RESOURCES[prefix]
    ours = resource.make(hospital)

    response = api_client_for(hospital_admin).get(resource.url(), {"limit": 100})

    ids = [row["id"] for row in response.json()["results"]]
    assert ours.pk in ids
    assert theirs[prefix].pk not in ids


@pytest.mark.parametrize(
    ("prefix", "method"),
    # Deleting any hospital is refused with 403 to all but alliance admins (tested above).
    [
        (prefix, method)
        for prefix in HOSPITAL_OWNED
        for method in ("get", "put", "patch", "delete")
        if (prefix, method) != ("hospitals", "delete")
    ],
)
def test_other_hospitals_object_is_not_found(hospital_admin, hospital, theirs, prefix, method):
    resource = RESOURCES[prefix]
    obj = theirs[prefix]
    before = resource.model.objects.filter(pk=obj.pk).values().get()
    body = {**resource.payload(hospital), **resource.change} if method == "put" else resource.change

    response = getattr(api_client_for(hospital_admin), method)(resource.url(obj), body, format="json")

    assert response.status_code == 404
    assert str(obj) not in response.content.decode()
    assert resource.model.objects.filter(pk=obj.pk).values().get() == before


FOREIGN_KEYS = [
    ("locations", "department", lambda h: factories.DepartmentFactory(hospital=h)),
    ("locations", "parent", lambda h: factories.LocationFactory(hospital=h)),
    ("supply-agreements", "product", lambda h: factories.ProductFactory(hospital=h)),
]


@pytest.mark.parametrize(("prefix", "field_name", "make_target"), FOREIGN_KEYS)
def test_reference_to_other_hospitals_object_is_refused_on_create(
    as_operator, hospital, other_hospital, prefix, field_name, make_target
):
    resource = RESOURCES[prefix]
    payload = {**resource.payload(hospital), field_name: make_target(other_hospital).pk}
    count = resource.model.objects.count()

    response = as_operator.post(resource.url(), payload, format="json")

    assert_invalid(response, field_name)
    assert response.json()["problems"][0]["code"] == "DOES_NOT_EXIST"  # not "belongs elsewhere": no oracle
    assert resource.model.objects.count() == count


@pytest.mark.parametrize(("prefix", "field_name", "make_target"), FOREIGN_KEYS)
def test_reference_to_other_hospitals_object_is_refused_on_update(
    as_operator, hospital, other_hospital, prefix, field_name, make_target
):
    resource = RESOURCES[prefix]
    obj = resource.make(hospital)

    response = as_operator.patch(resource.url(obj), {field_name: make_target(other_hospital).pk}, format="json")

    assert_invalid(response, field_name)


def test_hospital_given_by_a_hospital_user_is_ignored(as_operator, hospital, other_hospital):
    response = as_operator.post(
        f"{API}/departments/", {"code": "ORTHO", "name": "骨科", "hospital": other_hospital.pk}, format="json"
    )

    assert response.status_code == 201
    assert Department.objects.get(pk=response.json()["id"]).hospital == hospital


def test_user_sees_only_own_hospital(as_operator, hospital, other_hospital):
    response = as_operator.get(f"{API}/hospitals/")

    assert [row["id"] for row in response.json()["results"]] == [hospital.pk]


def test_alliance_admin_sees_every_hospital_and_their_objects(alliance_admin, hospital, other_hospital):
    ours, theirs = factories.ProductFactory(hospital=hospital), factories.ProductFactory(hospital=other_hospital)
    client = api_client_for(alliance_admin)

    assert {row["id"] for row in client.get(f"{API}/hospitals/").json()["results"]} == {hospital.pk, other_hospital.pk}
    assert {row["id"] for row in client.get(f"{API}/products/").json()["results"]} == {ours.pk, theirs.pk}


def test_alliance_admin_creates_in_the_hospital_they_choose(alliance_admin, other_hospital):
    client = api_client_for(alliance_admin)
    body = {"code": "ORTHO", "name": "骨科"}

    assert_invalid(client.post(f"{API}/departments/", body, format="json"), "hospital")
    response = client.post(f"{API}/departments/", {**body, "hospital": other_hospital.pk}, format="json")
    assert response.status_code == 201
    assert Department.objects.get(pk=response.json()["id"]).hospital == other_hospital


def test_alliance_admin_cannot_mix_hospitals_in_one_object(alliance_admin, hospital, other_hospital):
    payload = {**RESOURCES["supply-agreements"].payload(other_hospital), "hospital": hospital.pk}

    response = api_client_for(alliance_admin).post(f"{API}/supply-agreements/", payload, format="json")

    assert_invalid(response, "product")


def test_hospital_of_an_object_never_changes(alliance_admin, hospital, other_hospital):
    product = factories.ProductFactory(hospital=hospital)

    response = api_client_for(alliance_admin).patch(
        f"{API}/products/{product.pk}/", {"hospital": other_hospital.pk}, format="json"
    )

    assert response.status_code == 200
    product.refresh_from_db()
    assert product.hospital == hospital


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uscc", "says"),
    [
        (VALID_USCC[:-1] + ("0" if VALID_USCC[-1] != "0" else "1"), "check character"),
        ("91330100MA2ABCDE", "18 characters"),
        (VALID_USCC.lower(), "upper case"),
    ],
)
def test_invalid_uscc_is_refused_naming_the_field(as_operator, uscc, says):
    response = as_operator.post(f"{API}/suppliers/", {"name": "某公司", "uscc": uscc}, format="json")

    assert_invalid(response, "uscc")
    assert says in response.json()["detail"]
    assert not Supplier.objects.filter(name="某公司").exists()


def test_manufacturer_uscc_is_validated_when_given(as_operator):
    response = as_operator.post(f"{API}/manufacturers/", {"name": "某制造商", "uscc": "123"}, format="json")

    assert_invalid(response, "uscc")


def test_duplicate_uscc_is_refused(as_operator, supplier):
    response = as_operator.post(f"{API}/suppliers/", {"name": "另一家", "uscc": supplier.uscc}, format="json")

    assert_invalid(response, "uscc")


def test_udi_di_with_wrong_gtin_check_digit_is_refused(as_operator, hospital):
    good = factories.gtin(900001)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)

    response = as_operator.post(f"{API}/products/", product_payload(hospital, udi_di=bad), format="json")

    assert_invalid(response, "udi_di")
    assert "check digit" in response.json()["detail"]


def test_udi_di_of_another_issuer_is_accepted(as_operator, hospital):
    response = as_operator.post(
        f"{API}/products/", product_payload(hospital, udi_di="MA.156.M0.1001234"), format="json"
    )

    assert response.status_code == 201


@pytest.mark.parametrize("field_name", ["internal_code", "udi_di"])
def test_duplicate_product_code_in_the_same_hospital_is_refused(as_operator, hospital, field_name):
    existing = factories.ProductFactory(hospital=hospital)

    response = as_operator.post(
        f"{API}/products/", product_payload(hospital, **{field_name: getattr(existing, field_name)}), format="json"
    )

    assert_invalid(response, field_name)
    assert "already exists" in response.json()["detail"]


def test_same_product_codes_are_allowed_in_another_hospital(as_operator, other_hospital):
    existing = factories.ProductFactory(hospital=other_hospital)

    response = as_operator.post(
        f"{API}/products/",
        product_payload(other_hospital, internal_code=existing.internal_code, udi_di=existing.udi_di),
        format="json",
    )

    assert response.status_code == 201


def test_duplicate_that_slips_past_validation_is_a_400_not_a_500(as_operator, hospital, monkeypatch):
    # What a concurrent request that saved the same code a moment earlier looks like.
    monkeypatch.setattr(ProductSerializer, "unique_in_hospital", ())
    existing = factories.ProductFactory(hospital=hospital)

    response = as_operator.post(
        f"{API}/products/", product_payload(hospital, internal_code=existing.internal_code), format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert Product.objects.filter(internal_code=existing.internal_code).count() == 1


def test_duplicate_department_code_is_refused(as_operator, hospital):
    factories.DepartmentFactory(hospital=hospital, code="ORTHO")

    assert_invalid(as_operator.post(f"{API}/departments/", {"code": "ORTHO", "name": "骨科"}, format="json"), "code")


def test_registration_certificate_must_be_the_manufacturers_registration(as_operator, hospital):
    manufacturer = factories.ManufacturerFactory()
    someone_elses = factories.CertificateFactory(manufacturer=factories.ManufacturerFactory())
    licence = factories.CertificateFactory(manufacturer=manufacturer, kind="PRODUCTION_LICENCE")

    for certificate in (someone_elses, licence):
        payload = product_payload(hospital, manufacturer=manufacturer.pk, registration_certificate=certificate.pk)
        assert_invalid(as_operator.post(f"{API}/products/", payload, format="json"), "registration_certificate")


def test_storage_temperature_range_must_not_be_inverted(as_operator, hospital):
    payload = product_payload(hospital, storage_min_c="8.0", storage_max_c="2.0")

    assert_invalid(as_operator.post(f"{API}/products/", payload, format="json"), "storage_max_c")


@pytest.mark.parametrize("holders", ["both", "none"])
def test_certificate_has_exactly_one_holder(as_operator, holders):
    payload = {"kind": "BUSINESS_LICENCE", "number": "LIC-9", "valid_from": days(-1), "valid_to": days(300)}
    if holders == "both":
        payload |= {"supplier": factories.SupplierFactory().pk, "manufacturer": factories.ManufacturerFactory().pk}

    response = as_operator.post(f"{API}/certificates/", payload, format="json")

    assert response.status_code == 400
    assert "exactly one" in response.json()["detail"]


def test_certificate_validity_must_not_end_before_it_starts(as_operator, supplier):
    payload = {
        "kind": "AUTHORISATION",
        "number": "AUTH-1",
        "supplier": supplier.pk,
        "valid_from": days(10),
        "valid_to": days(9),
    }

    assert_invalid(as_operator.post(f"{API}/certificates/", payload, format="json"), "valid_to")


def test_certificate_number_is_unique_per_kind(as_operator, supplier):
    existing = supplier.certificates.first()
    payload = {
        "kind": existing.kind,
        "number": existing.number,
        "supplier": supplier.pk,
        "valid_from": days(0),
        "valid_to": days(9),
    }

    assert_invalid(as_operator.post(f"{API}/certificates/", payload, format="json"), "number")


def test_agreement_price_must_not_be_negative(as_operator, hospital):
    payload = {**RESOURCES["supply-agreements"].payload(hospital), "unit_price": "-0.01"}

    assert_invalid(as_operator.post(f"{API}/supply-agreements/", payload, format="json"), "unit_price")


def test_agreement_validity_must_not_end_before_it_starts(as_operator, hospital):
    payload = {**RESOURCES["supply-agreements"].payload(hospital), "valid_from": days(5), "valid_to": days(4)}

    assert_invalid(as_operator.post(f"{API}/supply-agreements/", payload, format="json"), "valid_to")


def test_partial_update_is_checked_against_the_stored_dates(as_operator, agreement):
    before = agreement.valid_to
    response = as_operator.patch(
        f"{API}/supply-agreements/{agreement.pk}/",
        {"valid_to": (agreement.valid_from - datetime.timedelta(days=1)).isoformat()},
        format="json",
    )

    assert_invalid(response, "valid_to")
    agreement.refresh_from_db()
    assert agreement.valid_to == before


def test_location_cannot_be_put_inside_itself(as_operator, hospital):
    store = factories.LocationFactory(hospital=hospital)
    cabinet = factories.LocationFactory(hospital=hospital, parent=store, kind="SMART_CABINET")

    for parent in (store, cabinet):
        assert_invalid(
            as_operator.patch(f"{API}/locations/{store.pk}/", {"parent": parent.pk}, format="json"), "parent"
        )


# --- protected deletes -------------------------------------------------------------------------


def test_deleting_a_product_under_agreement_is_refused_as_in_use(as_operator, product):
    response = as_operator.delete(f"{API}/products/{product.pk}/")

    assert response.status_code == 409
    assert response.json()["code"] == "IN_USE"
    assert "supply agreement" in response.json()["detail"]
    assert Product.objects.filter(pk=product.pk).exists()


def test_deleting_a_supplier_with_certificates_is_refused_as_in_use(as_operator, supplier):
    response = as_operator.delete(f"{API}/suppliers/{supplier.pk}/")

    assert response.status_code == 409
    assert response.json()["code"] == "IN_USE"


def test_deleting_a_hospital_in_use_is_refused_as_in_use(alliance_admin, warehouse):
    response = api_client_for(alliance_admin).delete(f"{API}/hospitals/{warehouse.hospital_id}/")

    assert response.status_code == 409
    assert response.json()["code"] == "IN_USE"


# --- filters -----------------------------------------------------------------------------------


@pytest.fixture
def catalog(hospital, other_hospital):
    stent = factories.ProductFactory(hospital=hospital, name="药物洗脱冠脉支架", internal_code="HV-STENT")
    infusion = factories.ProductFactory(
        hospital=hospital,
        name="一次性使用输液器",
        tracking="LOT",
        is_high_value=False,
        is_consignment=True,
    )
    factories.ProductFactory(hospital=other_hospital, name="药物洗脱冠脉支架", internal_code="HV-STENT")
    return {"stent": stent, "infusion": infusion}


def ids(response) -> set[int]:
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda c: {"internal_code": "HV-STENT"}, {"stent"}),
        (lambda c: {"udi_di": c["infusion"].udi_di}, {"infusion"}),
        (lambda c: {"nhsa_code": c["stent"].nhsa_code}, {"stent"}),
        (lambda c: {"his_charge_code": c["infusion"].his_charge_code}, {"infusion"}),
        (lambda c: {"tracking": "LOT"}, {"infusion"}),
        (lambda c: {"is_high_value": "true"}, {"stent"}),
        (lambda c: {"is_consignment": "true"}, {"infusion"}),
        (lambda c: {"manufacturer": c["stent"].manufacturer_id}, {"stent"}),
        (lambda c: {"search": "支架"}, {"stent"}),
        (lambda c: {}, {"stent", "infusion"}),
    ],
)
def test_products_are_filtered(as_operator, catalog, query, expected):
    response = as_operator.get(f"{API}/products/", query(catalog))

    assert ids(response) == {catalog[name].pk for name in expected}


def test_locations_are_filtered_by_kind_and_department(as_operator, warehouse, cath_lab_store, cabinet):
    assert ids(as_operator.get(f"{API}/locations/", {"kind": "SMART_CABINET"})) == {cabinet.pk}
    by_department = as_operator.get(f"{API}/locations/", {"department": cath_lab_store.department_id})
    assert ids(by_department) == {cath_lab_store.pk, cabinet.pk}


def test_certificates_are_filtered(as_operator):
    supplier = factories.SupplierFactory(licences=False)
    soon = factories.CertificateFactory(
        supplier=supplier, kind="BUSINESS_LICENCE", valid_to=TODAY + datetime.timedelta(days=20)
    )
    later = factories.CertificateFactory(supplier=supplier, kind="DISTRIBUTION_LICENCE")
    registration = factories.CertificateFactory(manufacturer=factories.ManufacturerFactory())

    assert ids(as_operator.get(f"{API}/certificates/", {"supplier": supplier.pk})) == {soon.pk, later.pk}
    assert ids(as_operator.get(f"{API}/certificates/", {"kind": "DISTRIBUTION_LICENCE"})) == {later.pk}
    assert ids(as_operator.get(f"{API}/certificates/", {"manufacturer": registration.manufacturer_id})) == {
        registration.pk
    }
    assert ids(as_operator.get(f"{API}/certificates/", {"expiring_before": days(30)})) == {soon.pk}


def test_agreements_are_filtered_by_supplier_product_and_active_date(as_operator, hospital, agreement):
    ended = factories.SupplyAgreementFactory(
        product=agreement.product,
        valid_from=TODAY - datetime.timedelta(days=400),
        valid_to=TODAY - datetime.timedelta(days=31),
    )
    suspended = factories.SupplyAgreementFactory(
        product__hospital=hospital, supplier=agreement.supplier, is_active=False
    )
    url = f"{API}/supply-agreements/"

    assert ids(as_operator.get(url, {"supplier": agreement.supplier_id})) == {agreement.pk, suspended.pk}
    assert ids(as_operator.get(url, {"product": agreement.product_id})) == {agreement.pk, ended.pk}
    assert ids(as_operator.get(url, {"active_on": TODAY.isoformat()})) == {agreement.pk}
    assert ids(as_operator.get(url, {"active_on": days(-100)})) == {ended.pk}


def test_malformed_filter_value_is_refused(as_operator):
    response = as_operator.get(f"{API}/supply-agreements/", {"active_on": "not-a-date"})

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
