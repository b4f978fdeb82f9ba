"""Tenancy and least privilege over the API: a nurse sees her departments (as on the web pages), and
nothing of another hospital shows — another hospital's id answers byte for byte as an id that does
not exist, and no result (door close, alert, tag binding) describes another hospital's units."""
import datetime
import importlib
from dataclasses import dataclass

import pytest
from django.test import Client
from django.utils import timezone

from devices.models import Device
from inventory.actors import Actor
from inventory.models import (
    Alert,
    CabinetSession,
    Charge,
    Consumption,
    Department,
    Location,
    Movement,
    Product,
    Unit,
    User,
)
from inventory.services import alerts as alert_service
from inventory.services.cabinets import close_session
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.labelling import bind_tag
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import gs1_udi

pytestmark = pytest.mark.django_db
MISSING = 987654321  # an id no row has


@dataclass
class World:
    """One hospital's little world: a central warehouse, a cath-lab store and cabinet, a keeper, a nurse
    of the cath lab, three units (one tagged in the warehouse, one in the store, one used), a cabinet
    device with a door close, and an alert in the warehouse and one in the store."""

    warehouse: Location
    store: Location
    cabinet: Location
    department: Department
    keeper: User
    nurse: User
    product: Product
    in_warehouse: Unit
    in_store: Unit
    used: Unit
    consumption: Consumption
    device: Device
    session: CabinetSession
    warehouse_alert: Alert
    store_alert: Alert
    epc: str
    movement: Movement

    @property
    def charge(self) -> Charge:
        return self.consumption.charges.get()


def build_world(hospital, supplier, prefix: str) -> World:
    department = factories.DepartmentFactory(hospital=hospital, code=f"{prefix}CATH", name=f"{prefix}导管室")
    warehouse = factories.LocationFactory(hospital=hospital, code=f"{prefix}CW", name=f"{prefix}中心库")
    store = factories.LocationFactory(hospital=hospital, department=department, code=f"{prefix}ST",
                                      name=f"{prefix}二级库", kind="DEPARTMENT_STORE")
    cabinet = factories.LocationFactory(hospital=hospital, department=department, code=f"{prefix}CAB",
                                        name=f"{prefix}智能柜", kind="SMART_CABINET")
    keeper = factories.UserFactory(username=f"{prefix}keeper", hospital=hospital, roles=["warehouse"])
    nurse = factories.UserFactory(username=f"{prefix}nurse", hospital=hospital, roles=["nurse"])
    nurse.departments.add(department)
    product = factories.SupplyAgreementFactory(product__hospital=hospital, supplier=supplier).product
    actor = Actor(user=keeper)
    in_warehouse, in_store, used = stock_units(actor, supplier, warehouse, product, [f"{prefix}1", f"{prefix}2",
                                                                                     f"{prefix}3"])
    epc = f"3034257BF400B78000{ord(prefix[0]):06X}"
    bind_tag(unit=in_warehouse, epc=epc, actor=actor)
    transfer_stock(actor=actor, hospital=hospital, to_location=store, units=[in_store, used],
                   idempotency_key=f"{prefix}-to-store")
    consumption = consume_unit(
        actor=Actor(user=nurse), hospital=hospital, unit=Unit.objects.get(pk=used.pk),
        context=ClinicalContext(encounter=f"ENC-{prefix}", department=department), idempotency_key=f"{prefix}-use",
    )
    device = Device(hospital=hospital, code=f"{prefix}-CAB", name="柜", kind=Device.Kind.CABINET_HTTP, location=cabinet)
    device.issue_token()
    device.save()
    session = close_session(device=device, cabinet=cabinet, occurred_at=timezone.now(), epcs=[])
    warehouse_alert = alert_service.raise_alert(
        hospital=hospital, kind=Alert.Kind.NEAR_EXPIRY, subject_key=f"unit:{in_warehouse.pk}",
        severity=Alert.Severity.INFO, message="90", details={"tier": 90}, unit=in_warehouse, product=product,
        location=warehouse,
    )
    store_alert = alert_service.raise_alert(
        hospital=hospital, kind=Alert.Kind.NEAR_EXPIRY, subject_key=f"unit:{in_store.pk}",
        severity=Alert.Severity.INFO, message="90", details={"tier": 90}, unit=in_store, product=product,
        location=store,
    )
    return World(warehouse, store, cabinet, department, keeper, nurse, product,
                 *(Unit.objects.get(pk=u.pk) for u in (in_warehouse, in_store, used)), consumption, device, session,
                 warehouse_alert, store_alert, epc, Movement.objects.filter(unit=in_store).last())


@pytest.fixture
def ours(hospital, supplier):
    return build_world(hospital, supplier, "A")


@pytest.fixture
def theirs(other_hospital, supplier):
    return build_world(other_hospital, supplier, "B")


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- a nurse: her departments, over the API as on the pages ------------------------------------


def test_a_nurse_lists_only_the_units_uses_ledger_and_alerts_of_her_departments(ours):
    nurse = api_client_for(ours.nurse)

    assert ids(nurse.get("/api/v1/units/")) == {ours.in_store.pk}
    assert ids(nurse.get("/api/v1/consumptions/")) == {ours.consumption.pk}
    assert ids(nurse.get("/api/v1/alerts/")) == {ours.store_alert.pk}
    assert nurse.get("/api/v1/alerts/summary/").json()["open"] == 1
    assert ids(nurse.get("/api/v1/cabinet-sessions/")) == {ours.session.pk}
    assert ids(nurse.get("/api/v1/his/deliveries/")) == {ours.charge.delivery.pk}
    ledger = Movement.objects.filter(pk__in=ids(nurse.get("/api/v1/movements/?limit=500")))
    assert ledger.exists()
    assert all(ours.store.pk in (m.from_location_id, m.to_location_id) for m in ledger)
    assert not ledger.filter(unit=ours.in_warehouse).exists()


def test_the_keeper_of_the_same_hospital_lists_it_all(ours):
    keeper = api_client_for(ours.keeper)

    assert ids(keeper.get("/api/v1/units/")) == {ours.in_warehouse.pk, ours.in_store.pk, ours.used.pk}
    assert ids(keeper.get("/api/v1/alerts/")) == {ours.warehouse_alert.pk, ours.store_alert.pk}


def test_a_nurse_traces_the_units_of_her_departments_and_no_other_on_the_api_as_on_the_page(ours):
    nurse = api_client_for(ours.nurse)
    page = Client()
    page.force_login(ours.nurse)

    for unit in (ours.in_store, ours.used):
        assert nurse.get(f"/api/v1/units/{unit.pk}/trace/").status_code == 200
        assert page.get(f"/units/{unit.pk}/").status_code == 200
    hidden = nurse.get(f"/api/v1/units/{ours.in_warehouse.pk}/trace/")
    assert hidden.status_code == 404
    assert hidden.content == nurse.get(f"/api/v1/units/{MISSING}/trace/").content
    assert nurse.get(f"/api/v1/units/{ours.in_warehouse.pk}/").content == nurse.get(f"/api/v1/units/{MISSING}/").content
    assert page.get(f"/units/{ours.in_warehouse.pk}/").status_code == 404


def test_a_nurse_acts_on_no_alert_outside_her_departments(ours):
    nurse = api_client_for(ours.nurse)

    assert nurse.post(f"/api/v1/alerts/{ours.store_alert.pk}/acknowledge/", {}, format="json").status_code == 200
    assert nurse.post(f"/api/v1/alerts/{ours.warehouse_alert.pk}/acknowledge/", {}, format="json").status_code == 404


def test_a_nurse_with_no_department_sees_and_uses_nothing(ours, hospital):
    drifter = factories.UserFactory(hospital=hospital, roles=["nurse"])
    client = api_client_for(drifter)

    assert ids(client.get("/api/v1/units/")) == set()
    assert ids(client.get("/api/v1/consumptions/")) == set()
    assert ids(client.get("/api/v1/his/deliveries/")) == set()
    response = client.post("/api/v1/consumptions/", {
        "unit": ours.in_store.pk, "encounter": "ENC-X", "department": ours.department.pk, "idempotency_key": "x",
    }, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "NOT_YOUR_DEPARTMENT")


@pytest.mark.parametrize("path", [
    "/api/v1/delivery-notes/", "/api/v1/reconciliation/runs/", "/api/v1/settlements/statements/",
    "/api/v1/his/settlements/",
])
def test_the_hospitals_books_are_not_for_nurses(ours, path):
    assert api_client_for(ours.nurse).get(path).status_code == 403
    assert api_client_for(ours.keeper).get(path).status_code == 200


# --- another hospital: exactly as if it did not exist --------------------------------------------

# (list path, query parameter, the World attribute naming another hospital's object)
FILTERS = [
    ("/api/v1/units/", "product", "product"),
    ("/api/v1/units/", "location", "store"),
    ("/api/v1/movements/", "unit", "in_store"),
    ("/api/v1/movements/", "product", "product"),
    ("/api/v1/movements/", "location", "store"),
    ("/api/v1/movements/", "actor_user", "keeper"),
    ("/api/v1/consumptions/", "unit", "used"),
    ("/api/v1/consumptions/", "product", "product"),
    ("/api/v1/consumptions/", "department", "department"),
    ("/api/v1/alerts/", "unit", "in_store"),
    ("/api/v1/alerts/", "product", "product"),
    ("/api/v1/alerts/", "location", "store"),
    ("/api/v1/alerts/", "device", "device"),
    ("/api/v1/cabinet-sessions/", "cabinet", "cabinet"),
    ("/api/v1/cabinet-sessions/", "device", "device"),
    ("/api/v1/cabinet-sessions/", "user", "nurse"),
    ("/api/v1/devices/", "location", "cabinet"),
    ("/api/v1/devices/events/", "device", "device"),
    ("/api/v1/locations/", "department", "department"),
    ("/api/v1/locations/", "parent", "store"),
    ("/api/v1/supply-agreements/", "product", "product"),
    ("/api/v1/his/deliveries/", "charge", "charge"),
]


@pytest.mark.parametrize("role", ["keeper", "nurse"])
@pytest.mark.parametrize(("path", "param", "attribute"), FILTERS)
def test_a_filter_naming_another_hospitals_object_answers_as_for_a_nonexistent_id(
    ours, theirs, role, path, param, attribute
):
    client = api_client_for(getattr(ours, role))
    their_id = getattr(theirs, attribute).pk

    answer = client.get(f"{path}?{param}={their_id}")
    nothing = client.get(f"{path}?{param}={MISSING}")

    assert answer.status_code == nothing.status_code == 200, answer.content
    assert answer.content == nothing.content
    assert answer.json()["count"] == 0


# (detail path, the World attribute naming another hospital's object)
DETAILS = [
    ("/api/v1/units/{}/", "in_store"),
    ("/api/v1/units/{}/trace/", "in_store"),
    ("/api/v1/consumptions/{}/", "consumption"),
    ("/api/v1/alerts/{}/", "store_alert"),
    ("/api/v1/cabinet-sessions/{}/", "session"),
    ("/api/v1/movements/{}/", "movement"),
    ("/api/v1/locations/{}/", "store"),
    ("/api/v1/departments/{}/", "department"),
    ("/api/v1/products/{}/", "product"),
    ("/api/v1/devices/{}/", "device"),
]


@pytest.mark.parametrize(("path", "attribute"), DETAILS)
def test_another_hospitals_object_answers_as_a_nonexistent_one(ours, theirs, path, attribute):
    client = api_client_for(ours.keeper)

    answer = client.get(path.format(getattr(theirs, attribute).pk))
    nothing = client.get(path.format(MISSING))

    assert answer.status_code == nothing.status_code == 404
    assert answer.content == nothing.content


def test_naming_another_hospitals_unit_in_a_body_answers_as_a_nonexistent_one(ours, theirs):
    client = api_client_for(ours.nurse)

    def use(unit_id: int) -> bytes:
        response = client.post("/api/v1/consumptions/", {
            "unit": unit_id, "encounter": "ENC-1", "department": ours.department.pk, "idempotency_key": str(unit_id),
        }, format="json")
        assert response.status_code == 400
        return response.content.replace(str(unit_id).encode(), b"<id>")

    assert use(theirs.in_store.pk) == use(MISSING)


def test_a_door_close_reports_another_hospitals_tag_as_unknown_with_nothing_of_its_unit(ours, theirs):
    stranger_tag = "3034257BF400B780FFFFFFFF"
    closed = close_session(device=ours.device, cabinet=ours.cabinet, occurred_at=timezone.now(),
                           epcs=[theirs.epc])
    control = close_session(device=ours.device, cabinet=ours.cabinet,
                            occurred_at=timezone.now() + datetime.timedelta(seconds=1), epcs=[stranger_tag])

    assert (closed.misplaced, closed.unknown_tags) == ([], [theirs.epc])
    sessions = api_client_for(ours.keeper)
    shown = sessions.get(f"/api/v1/cabinet-sessions/{closed.pk}/").json()
    unknown = sessions.get(f"/api/v1/cabinet-sessions/{control.pk}/").json()
    assert (shown["misplaced"], shown["unknown_tags"]) == ([], [theirs.epc])
    assert {k: v for k, v in shown.items() if k not in ("id", "unknown_tags", "closed_at")} == {
        k: v for k, v in unknown.items() if k not in ("id", "unknown_tags", "closed_at")
    }


def test_a_session_recorded_with_another_hospitals_unit_shows_and_alerts_it_as_an_unknown_tag(
    ours, theirs, hospital
):
    """Door closes recorded before this rule named the other hospital's unit, its place and state."""
    CabinetSession.objects.filter(pk=ours.session.pk).update(misplaced=[{
        "epc": theirs.epc, "unit": theirs.in_warehouse.pk, "status": "IN_STOCK", "location": theirs.warehouse.pk,
        "hospital": theirs.warehouse.hospital_id,
    }])

    shown = api_client_for(ours.keeper).get(f"/api/v1/cabinet-sessions/{ours.session.pk}/").json()
    assert (shown["misplaced"], shown["unknown_tags"]) == ([], [theirs.epc])
    alert_service.scan_cabinet_tags(hospital=hospital)
    alert = Alert.objects.get(hospital=hospital, subject_key=f"tag:{theirs.epc}")
    assert alert.kind == Alert.Kind.UNKNOWN_TAG
    assert alert.unit_id is None
    assert set(alert.details) == {"epc", "session", "seen_at"}
    assert str(theirs.in_warehouse.serial) not in alert.message
    listed = api_client_for(ours.keeper).get(f"/api/v1/alerts/{alert.pk}/").content.decode()
    assert theirs.warehouse.name not in listed and f'"unit":{theirs.in_warehouse.pk}' not in listed


def test_binding_a_tag_another_hospitals_unit_holds_tells_nothing_of_that_unit(ours, theirs):
    response = api_client_for(ours.keeper).post(
        f"/api/v1/units/{ours.in_store.pk}/bind-tag/", {"epc": theirs.epc}, format="json", HTTP_ACCEPT_LANGUAGE="en",
    )

    assert (response.status_code, response.json()["code"]) == (409, "TAG_NOT_AVAILABLE")
    assert theirs.in_warehouse.serial not in response.content.decode()
    assert str(theirs.in_warehouse.pk) not in response.content.decode().replace(theirs.epc, "")
    own = api_client_for(ours.keeper).post(
        f"/api/v1/units/{ours.in_store.pk}/bind-tag/", {"epc": ours.epc}, format="json",
    )
    assert (own.status_code, own.json()["code"]) == (409, "TAG_IN_USE")  # our own unit may be named


def test_a_nurses_scan_finds_the_units_of_her_departments_only(ours):
    def resolve(user, unit):
        code = gs1_udi(ours.product.udi_di, serial=unit.serial)
        response = api_client_for(user).post("/api/v1/scans/resolve/", {"code": code}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    assert resolve(ours.nurse, ours.in_store)["unit"]["id"] == ours.in_store.pk
    hidden = resolve(ours.nurse, ours.in_warehouse)
    assert (hidden["unit"], hidden["problem"]["code"]) == (None, "NOT_FOUND")
    assert resolve(ours.keeper, ours.in_warehouse)["unit"]["id"] == ours.in_warehouse.pk


def test_a_nurse_lists_the_devices_of_her_departments(ours, hospital):
    Device.objects.create(hospital=hospital, code="A-SCAN-CW", name="中心库扫码枪", kind=Device.Kind.SERIAL_SCANNER,
                          location=ours.warehouse)

    assert ids(api_client_for(ours.nurse).get("/api/v1/devices/")) == {ours.device.pk}
    assert len(ids(api_client_for(ours.keeper).get("/api/v1/devices/"))) == 2


def test_the_migration_forgets_other_hospitals_units_in_stored_door_closes_and_alerts(ours, theirs, hospital):
    from django.apps import apps

    migration = importlib.import_module("inventory.migrations.0011_shared_master_data_owner_hospital")
    ours_item = {"epc": "3034257BF400B780AAAAAAAA", "unit": ours.in_store.pk, "status": "IN_STOCK",
                 "location": ours.store.pk, "hospital": hospital.pk}
    theirs_item = {"epc": theirs.epc, "unit": theirs.in_warehouse.pk, "status": "IN_STOCK",
                   "location": theirs.warehouse.pk, "hospital": theirs.warehouse.hospital_id}
    CabinetSession.objects.filter(pk=ours.session.pk).update(misplaced=[ours_item, theirs_item], unknown_tags=[])
    where = {"session": ours.session.pk, "seen_at": "2026-11-23T09:00:00+00:00"}
    leaked = alert_service.raise_alert(
        hospital=hospital, kind=Alert.Kind.MISPLACED_TAG, subject_key=f"tag:{theirs.epc}",
        severity=Alert.Severity.WARNING, details={**theirs_item, **where}, location=ours.cabinet,
        message=f"Cabinet {ours.cabinet.name} sees tag {theirs.epc} of a unit that belongs elsewhere (another "
                "hospital's)",
    )

    migration.forget_other_hospitals_units(apps, None)

    session = CabinetSession.objects.get(pk=ours.session.pk)
    assert (session.misplaced, session.unknown_tags) == ([ours_item], [theirs.epc])
    leaked.refresh_from_db()
    assert leaked.details == {"epc": theirs.epc, **where}
    assert leaked.message == f"Cabinet {ours.cabinet.name} sees tag {theirs.epc}, bound to no unit"


# --- supplier users (the supplier portal) ------------------------------------------------------------

PORTAL = "/api/v1/portal"


def _api_routes() -> list[str]:
    """Every API route outside the portal, with a path parameter filled by an id (1)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix: str) -> list[str]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append(prefix + str(pattern.pattern))
        return found

    import re

    routes = set()
    for route in walk(get_resolver().url_patterns, "/"):
        path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route).replace("^", "").replace("$", "").replace("\\.", ".")
        path = re.sub(r"<[^>]+>", "1", path)
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/portal/") or "auth/token" in path:
            continue
        if "format" in route or "(" in path or "[" in path or "{" in path:
            continue
        routes.add(path)
    return sorted(routes)


def test_a_supplier_user_reads_nothing_of_a_hospital(ours):
    """Encounters, stock, prices, alerts, every hospital endpoint: a supplier's user is refused (403)."""
    vendor = factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(), roles=["supplier"])
    client = api_client_for(vendor)
    routes = _api_routes()
    assert "/api/v1/consumptions/" in routes and "/api/v1/supply-agreements/1/" in routes and len(routes) > 40

    answered = {route: client.get(route).status_code for route in routes}

    assert {route: code for route, code in answered.items() if code < 400} == {}
    assert answered["/api/v1/consumptions/"] == answered["/api/v1/supply-agreements/1/"] == 403


def test_every_portal_endpoint_answers_404_to_another_suppliers_user(ours):
    from inventory.services.portal import AsnLineInput, create_asn
    from inventory.services.purchasing import OrderLineInput, create_purchase_order

    supplier = factories.SupplierFactory()
    factories.SupplyAgreementFactory(hospital=ours.product.hospital, product=ours.product, supplier=supplier)
    order = create_purchase_order(
        actor=Actor(user=ours.keeper), hospital=ours.product.hospital, supplier=supplier,
        promised_date=timezone.localdate(),
        lines=[OrderLineInput(product=ours.product, quantity=2, platform_reference="YG-T")],
    )
    vendor = factories.UserFactory(hospital=None, supplier=supplier, roles=["supplier"])
    asn, refused = create_asn(actor=Actor(user=vendor), order=order, number="ASN-T",
                              lines=[AsnLineInput(udi=gs1_udi(ours.product.udi_di, serial="T-1"))])
    assert refused == []
    other = api_client_for(factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(),
                                                 roles=["supplier"]))
    body = {"lines": [{"udi": gs1_udi(ours.product.udi_di, serial="T-2")}]}

    for method, url in [
        ("get", f"{PORTAL}/purchase-orders/{order.pk}/"), ("get", f"{PORTAL}/shipping-notices/{asn.pk}/"),
        ("post", f"{PORTAL}/shipping-notices/{asn.pk}/lines/"),
        ("delete", f"{PORTAL}/shipping-notices/{asn.pk}/lines/1/"),
        ("post", f"{PORTAL}/shipping-notices/{asn.pk}/submit/"),
    ]:
        mine = getattr(api_client_for(vendor), method)(url, body, format="json") if method == "get" else None
        assert mine is None or mine.status_code == 200
        assert getattr(other, method)(url, body, format="json").status_code == 404, (method, url)
    # A hospital's own staff are not portal users.
    assert api_client_for(ours.keeper).get(f"{PORTAL}/purchase-orders/").status_code == 403


def test_every_statement_endpoint_answers_404_to_another_suppliers_user(ours):
    """Consignment settlement statements in the portal: another supplier's user finds none of them."""
    from inventory.services.settlements import confirm_settlement
    from tests.inventory.test_settlements import MAY, Clinic, consignment_product, draft, may

    supplier = factories.SupplierFactory()
    hospital = ours.product.hospital
    operator = factories.UserFactory(hospital=hospital, roles=["spd_operator"])
    Clinic(hospital).use_unit(consignment_product(hospital, supplier), supplier, may(7))
    statement = confirm_settlement(settlement=draft(hospital, supplier, Actor(user=operator), MAY),
                                   actor=Actor(user=operator))
    vendor = api_client_for(factories.UserFactory(hospital=None, supplier=supplier, roles=["supplier"]))
    other = api_client_for(factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(),
                                                 roles=["supplier"]))
    base = f"{PORTAL}/settlement-statements/{statement.pk}"

    for method, url in [("get", f"{base}/"), ("get", f"{base}/export/?format=pdf"), ("post", f"{base}/dispute/"),
                        ("post", f"{base}/confirm/")]:
        assert getattr(other, method)(url, {"reason": "no"}, format="json").status_code == 404, (method, url)
    assert other.get(f"{PORTAL}/settlement-statements/").json()["count"] == 0
    assert vendor.get(f"{base}/").status_code == 200
    # Hospital staff are not portal users; they read the supplier's answer on their own endpoint.
    assert api_client_for(operator).get(f"{PORTAL}/settlement-statements/").status_code == 403
    assert vendor.post(f"{base}/dispute/", {"reason": "two units missing"}, format="json").status_code == 200
    seen = api_client_for(ours.keeper).get(f"/api/v1/settlements/statements/{statement.pk}/").json()
    assert (seen["stage"], seen["events"][-1]["reason"]) == ("DISPUTED", "two units missing")


# --- supplier evaluation: another hospital's runs, another supplier's results --------------------


def test_another_hospitals_evaluation_runs_and_sets_answer_as_nonexistent_ones(hospital, other_hospital):
    from tests.inventory.evaluation_data import small_run

    theirs = small_run(other_hospital, factories.UserFactory(hospital=other_hospital, roles=["spd_operator"]),
                       {factories.SupplierFactory(): 70, factories.SupplierFactory(): 80})
    for role in ("spd_operator", "auditor"):
        client = api_client_for(factories.UserFactory(hospital=hospital, roles=[role]))
        assert client.get("/api/v1/evaluation-runs/").json()["results"] == []
        assert client.get("/api/v1/evaluation-sets/").json()["results"] == []
        for path in ("/api/v1/evaluation-runs/{}/", "/api/v1/evaluation-runs/{}/report.csv",
                     "/api/v1/evaluation-sets/{}/"):
            pk = theirs.indicator_set_id if "sets" in path else theirs.pk
            answer, nothing = client.get(path.format(pk)), client.get(path.format(MISSING))
            assert answer.status_code == nothing.status_code == 404, path
            assert answer.content == nothing.content
        for path in ("/api/v1/evaluation-runs/{}/finalise/", "/api/v1/evaluation-runs/{}/refresh/",
                     "/api/v1/evaluation-sets/{}/new-version/"):
            pk = theirs.indicator_set_id if "sets" in path else theirs.pk
            assert client.post(path.format(pk)).status_code in (403, 404), path


def test_every_portal_evaluation_endpoint_answers_404_to_another_suppliers_user(hospital):
    from tests.inventory.evaluation_data import small_run

    mine, rival = factories.SupplierFactory(), factories.SupplierFactory()
    run = small_run(hospital, factories.UserFactory(hospital=hospital, roles=["spd_operator"]), {mine: 70, rival: 80})
    entry = run.participants.get(supplier=mine).pk
    vendor = api_client_for(factories.UserFactory(hospital=None, supplier=mine, roles=["supplier"]))
    other = api_client_for(factories.UserFactory(hospital=None, supplier=rival, roles=["supplier"]))
    stranger = api_client_for(factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(),
                                                    roles=["supplier"]))

    assert vendor.get(f"{PORTAL}/evaluations/{entry}/").status_code == 200
    assert other.get(f"{PORTAL}/evaluations/{entry}/").status_code == 404
    assert stranger.get(f"{PORTAL}/evaluations/{entry}/").status_code == 404
    assert stranger.get(f"{PORTAL}/evaluations/").json()["results"] == []
    assert [row["id"] for row in other.get(f"{PORTAL}/evaluations/").json()["results"]] == [
        run.participants.get(supplier=rival).pk]
