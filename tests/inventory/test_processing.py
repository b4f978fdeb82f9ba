"""Processing (加工): definitions, assembly by scan with FEFO, use member by member, break-up, sets."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    Alert,
    Charge,
    Consumption,
    IdempotencyRecord,
    Location,
    LotBalance,
    Movement,
    Pack,
    PackDefinition,
    PackMember,
    Product,
    Unit,
)
from inventory.selectors.reconciliation import ledger_against_stock, stock_flows
from inventory.services.consumption import ClinicalContext, consume_lot
from inventory.services.processing import (
    LineInput,
    MemberScan,
    assemble_pack,
    break_pack,
    save_definition,
    scan_set_partners,
    use_pack,
)
from inventory.services.receiving import LineInput as DeliveryLine
from inventory.services.receiving import accept_delivery_note, receive_delivery_note
from inventory.services.reconciliation import run_reconciliation
from inventory.services.reports import report_content
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import stock_units
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db

EARLY, LATE = TODAY + datetime.timedelta(days=300), TODAY + datetime.timedelta(days=700)


@pytest.fixture
def station(hospital):
    return factories.LocationFactory(hospital=hospital, code="PROC", name="加工间", kind=Location.Kind.PROCESSING_STATION)


def receive_lot(actor, supplier, location, product, lot, quantity, expiry, price=Decimal("3.50")):
    number = f"DN-{lot}-{quantity}"
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=[DeliveryLine(price, product=product, lot=lot, expiry=expiry, quantity=quantity)],
        idempotency_key=f"rcv-{number}",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")
    return LotBalance.objects.get(product=product, lot=lot, location=location)


def lot_scan(product, lot, quantity, expiry):
    return MemberScan(gs1_udi(product.udi_di, lot=lot, expiry=expiry), quantity)


def unit_scan(unit):
    return MemberScan(gs1_udi(unit.di, serial=unit.serial, lot=unit.lot, expiry=unit.expiry))


@pytest.fixture
def syringe_pack(keeper, hospital, lot_product):
    return save_definition(user=keeper, hospital=hospital, code="DB-SYR10", name="注射器定数包（10支）",
                           kind=PackDefinition.Kind.PACK, lines=[LineInput(lot_product, 10)])


@pytest.fixture
def stocked_station(keeper_actor, supplier, station, lot_product):
    receive_lot(keeper_actor, supplier, station, lot_product, "L-LATE", 20, LATE)
    receive_lot(keeper_actor, supplier, station, lot_product, "L-EARLY", 15, EARLY)
    return station


def assemble(actor, definition, station, scans, key="asm-1"):
    return assemble_pack(actor=actor, hospital=station.hospital, definition=definition, station=station,
                         scans=scans, idempotency_key=key)


def test_a_changed_definition_is_a_new_version_and_made_packs_keep_theirs(
    keeper, keeper_actor, hospital, syringe_pack, stocked_station, lot_product
):
    pack = assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])
    second = save_definition(user=keeper, hospital=hospital, code="DB-SYR10", name="注射器定数包（5支）",
                             kind=PackDefinition.Kind.PACK, lines=[LineInput(lot_product, 5)])
    syringe_pack.refresh_from_db()
    assert (second.version, second.is_current, syringe_pack.is_current) == (2, True, False)
    assert second.pack_product == syringe_pack.pack_product  # one identity (GTIN) for the code
    pack.refresh_from_db()
    assert pack.definition == syringe_pack


@pytest.mark.parametrize("quantity", [0, -3, "2"])
def test_a_definition_with_a_bad_quantity_is_refused_and_nothing_is_written(keeper, hospital, lot_product, quantity):
    products = Product.objects.count()
    with pytest.raises(Refused) as refused:
        save_definition(user=keeper, hospital=hospital, code="BAD", name="坏定义", kind=PackDefinition.Kind.KIT,
                        lines=[LineInput(lot_product, quantity)])
    assert (refused.value.code, refused.value.status) == ("PACK_LINE_QUANTITY", 400)
    assert (PackDefinition.objects.count(), Product.objects.count()) == (0, products)


def test_a_kit_containing_itself_is_refused(keeper, hospital, product, lot_product):
    inner = save_definition(user=keeper, hospital=hospital, code="KIT-A", name="A 包", kind=PackDefinition.Kind.KIT,
                            lines=[LineInput(lot_product, 2)])
    save_definition(user=keeper, hospital=hospital, code="KIT-B", name="B 包", kind=PackDefinition.Kind.KIT,
                    lines=[LineInput(inner.pack_product, 1), LineInput(product, 1)])
    outer = PackDefinition.objects.get(code="KIT-B")
    with pytest.raises(Refused) as refused:  # A would contain B, which contains A
        save_definition(user=keeper, hospital=hospital, code="KIT-A", name="A 包", kind=PackDefinition.Kind.KIT,
                        lines=[LineInput(outer.pack_product, 1)])
    assert (refused.value.code, refused.value.status) == ("PACK_DEFINITION_CYCLE", 400)
    with pytest.raises(Refused) as itself:
        save_definition(user=keeper, hospital=hospital, code="KIT-A", name="A 包", kind=PackDefinition.Kind.KIT,
                        lines=[LineInput(inner.pack_product, 1)])
    assert itself.value.code == "PACK_DEFINITION_CYCLE"
    assert PackDefinition.objects.filter(code="KIT-A").count() == 1


def test_assembly_by_scan_takes_the_first_expiring_lot_and_refuses_a_later_one(
    keeper_actor, syringe_pack, stocked_station, lot_product
):
    with pytest.raises(Refused) as refused:
        assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-LATE", 10, LATE)])
    assert (refused.value.code, refused.value.status) == ("NOT_FEFO", 409)
    assert "L-EARLY" in refused.value.detail
    assert not Pack.objects.exists() and not IdempotencyRecord.objects.filter(key="asm-1").exists()

    pack = assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])
    unit = pack.unit
    assert (unit.status, unit.location, unit.expiry) == ("IN_STOCK", stocked_station, EARLY)
    assert unit.unit_cost == Decimal("35.00")
    assert unit.di == syringe_pack.pack_product.udi_di and unit.di.startswith("029")
    member = pack.members.get()
    assert (member.lot, member.quantity, member.state) == ("L-EARLY", 10, "LIVE")
    assert LotBalance.objects.get(lot="L-EARLY", location=stocked_station).quantity == 5
    kinds = list(Movement.objects.filter(document_type="PACK", document_id=pack.pk).values_list("kind", flat=True))
    assert sorted(kinds) == ["PACK_IN", "PACK_MADE"]
    assert ledger_against_stock(stocked_station.hospital) == []


def test_assembling_with_too_few_or_too_many_members_is_refused_and_writes_nothing(
    keeper_actor, syringe_pack, stocked_station, lot_product
):
    movements = Movement.objects.count()
    with pytest.raises(Refused) as short:
        assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 9, EARLY)])
    assert (short.value.code, short.value.status) == ("PACK_MEMBERS_SHORT", 400)
    with pytest.raises(Refused) as excess:
        assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 11, EARLY)])
    assert (excess.value.code, excess.value.status) == ("PACK_MEMBERS_EXCESS", 409)
    assert Movement.objects.count() == movements and not Pack.objects.exists()


def test_a_unit_not_at_the_station_or_not_in_the_definition_is_refused(
    keeper, keeper_actor, hospital, supplier, warehouse, station, product, lot_product
):
    kit = save_definition(user=keeper, hospital=hospital, code="KIT-PCI", name="PCI 手术包",
                          kind=PackDefinition.Kind.KIT, lines=[LineInput(product, 1)])
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["W1"])[0]
    with pytest.raises(Refused) as refused:
        assemble(keeper_actor, kit, station, [unit_scan(unit)])
    assert refused.value.code == "MEMBER_NOT_AT_STATION"
    with pytest.raises(Refused) as foreign:
        assemble(keeper_actor, kit, station, [unit_scan(unit), lot_scan(lot_product, "X", 1, EARLY)])
    assert "PACK_MEMBER_NOT_IN_DEFINITION" in [problem.code for problem in foreign.value.problems]


@pytest.fixture
def ward(hospital):
    department = factories.DepartmentFactory(hospital=hospital, code="OPH", name="眼科")
    return factories.LocationFactory(hospital=hospital, department=department, code="OPH-STORE", name="眼科二级库",
                                     kind="DEPARTMENT_STORE")


@pytest.fixture
def iol_set(keeper, keeper_actor, hospital, supplier, station, ward):
    """An intraocular lens and its injector, assembled as a set and dispatched to the eye ward."""
    lens = factories.SupplyAgreementFactory(product__hospital=hospital, product__name="人工晶状体", supplier=supplier,
                                            unit_price=Decimal("2800.00")).product
    injector = factories.SupplyAgreementFactory(product__hospital=hospital, product__name="晶体推注器",
                                                supplier=supplier, unit_price=Decimal("300.00")).product
    definition = save_definition(user=keeper, hospital=hospital, code="SET-IOL", name="人工晶体配套",
                                 kind=PackDefinition.Kind.SET, lines=[LineInput(lens, 1), LineInput(injector, 1)])
    units = stock_units(keeper_actor, supplier, station, lens, ["IOL1"]) + stock_units(
        keeper_actor, supplier, station, injector, ["INJ1"])
    pack = assemble(keeper_actor, definition, station, [unit_scan(unit) for unit in units], key="asm-iol")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=ward, units=[pack.unit], idempotency_key="go")
    pack.refresh_from_db()
    return pack


def context(ward, encounter="ZY2026001", **kwargs):
    return ClinicalContext(encounter=encounter, department=ward.department, **kwargs)


def test_a_pack_moves_like_a_unit_and_its_whole_use_charges_each_member_once_at_its_cost(
    keeper_actor, hospital, iol_set, ward
):
    assert (iol_set.unit.location, iol_set.unit.status) == (ward, "IN_STOCK")
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward), idempotency_key="use-1")
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward), idempotency_key="use-1")
    charges = Charge.objects.order_by("unit_price")
    assert [(charge.unit_price, charge.quantity, charge.encounter) for charge in charges] == [
        (Decimal("300.00"), 1, "ZY2026001"), (Decimal("2800.00"), 1, "ZY2026001")]
    assert set(Unit.objects.filter(serial__in=["IOL1", "INJ1"]).values_list("status", flat=True)) == {"CONSUMED"}
    iol_set.unit.refresh_from_db()
    assert iol_set.unit.status == "UNPACKED" and iol_set.unit.location is None
    assert ledger_against_stock(hospital) == []
    with pytest.raises(Refused):
        use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward), idempotency_key="use-2")
    assert Charge.objects.count() == 2


def test_using_part_of_a_pack_consumes_those_members_and_leaves_the_rest(keeper_actor, hospital, iol_set, ward):
    lens = iol_set.members.get(unit__serial="IOL1")
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward), idempotency_key="use-lens",
             member_ids=[lens.pk])
    states = dict(iol_set.members.values_list("unit__serial", "state"))
    assert states == {"IOL1": "USED", "INJ1": "LIVE"}
    iol_set.unit.refresh_from_db()
    assert (iol_set.unit.status, iol_set.unit.location) == ("IN_STOCK", ward)
    assert Consumption.objects.get().unit.serial == "IOL1"
    assert ledger_against_stock(hospital) == []


def test_breaking_a_pack_returns_its_members_to_stock_with_the_ledger_showing_it(
    keeper_actor, hospital, syringe_pack, stocked_station, lot_product
):
    pack = assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])
    start = timezone.now() - datetime.timedelta(minutes=1)
    break_pack(actor=keeper_actor, hospital=hospital, pack=pack, idempotency_key="break-1")
    assert LotBalance.objects.get(lot="L-EARLY", location=stocked_station).quantity == 15
    member = pack.members.get()
    assert member.state == "RETURNED" and member.out_movement.kind == "PACK_OUT"
    pack.unit.refresh_from_db()
    assert pack.unit.status == "UNPACKED"
    assert ledger_against_stock(hospital) == []
    rows = {(row.product_id, row.location_id): row for row in stock_flows(hospital, start, timezone.now()
                                                                          + datetime.timedelta(minutes=1))}
    assert rows[(lot_product.pk, stocked_station.pk)].closing == 35


def test_an_expired_member_locks_the_whole_pack_naming_the_member(keeper_actor, hospital, iol_set, ward):
    lens = iol_set.members.get(unit__serial="IOL1")
    PackMember.objects.filter(pk=lens.pk).update(expiry=TODAY - datetime.timedelta(days=1))
    with pytest.raises(Refused) as refused:
        use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward), idempotency_key="use-x")
    assert (refused.value.code, refused.value.status) == ("PACK_MEMBER_EXPIRED", 409)
    assert "人工晶状体 SN IOL1" in refused.value.detail
    assert not Consumption.objects.exists()


def test_a_set_component_used_without_its_partner_raises_an_alert(
    keeper_actor, hospital, iol_set, ward, settings
):
    settings.SPD_SET_PARTNER_WINDOW_HOURS = 2
    lens = iol_set.members.get(unit__serial="IOL1")
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward),
             idempotency_key="use-lens", member_ids=[lens.pk])
    three_hours_on = timezone.now() + datetime.timedelta(hours=3)
    scan_set_partners(hospital=hospital, now=three_hours_on)
    alert = Alert.objects.get(kind="SET_PARTNER_MISSING")
    assert "晶体推注器" in alert.message and alert.unit.serial == "IOL1"
    injector = iol_set.members.get(unit__serial="INJ1")
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward),
             idempotency_key="use-inj", member_ids=[injector.pk])
    scan_set_partners(hospital=hospital, now=three_hours_on)
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"


def test_another_hospitals_definition_is_not_found(keeper_actor, other_hospital, syringe_pack, station):
    other_station = factories.LocationFactory(hospital=other_hospital, code="P2", kind="PROCESSING_STATION")
    with pytest.raises(Refused) as refused:
        assemble_pack(actor=keeper_actor, hospital=other_hospital, definition=syringe_pack, station=other_station,
                      scans=[], idempotency_key="x")
    assert refused.value.status == 404


def test_assembly_at_a_place_that_is_not_a_processing_station_is_refused(
    keeper_actor, syringe_pack, warehouse, lot_product
):
    with pytest.raises(Refused) as refused:
        assemble(keeper_actor, syringe_pack, warehouse, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])
    assert refused.value.code == "NOT_A_PROCESSING_STATION"


def test_actor_is_recorded_on_every_processing_movement(keeper, keeper_actor, syringe_pack, stocked_station,
                                                        lot_product):
    pack = assemble(Actor(user=keeper), syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])
    assert set(Movement.objects.filter(document_type="PACK", document_id=pack.pk)
               .values_list("actor_user", flat=True)) == {keeper.pk}


def test_the_stock_flow_table_has_its_own_processing_column_and_balances(
    keeper_actor, hospital, syringe_pack, stocked_station, lot_product
):
    start = timezone.now() - datetime.timedelta(minutes=1)
    pack = assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])

    def rows():
        return {(row.product_id, row.location_id): row
                for row in stock_flows(hospital, start, timezone.now() + datetime.timedelta(minutes=1))}

    made = rows()
    members, packs = made[(lot_product.pk, stocked_station.pk)], made[(pack.unit.product_id, stocked_station.pk)]
    assert (members.received, members.processed, members.other, members.closing) == (35, -10, 0, 25)
    assert (packs.processed, packs.other, packs.closing) == (1, 0, 1)
    break_pack(actor=keeper_actor, hospital=hospital, pack=pack, idempotency_key="break-flows")
    broken = rows()
    members = broken[(lot_product.pk, stocked_station.pk)]
    assert (members.processed, members.other, members.closing) == (0, 0, 35)
    assert (pack.unit.product_id, stocked_station.pk) not in broken  # made and emptied in the period: no row
    assert ledger_against_stock(hospital) == []


# --- sets with lot components, and the reconciliation's finding ---------------------------------------


class ShiftedClock:
    """`timezone.now()` moved forward by a number of hours (uses then happen later, as on a ward)."""

    def __init__(self, monkeypatch):
        self.real, self.hours = timezone.now, 0
        monkeypatch.setattr(timezone, "now", lambda: self.real() + datetime.timedelta(hours=self.hours))

    def forward(self, hours):
        self.hours += hours


@pytest.fixture
def shifted(monkeypatch):
    return ShiftedClock(monkeypatch)


@pytest.fixture
def lens_and_gel_set(keeper, keeper_actor, hospital, supplier, stocked_station, lot_product, ward, settings):
    """A lens (a unit) with one syringe of viscoelastic gel (a lot quantity), as a set, on the eye ward."""
    settings.SPD_SET_PARTNER_WINDOW_HOURS = 2
    lens = factories.SupplyAgreementFactory(product__hospital=hospital, product__name="人工晶状体", supplier=supplier,
                                            unit_price=Decimal("2800.00")).product
    Product.objects.filter(pk=lot_product.pk).update(name="黏弹剂")
    lot_product.refresh_from_db()
    definition = save_definition(user=keeper, hospital=hospital, code="SET-IOL-GEL", name="晶体黏弹剂配套",
                                 kind=PackDefinition.Kind.SET, lines=[LineInput(lens, 1), LineInput(lot_product, 1)])
    [unit] = stock_units(keeper_actor, supplier, stocked_station, lens, ["IOL7"])
    pack = assemble(keeper_actor, definition, stocked_station,
                    [unit_scan(unit), lot_scan(lot_product, "L-EARLY", 1, EARLY)], key="asm-gel")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=ward, units=[pack.unit], idempotency_key="go-gel")
    pack.refresh_from_db()
    return pack


def use_members(actor, pack, ward, members, key, encounter="ZY2026001"):
    use_pack(actor=actor, hospital=pack.hospital, pack=pack, context=context(ward, encounter), idempotency_key=key,
             member_ids=[member.pk for member in members])


def open_set_alerts():
    return list(Alert.objects.filter(kind="SET_PARTNER_MISSING", status="OPEN"))


def test_a_lot_component_used_without_its_unit_partner_raises_an_alert_until_the_partner_is_used(
    keeper_actor, hospital, lens_and_gel_set, ward, shifted
):
    gel = lens_and_gel_set.members.get(unit__isnull=True)
    use_members(keeper_actor, lens_and_gel_set, ward, [gel], "use-gel")
    scan_set_partners(hospital=hospital, now=timezone.now() + datetime.timedelta(hours=1))
    assert open_set_alerts() == [], "the window is still open"
    scan_set_partners(hospital=hospital, now=timezone.now() + datetime.timedelta(hours=3))
    [alert] = open_set_alerts()
    assert "黏弹剂 批号 L-EARLY" in alert.message and "人工晶状体 SN IOL7" in alert.message
    assert (alert.unit, alert.product.name, alert.details["used_lot"]) == (None, "黏弹剂", "L-EARLY")

    shifted.forward(1)  # the lens, on the same encounter an hour later: inside the window
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__serial="IOL7")], "use-iol")
    scan_set_partners(hospital=hospital, now=timezone.now() + datetime.timedelta(hours=3))
    alert.refresh_from_db()
    assert alert.status == "RESOLVED" and open_set_alerts() == []


def test_a_unit_component_whose_lot_partner_is_used_from_the_shelf_on_the_encounter_is_complete(
    keeper_actor, hospital, lens_and_gel_set, ward, lot_product
):
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__serial="IOL7")], "use-iol")
    later = timezone.now() + datetime.timedelta(hours=3)
    scan_set_partners(hospital=hospital, now=later)
    [alert] = open_set_alerts()
    assert "黏弹剂 批号 L-EARLY" in alert.message and alert.unit.serial == "IOL7"
    # 拆包 returns the gel to the ward's shelf; used from there on the same encounter, it is the partner.
    break_pack(actor=keeper_actor, hospital=hospital, pack=lens_and_gel_set, idempotency_key="break-gel")
    consume_lot(actor=keeper_actor, hospital=hospital, product=lot_product, lot="L-EARLY", quantity=1,
                context=context(ward), idempotency_key="gel-shelf", location=ward)
    scan_set_partners(hospital=hospital, now=later)
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"


def test_a_partner_used_after_the_window_leaves_the_set_incomplete(
    keeper_actor, hospital, lens_and_gel_set, ward, shifted
):
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__serial="IOL7")], "use-iol")
    shifted.forward(3)  # the gel on the same encounter, three hours later: the window is two
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__isnull=True)], "use-gel")
    scan_set_partners(hospital=hospital, now=timezone.now() + datetime.timedelta(hours=3))
    [alert] = open_set_alerts()  # one alert per set and encounter
    assert alert.details["encounter"] == "ZY2026001"


def run_today(hospital):
    today = timezone.localdate()
    return run_reconciliation(hospital=hospital, period_start=today - datetime.timedelta(days=1), period_end=today)


def test_the_reconciliation_reports_a_component_whose_partner_went_to_another_encounter(
    keeper_actor, hospital, lens_and_gel_set, ward, shifted, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    lens = lens_and_gel_set.members.get(unit__serial="IOL7")
    gel = lens_and_gel_set.members.get(unit__isnull=True)
    use_members(keeper_actor, lens_and_gel_set, ward, [lens], "use-iol", encounter="ZY2026001")
    use_members(keeper_actor, lens_and_gel_set, ward, [gel], "use-gel", encounter="ZY2026999")
    assert not run_today(hospital).findings.filter(kind="SET_PARTNER_MISSING").exists(), "window still open"

    shifted.forward(3)
    run = run_today(hospital)
    run = run_reconciliation(hospital=hospital, period_start=run.period_start, period_end=run.period_end, rerun=True)
    findings = {finding.encounter: finding for finding in run.findings.filter(kind="SET_PARTNER_MISSING")}
    assert sorted(findings) == ["ZY2026001", "ZY2026999"]  # each use misses its partner
    lens_gap, gel_gap = findings["ZY2026001"], findings["ZY2026999"]
    assert (lens_gap.unit.serial, lens_gap.location, lens_gap.amount) == ("IOL7", ward, Decimal("3.50"))
    assert (gel_gap.unit, gel_gap.lot, gel_gap.amount) == (None, "L-EARLY", Decimal("2800.00"))
    assert "黏弹剂 批号 L-EARLY" in lens_gap.message and lens_gap.message.endswith("未在同一就诊 2 小时内使用")
    [missing] = lens_gap.evidence["missing"]
    assert (missing["lot"], [use["encounter"] for use in missing["used_on"]]) == ("L-EARLY", ["ZY2026999"])
    assert run.summary["findings"]["by_kind"]["SET_PARTNER_MISSING"]["count"] == 2
    content = report_content(run)
    assert ["配套组件缺用", "SET_PARTNER_MISSING", 2, Decimal("2803.50")] in content.kinds
    assert sum(row[1] == "配套组件缺用" for row in content.findings) == 2


def test_the_reconciliation_has_no_set_finding_when_the_partners_are_used_together_within_the_window(
    keeper_actor, hospital, lens_and_gel_set, iol_set, ward, shifted
):
    use_pack(actor=keeper_actor, hospital=hospital, pack=iol_set, context=context(ward, "ZY2026002"),
             idempotency_key="use-units")  # units: the whole set at once
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__isnull=True)], "use-gel")
    shifted.forward(1)
    use_members(keeper_actor, lens_and_gel_set, ward, [lens_and_gel_set.members.get(unit__serial="IOL7")], "use-iol")
    shifted.forward(3)
    scan_set_partners(hospital=hospital)
    assert open_set_alerts() == []
    assert not run_today(hospital).findings.filter(kind="SET_PARTNER_MISSING").exists()
