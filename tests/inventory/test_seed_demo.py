"""The demo data: a realistic county alliance, loaded through the real services, and idempotent."""
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from devices.identification import is_valid_gtin, parse_udi
from inventory.models import (
    AcceptanceRecord,
    Certificate,
    DeliveryLine,
    DeliveryNote,
    Department,
    Hospital,
    Location,
    LotBalance,
    Manufacturer,
    Movement,
    Product,
    Supplier,
    SupplyAgreement,
    TrackingMode,
    Unit,
    UnitStatus,
    User,
)
from inventory.simulation.demo import demo_logins, seed_demo
from inventory.validators import validate_uscc

CLINICAL_DEPARTMENTS = {"心内科导管室", "骨科手术室", "眼科"}


@pytest.fixture
def seeded(db, settings):
    # The real password hasher is deliberately slow; the tests do not need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return seed_demo()


@pytest.fixture
def today():
    return timezone.localdate()


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._base_manager.count()
        for app in ("inventory", "devices", "auth")
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
    }


@pytest.mark.django_db
def test_an_alliance_of_hospitals_with_departments_stores_and_cabinets(seeded):
    hospitals = list(Hospital.objects.all())
    assert len(hospitals) >= 2
    assert len({hospital.alliance for hospital in hospitals}) == 1 and hospitals[0].alliance
    assert sum(hospital.is_lead for hospital in hospitals) == 1
    for hospital in hospitals:
        departments = {department.name: department for department in hospital.departments.all()}
        assert CLINICAL_DEPARTMENTS | {"中心库"} <= set(departments)
        assert departments["中心库"].kind == Department.Kind.WAREHOUSE
        kinds = set(hospital.locations.values_list("kind", flat=True))
        assert {Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.QUARANTINE} <= kinds
        for department in departments.values():
            if department.kind == Department.Kind.WAREHOUSE:
                continue
            own = set(department.locations.values_list("kind", flat=True))
            assert {Location.Kind.DEPARTMENT_STORE, Location.Kind.SMART_CABINET} <= own, department.name
    assert seeded["hospitals"] == len(hospitals)


@pytest.mark.django_db
def test_suppliers_and_manufacturers_hold_certificates_one_expiring_and_one_expired(seeded, today):
    suppliers = list(Supplier.objects.all())
    assert len(suppliers) >= 3
    for supplier in suppliers:
        validate_uscc(supplier.uscc)
        kinds = set(supplier.certificates.values_list("kind", flat=True))
        assert {Certificate.Kind.BUSINESS_LICENCE, Certificate.Kind.DISTRIBUTION_LICENCE} <= kinds
    manufacturers = list(Manufacturer.objects.all())
    assert len(manufacturers) >= 3
    assert any(manufacturer.country != "CN" for manufacturer in manufacturers)
    for manufacturer in manufacturers:
        if manufacturer.uscc:
            validate_uscc(manufacturer.uscc)

    assert Certificate.objects.filter(valid_from__lte=today, valid_to__gte=today,
                                      valid_to__lte=today + datetime.timedelta(days=30)).exists()
    expired = Certificate.objects.filter(valid_to__lt=today)
    assert expired.exists()
    # The expired certificate leaves almost the whole catalog acceptable.
    assert Product.objects.filter(registration_certificate__in=expired).count() < 10
    for product in Product.objects.select_related("registration_certificate"):
        assert product.registration_certificate.kind == Certificate.Kind.REGISTRATION
        assert product.registration_certificate.manufacturer_id == product.manufacturer_id


@pytest.mark.django_db
def test_catalog_has_200_products_with_valid_gtins_codes_and_agreements(seeded, today):
    lead = Hospital.objects.get(is_lead=True)
    products = list(Product.objects.filter(hospital=lead))
    assert len(products) >= 200
    assert all(is_valid_gtin(product.udi_di) and len(product.udi_di) == 14 for product in products)
    assert len({product.udi_di for product in products}) == len(products)
    assert all(re.fullmatch(r"C\d{19}", product.nhsa_code) for product in products)
    assert len({product.nhsa_code for product in products}) == len(products)
    # every item is billed to the patient but those expensed to the department (科室领用即消耗)
    assert all(bool(product.his_charge_code) != product.expensed_on_issue for product in products)
    assert all(product.specification for product in products)
    assert {product.tracking for product in products} == {TrackingMode.UNIT, TrackingMode.LOT}
    assert any(product.is_consignment for product in products)
    cold = [product for product in products if product.is_cold_chain]
    assert cold and all((p.storage_min_c, p.storage_max_c) == (2, 8) for p in cold)
    names = " ".join(product.name for product in products)
    for kind in ("洗脱", "球囊", "导丝", "消融导管", "人工晶状体", "螺钉", "接骨板", "注射器", "输液器", "留置针", "纱布"):
        assert kind in names

    agreements = SupplyAgreement.objects.filter(hospital=lead, valid_from__lte=today, valid_to__gte=today)
    assert {agreement.product_id for agreement in agreements} == {product.pk for product in products}
    assert agreements.exclude(vbp_contract="").exists()
    stent_prices = {a.unit_price for a in agreements.filter(product__category="冠脉药物洗脱支架")}
    assert stent_prices and all(600 <= price <= 800 for price in stent_prices)
    assert all(a.unit_price < 5 for a in agreements.filter(product__category="注射器"))

    member = Hospital.objects.get(is_lead=False)
    assert Product.objects.filter(hospital=member).exists()


@pytest.mark.django_db
def test_every_role_has_a_demo_login_bound_to_its_hospital(seeded):
    logins = demo_logins()
    assert {login.role for login in logins} == {"admin", "warehouse", "spd_operator", "nurse", "auditor", "reviewer"}
    for login in logins:
        user = User.objects.get(username=login.username)
        assert user.check_password(login.password)
        assert user.hospital.code == login.hospital_code
        assert list(user.groups.values_list("name", flat=True)) == [login.role]
        if login.role == "nurse":
            assert list(user.departments.values_list("name", flat=True)) == ["心内科导管室"]
    assert User.objects.get(username="keeper2").hospital.is_lead is False


@pytest.mark.django_db
def test_accepted_deliveries_put_stock_in_the_central_warehouse_and_rejections_keep_reasons(seeded):
    units = Unit.objects.filter(status=UnitStatus.IN_STOCK, location__kind=Location.Kind.CENTRAL_WAREHOUSE)
    assert units.count() >= 20
    for unit in units.select_related("product"):
        assert parse_udi(unit.udi_raw).di == unit.product.udi_di
        assert set(unit.movements.values_list("kind", flat=True)) == {Movement.Kind.RECEIPT, Movement.Kind.PUTAWAY}
    assert Unit.objects.filter(owner="SUPPLIER").exists()  # consignment
    assert LotBalance.objects.filter(location__kind=Location.Kind.CENTRAL_WAREHOUSE, quantity__gt=0).exists()

    rejected = AcceptanceRecord.objects.filter(decision=AcceptanceRecord.Decision.REJECTED)
    reasons = set(rejected.values_list("reason_code", flat=True))
    assert {"PRICE_MISMATCH", "UNIT_EXPIRED", "PRODUCT_CERTIFICATE_EXPIRED", "TEMPERATURE_OUT_OF_RANGE"} <= reasons
    assert all(record.reasons and record.reasons[0]["code"] == record.reason_code for record in rejected)
    assert not Unit.objects.filter(delivery_line__acceptance__in=rejected).exists()
    assert AcceptanceRecord.objects.filter(is_gift=True, decision=AcceptanceRecord.Decision.ACCEPTED).exists()
    assert DeliveryNote.objects.filter(status=DeliveryNote.Status.RECEIVED).exists()
    assert seeded["units_in_stock"] == Unit.objects.filter(status=UnitStatus.IN_STOCK).count()
    assert seeded["lines_rejected"] == rejected.count()


@pytest.mark.django_db
def test_running_it_again_changes_nothing(seeded):
    before = _row_counts()
    units_before = list(Unit.objects.values_list("pk", "status", "location_id").order_by("pk"))

    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    assert _row_counts() == before
    assert list(Unit.objects.values_list("pk", "status", "location_id").order_by("pk")) == units_before
    assert seed_demo() == seeded
    output = out.getvalue()
    assert "admin-demo-123" in output and "keeper2" in output
    assert "expired" in output and "expiring soon" in output


# --- the month of history -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_month_of_history_reaches_the_reconciliation_with_each_planted_finding(seeded, today):
    from inventory.models import (
        CabinetSession,
        Consumption,
        Finding,
        HisSettlementLine,
        ReconciliationRun,
        SupplierSettlement,
    )
    from inventory.selectors.charts import daily_use_and_billing

    lead = Hospital.objects.get(is_lead=True)
    uses = Consumption.objects.filter(hospital=lead)
    first = uses.order_by("occurred_at").first().occurred_at
    assert timezone.localdate(first) <= today - datetime.timedelta(days=25)
    assert uses.count() >= 40 and uses.filter(refunded_at__isnull=False).count() == 2
    assert uses.filter(was_consignment=True).count() >= 3 and uses.filter(unit__isnull=True).exists()
    sessions = CabinetSession.objects.filter(cabinet__hospital=lead, status=CabinetSession.Status.CLOSED)
    assert sessions.count() >= 3 and all(session.taken for session in sessions)
    assert HisSettlementLine.objects.filter(hospital=lead, amount__lt=0).count() == 2  # the refunds
    statement = SupplierSettlement.objects.get(hospital=lead)
    assert statement.status == SupplierSettlement.Status.CONFIRMED and statement.lines.exists()

    run = ReconciliationRun.objects.get(hospital=lead, is_current=True)
    assert run.status == ReconciliationRun.Status.DONE and run.period_end == today
    assert run.period_start <= today - datetime.timedelta(days=28)
    assert run.csv_sha256 and run.pdf_sha256
    kinds = set(Finding.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == {
        Finding.Kind.USED_NOT_BILLED, Finding.Kind.BILLED_NOT_USED, Finding.Kind.BILLED_QTY_EXCEEDS_USED,
        Finding.Kind.SUBSTITUTION, Finding.Kind.PRICE_ABOVE_PURCHASE, Finding.Kind.PRICE_NOT_ADJUSTED,
        Finding.Kind.MULTI_SUPPLIER_HIGHEST_PRICE, Finding.Kind.ZERO_COST_BILLED, Finding.Kind.CONSIGNMENT_UNSETTLED,
    }
    series = daily_use_and_billing(lead, today - datetime.timedelta(days=28), today, grace=datetime.timedelta(days=2))
    assert sum(1 for day in series if day.used) >= 15 and sum(1 for day in series if day.billed) >= 15
    assert seeded["history_findings"] == Finding.objects.filter(run=run).count()
    from inventory.models import Alert

    assert {Alert.Kind.CERTIFICATE_EXPIRING, Alert.Kind.CERTIFICATE_EXPIRED} <= set(
        Alert.objects.filter(hospital=lead).values_list("kind", flat=True))
    # The smart cabinet is refilled after the history's takes.
    assert Unit.objects.filter(location__code="CATH-CAB1", location__hospital=lead,
                               status=UnitStatus.IN_CABINET).count() >= 8


@pytest.mark.django_db
def test_the_ward_uses_what_the_cabinet_gave_out_and_its_charges_reach_the_fake_his(seeded, settings):
    from devices.models import Device
    from inventory.models import ChargeDelivery, Consumption
    from inventory.services.cabinets import close_session, open_session
    from inventory.services.his import deliver_due_charges
    from inventory.simulation.fake_his import FakeHis
    from inventory.simulation.ward import ward_round

    lead = Hospital.objects.get(is_lead=True)
    cabinet = Location.objects.get(hospital=lead, code="CATH-CAB1")
    device = Device.objects.get(code="QS01-CATH-CAB1")
    inside = list(Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).order_by("pk"))
    now = timezone.now()
    open_session(device=device, cabinet=cabinet, occurred_at=now, badge="B-0001")
    close_session(device=device, cabinet=cabinet, occurred_at=now, epcs=[unit.epc for unit in inside[2:]])
    before = Consumption.objects.filter(hospital=lead).count()

    report = ward_round(hospital_code="QS01", cabinet_code="CATH-CAB1")
    assert report.used == 2
    assert Consumption.objects.filter(hospital=lead).count() == before + 2
    assert set(Unit.objects.filter(pk__in=[inside[0].pk, inside[1].pk]).values_list("status", flat=True)) == {
        UnitStatus.CONSUMED}
    assert ward_round(hospital_code="QS01", cabinet_code="CATH-CAB1").used == 0

    with FakeHis() as his:
        settings.SPD_HIS_CHARGE_URL = his.url
        ChargeDelivery.objects.exclude(charge__consumption__unit__in=inside[:2]).update(
            status=ChargeDelivery.Status.DELIVERED, his_reference="seeded")
        assert deliver_due_charges().delivered == 2
        assert len(his.received) == 2


@pytest.mark.django_db
def test_the_ward_refills_a_cabinet_running_low(seeded):
    from inventory.actors import Actor
    from inventory.services.stock import transfer_stock
    from inventory.simulation.ward import REFILL_TO, ward_round

    lead = Hospital.objects.get(is_lead=True)
    cabinet = Location.objects.get(hospital=lead, code="CATH-CAB1")
    store = Location.objects.get(hospital=lead, code="CATH-STORE")
    units = list(Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).order_by("pk"))
    transfer_stock(actor=Actor(user=User.objects.get(username="keeper")), hospital=lead, to_location=store,
                   units=units[1:], idempotency_key="empty-the-cabinet")
    report = ward_round(hospital_code="QS01", cabinet_code="CATH-CAB1")
    assert report.refilled == REFILL_TO - 1
    assert Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).exclude(epc__isnull=True).count() == REFILL_TO


def test_the_demo_shows_the_distribution_loop_once(seeded):
    from inventory.models import ParLevel, ReplenishmentSuggestion, Requisition

    lead = Requisition.objects.filter(hospital__is_lead=True)
    assert lead.filter(urgency="URGENT", status="APPROVED").count() == 1
    assert lead.filter(status="SUBMITTED").count() == 1
    assert ParLevel.objects.filter(location__hospital__is_lead=True).count() == 12
    assert ReplenishmentSuggestion.objects.filter(status="OPEN").exists()
    seed_demo()
    assert Requisition.objects.count() == 4 and ParLevel.objects.count() == 12


@pytest.mark.django_db
def test_the_demo_has_a_pick_list_in_progress_and_a_delivery_awaiting_receipt(seeded):
    from inventory.models import Delivery, PickedItem, PickList, Requisition

    in_progress = PickList.objects.get(status=PickList.Status.OPEN)
    assert PickedItem.objects.filter(line__pick_list=in_progress).exists()
    assert in_progress.lines.filter(is_open=True).exists()
    delivery = Delivery.objects.get()
    assert delivery.received_at is None and delivery.department.code == "CATH"
    assert Requisition.objects.get(note__endswith="已配送待签收").status == Requisition.Status.DISPATCHED
    assert Movement.objects.filter(to_location=delivery.in_transit_location, kind=Movement.Kind.TRANSFER).exists()
    seed_demo()
    assert PickList.objects.count() == 2 and Delivery.objects.count() == 1


@pytest.mark.django_db
def test_the_demo_has_packaging_units_and_gloves_expensed_to_the_eye_clinic(seeded):
    from inventory.models import LotMovementLayer, PackagingUnit
    from inventory.services.units_of_measure import describe_quantity, purchase_unit

    syringe = Product.objects.filter(hospital__is_lead=True, category="注射器").first()
    assert (purchase_unit(syringe).name, purchase_unit(syringe).factor) == ("盒", 100)
    assert describe_quantity(product=syringe, base_quantity=1234) == "1 箱 2 盒 34 支"
    gloves = Product.objects.get(expensed_on_issue=True)
    assert gloves.his_charge_code == "" and PackagingUnit.objects.filter(product=gloves, is_purchase_unit=True).exists()
    line = DeliveryLine.objects.get(product=gloves)
    assert (line.quantity, line.received_unit, line.unit_price) == (1000, "盒", Decimal("0.35"))
    expense = Movement.objects.get(kind=Movement.Kind.DEPARTMENT_EXPENSE)
    assert (expense.product, expense.quantity, expense.from_location.code) == (gloves, 300, "OPH-STORE")
    assert sum(row.quantity * row.unit_cost for row in LotMovementLayer.objects.filter(movement=expense)) == Decimal("105.00")
    seed_demo()  # a second run adds nothing
    assert Movement.objects.filter(kind=Movement.Kind.DEPARTMENT_EXPENSE).count() == 1
