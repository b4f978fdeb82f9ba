"""Master-data history: every change recorded by the database with who, when, before and after.

The triggers are PostgreSQL's, so the recording tests are marked `postgres`; the last test holds on
every database (SQLite records nothing and says so).
"""
import importlib
from pathlib import Path

import pghistory
import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from devices.models import Device
from inventory import migrations
from inventory.models import ParLevel, ProductChange, SupplyAgreementChange, UserRoleChange
from tests import factories
from tests.conftest import api_client_for

API = "/api/v1"


@pytest.fixture
def hospital_admin(hospital):
    return factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])


def product_payload(hospital, manufacturer, **fields):
    return {
        "internal_code": "HV-HIST-1", "name": "冠脉球囊扩张导管", "manufacturer": manufacturer.pk,
        "udi_di": "06901234567892", "tracking": "UNIT", **fields,
    }


@pytest.mark.postgres
def test_product_history_shows_who_changed_what_from_what_to_what(operator, auditor, hospital):
    manufacturer = factories.ManufacturerFactory()
    client = api_client_for(operator)
    created = client.post(f"{API}/products/", product_payload(hospital, manufacturer), format="json")
    assert created.status_code == 201, created.content
    product_id = created.json()["id"]
    assert client.patch(f"{API}/products/{product_id}/", {"name": "冠脉球囊", "category": "球囊"}, format="json").status_code == 200

    response = api_client_for(auditor).get(f"{API}/products/{product_id}/history/")

    assert response.status_code == 200
    body = response.json()
    assert body["recorded"] is True and body["count"] == 2
    update, create = body["results"]
    assert create["action"] == "create" and create["before"] is None
    assert create["after"]["name"] == "冠脉球囊扩张导管" and create["username"] == "operator"
    assert update["action"] == "update" and update["username"] == "operator"
    assert update["user"] == operator.pk and update["path"] == f"/api/v1/products/{product_id}/"
    assert update["changed"] == ["category", "name"]
    assert (update["before"]["name"], update["after"]["name"]) == ("冠脉球囊扩张导管", "冠脉球囊")
    assert (update["before"]["category"], update["after"]["category"]) == ("", "球囊")


@pytest.mark.postgres
def test_a_price_change_of_an_agreement_is_recorded_with_both_prices(operator, agreement):
    client = api_client_for(operator)
    edited = client.patch(f"{API}/supply-agreements/{agreement.pk}/", {"unit_price": "1150.00"}, format="json")
    assert (edited.status_code, edited.json()["code"]) == (409, "PRICE_EDIT_REFUSED")
    changed = client.post(f"{API}/price-changes/", {
        "agreement": agreement.pk, "new_price": "1150.00", "effective_from": str(timezone.localdate()),
        "reason": "集采续约降价", "approved_by": operator.pk,
    }, format="json")
    assert changed.status_code == 201, changed.json()

    ended = client.get(f"{API}/supply-agreements/{agreement.pk}/history/").json()["results"][0]
    started = client.get(f"{API}/supply-agreements/{changed.json()['agreement']}/history/").json()["results"][0]

    assert ended["changed"] == ["valid_to"]
    assert ended["after"]["unit_price"] == "1200.00"
    assert (started["action"], started["after"]["unit_price"]) == ("create", "1150.00")


@pytest.mark.postgres
def test_a_deleted_supplier_keeps_its_history(operator):
    client = api_client_for(operator)
    supplier = factories.SupplierFactory(licences=False, name="临时配送商")
    assert client.delete(f"{API}/suppliers/{supplier.pk}/").status_code == 204

    changes = client.get(f"{API}/history/", {"kind": "suppliers", "object": supplier.pk}).json()["results"]

    assert [change["action"] for change in changes] == ["delete", "create"]
    assert changes[0]["before"]["name"] == "临时配送商" and changes[0]["after"] is None
    assert changes[0]["username"] == "operator"


@pytest.mark.postgres
def test_history_rows_refuse_update_and_delete(operator, product):
    api_client_for(operator).patch(f"{API}/products/{product.pk}/", {"name": "改名"}, format="json")
    assert ProductChange.objects.filter(pgh_obj_id=product.pk).exists()

    for attempt in (
        lambda: ProductChange.objects.filter(pgh_obj_id=product.pk).update(name="篡改"),
        lambda: ProductChange.objects.filter(pgh_obj_id=product.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
            attempt()
    assert not ProductChange.objects.filter(name="篡改").exists()


@pytest.mark.postgres
def test_role_changes_are_recorded_with_the_role_and_who_made_them(hospital, hospital_admin, auditor):
    nurse = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"])
    warehouse = Group.objects.get(name="warehouse")
    with pghistory.context(user=hospital_admin.pk, url="/admin/inventory/user/"):
        nurse.groups.add(warehouse)
        nurse.groups.remove(Group.objects.get(name="nurse"))

    changes = api_client_for(auditor).get(f"{API}/history/", {"kind": "user-roles", "object": nurse.pk}).json()

    assert [(c["action"], c["before"], c["after"], c["username"]) for c in changes["results"]] == [
        ("role_removed", {"role": "nurse"}, None, "admin"),
        ("role_added", None, {"role": "warehouse"}, "admin"),
        ("role_added", None, {"role": "nurse"}, ""),  # made by the factory, outside any request
    ]
    assert UserRoleChange.objects.filter(user_id=nurse.pk).count() == 3


@pytest.mark.postgres
def test_a_par_level_changed_in_the_admin_is_recorded_with_the_admin_user(client, hospital, warehouse, product):
    superuser = factories.UserFactory(username="root", hospital=hospital, is_superuser=True, is_staff=True, roles=[])
    level = ParLevel.objects.create(location=warehouse, product=product, minimum=5)
    client.force_login(superuser)

    response = client.post(
        f"/admin/inventory/parlevel/{level.pk}/change/",
        {"location": warehouse.pk, "product": product.pk, "minimum": 8, "target": 20},
    )

    assert response.status_code == 302
    changes = api_client_for(superuser).get(f"{API}/history/", {"kind": "par-levels", "object": level.pk}).json()
    update = changes["results"][0]
    assert update["username"] == "root"
    assert set(update["changed"]) == {"minimum", "target", "updated_at", "updated_by"}
    assert (update["before"]["minimum"], update["after"]["minimum"]) == (5, 8)


@pytest.mark.postgres
def test_device_heartbeats_are_not_history_but_renaming_is(operator, hospital):
    device = Device.objects.create(hospital=hospital, code="HIST-DEV-1", name="扫码枪", kind=Device.Kind.WEDGE_SCANNER)
    client = api_client_for(operator)
    device.last_seen = timezone.now()  # what every heartbeat does
    device.save(update_fields=["last_seen"])
    assert client.post(f"{API}/devices/{device.pk}/issue-token/").status_code == 200
    assert client.patch(f"{API}/devices/{device.pk}/", {"name": "验收台扫码枪"}, format="json").status_code == 200

    changes = client.get(f"{API}/devices/{device.pk}/history/").json()["results"]

    assert [change["action"] for change in changes] == ["update", "create"]
    assert changes[0]["changed"] == ["name"]
    assert "last_seen" not in changes[0]["after"] and "token_hash" not in changes[0]["after"]


@pytest.mark.postgres
def test_another_hospitals_history_does_not_exist_for_the_caller(auditor, hospital, other_hospital):
    ours, theirs = factories.ProductFactory(hospital=hospital), factories.ProductFactory(hospital=other_hospital)
    client = api_client_for(auditor)

    assert client.get(f"{API}/products/{theirs.pk}/history/").status_code == 404
    listed = client.get(f"{API}/history/", {"kind": "products"}).json()["results"]
    assert {change["object"] for change in listed} == {ours.pk}
    assert client.get(f"{API}/history/", {"kind": "products", "object": theirs.pk}).json()["count"] == 0


@pytest.mark.postgres
def test_nurses_do_not_read_history(hospital, product):
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    client = api_client_for(nurse)

    assert client.get(f"{API}/products/{product.pk}/history/").status_code == 403
    assert client.get(f"{API}/history/", {"kind": "products"}).status_code == 403


def test_history_says_whether_it_is_recorded(operator, auditor, hospital):
    """On SQLite (the embedded default) nothing is recorded, writes still work, and the API says so."""
    manufacturer = factories.ManufacturerFactory()
    created = api_client_for(operator).post(f"{API}/products/", product_payload(hospital, manufacturer), format="json")
    assert created.status_code == 201

    body = api_client_for(auditor).get(f"{API}/products/{created.json()['id']}/history/").json()

    recorded = connection.vendor == "postgresql"
    assert body["recorded"] is recorded
    assert body["count"] == (1 if recorded else 0)


def test_an_unknown_kind_is_refused(auditor):
    response = api_client_for(auditor).get(f"{API}/history/", {"kind": "patients"})

    assert response.status_code == 400


@pytest.mark.postgres
def test_rows_existing_before_tracking_began_get_a_baseline_so_their_first_change_has_a_before(operator, agreement):
    """The migration that starts tracking snapshots every existing row (its `record_baseline` step)."""
    migration = importlib.import_module(
        f"inventory.migrations.{next(Path(migrations.__file__).parent.glob('*_master_data_history.py')).stem}"
    )
    with connection.schema_editor() as editor:
        migration.record_baseline(django_apps, editor)
    assert SupplyAgreementChange.objects.filter(pgh_obj_id=agreement.pk, pgh_label="baseline").count() == 1
    roles = UserRoleChange.objects.filter(user_id=operator.pk, pgh_label="baseline")
    assert [change.group.name for change in roles] == ["spd_operator"]

    client = api_client_for(operator)
    client.patch(f"{API}/supply-agreements/{agreement.pk}/", {"vbp_contract": "VBP-2026-01"}, format="json")
    latest = client.get(f"{API}/supply-agreements/{agreement.pk}/history/").json()["results"][0]

    assert latest["action"] == "update" and latest["changed"] == ["vbp_contract"]
    assert (latest["before"]["vbp_contract"], latest["after"]["vbp_contract"]) == ("", "VBP-2026-01")


@pytest.mark.postgres
def test_a_certificate_with_an_uploaded_file_is_listed_with_the_file_name(operator, supplier, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    from django.core.files.base import ContentFile

    certificate = supplier.certificates.first() or factories.CertificateFactory(supplier=supplier)
    certificate.file.save("licence.pdf", ContentFile(b"%PDF-1.4 licence"), save=True)

    response = api_client_for(operator).get(f"{API}/history/", {"kind": "certificates", "object": certificate.pk})

    assert response.status_code == 200
    assert response.json()["results"][0]["after"]["file"].endswith(".pdf")
