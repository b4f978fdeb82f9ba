"""County alliance (医共体): central purchasing → regional receipt → distribution → use in a member,
transfers between members in transit across a month end, settlement — each hospital's books complete."""
import datetime
import hashlib
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    AllianceTransfer,
    Charge,
    Finding,
    LotBalance,
    Movement,
    PeriodBalance,
    Unit,
    UnitStatus,
)
from inventory.selectors.periods import ledger_fold
from inventory.selectors.reconciliation import ledger_against_stock, stock_flows
from inventory.services.alliance_settlement import issue_allocation_statement
from inventory.services.central_purchasing import CentralLineInput, distribute_central_order, place_central_order
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.period_close import close_month, month_bounds, next_month
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, transfer_stock
from inventory.services.transfers import (
    LineDecision,
    TransferLot,
    approve_transfer,
    can_act_for_alliance,
    create_transfer,
    dispatch_transfer,
    receive_transfer,
    scan_transfer_item,
    transfers_visible_to,
)
from tests import factories
from tests.conftest import api_client_for, scan_every_line, stock_units
from tests.factories import TODAY, gs1_udi
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

THIS_MONTH = TODAY.replace(day=1)
AFTER_MONTH = datetime.datetime.combine(next_month(THIS_MONTH), datetime.time(1), tzinfo=timezone.get_default_timezone())
EXPIRY = TODAY + datetime.timedelta(days=700)


class Member:
    """One member hospital: its catalog entries for the alliance's products, its stores and its keeper."""

    def __init__(self, code: str, products: list, alliance: str = "测试县医共体"):
        self.hospital = factories.HospitalFactory(code=code, name=f"{code}卫生院", alliance=alliance)
        self.warehouse = factories.LocationFactory(hospital=self.hospital, code="CW", name=f"{code}中心库")
        self.department = factories.DepartmentFactory(hospital=self.hospital, code="WARD", name="内科")
        self.store = factories.LocationFactory(hospital=self.hospital, department=self.department, code="WARD-STORE",
                                               kind="DEPARTMENT_STORE", name="内科二级库")
        self.keeper = factories.UserFactory(username=f"keeper-{code}", hospital=self.hospital, roles=["warehouse"])
        self.products = {
            product.pk: factories.ProductFactory(
                hospital=self.hospital, udi_di=product.udi_di, internal_code=f"{code}-{product.internal_code}",
                name=product.name, tracking=product.tracking, is_high_value=product.is_high_value,
                manufacturer=product.manufacturer, registration_certificate=product.registration_certificate)
            for product in products
        }


@pytest.fixture
def alliance(hospital, warehouse, product, lot_product, supplier):
    members = [Member(code, [product, lot_product]) for code in ("M1", "M2", "M3")]
    return members


@pytest.fixture
def centre_operator(hospital):
    return factories.UserFactory(username="centre-op", hospital=hospital, roles=["spd_operator"])


def receive_at_regional_warehouse(operator, supplier, warehouse, order, lines, number):
    actor = Actor(user=operator)
    note = receive_delivery_note(actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number,
                                 receiving_location=warehouse, lines=lines, idempotency_key=f"rcv-{number}",
                                 purchase_order=order)
    scan_every_line(actor, note)
    return accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


def scan_and_receive(member: Member, transfer: AllianceTransfer, key: str, **kwargs) -> AllianceTransfer:
    for line in transfer.lines.select_related("unit", "product"):
        code = line.unit.udi if line.unit_id else gs1_udi(line.product.udi_di, lot=line.lot, expiry=line.expiry)
        scan_transfer_item(user=member.keeper, transfer=transfer, code=code)
    return receive_transfer(user=member.keeper, transfer=transfer, idempotency_key=key, **kwargs)


def value_in(hospital) -> Decimal:
    """The value the hospital's ledger holds now (its closing balances folded from the ledger)."""
    return sum((row.value for row in ledger_fold(hospital, AFTER_MONTH, None)), Decimal("0.00"))


def test_central_order_for_three_members_is_received_distributed_used_and_allocated(
    hospital, warehouse, product, lot_product, supplier, alliance, centre_operator,
):
    m1, m2, m3 = alliance
    central = place_central_order(
        user=centre_operator, supplier=supplier, regional_warehouse=warehouse, promised_date=TODAY,
        lines=[CentralLineInput(product, {m1.hospital: 2, m2.hospital: 1, m3.hospital: 1}, platform_reference="YG-1"),
               CentralLineInput(lot_product, {m1.hospital: 10, m2.hospital: 5, m3.hospital: 5})],
    )
    order = central.purchase_order
    assert order.hospital == hospital and [line.quantity for line in order.lines.order_by("line_no")] == [4, 20]
    serials = ["C1", "C2", "C3", "C4"]
    receive_at_regional_warehouse(
        centre_operator, supplier, warehouse, order,
        [*(LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial=s)) for s in serials),
         LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=EXPIRY, quantity=20)], "DN-C1")
    assert Unit.objects.filter(location=warehouse, status=UnitStatus.IN_STOCK).count() == 4

    transfers = {}
    for index, member in enumerate(alliance):
        transfer = distribute_central_order(user=centre_operator, central_order=central, member=member.hospital,
                                            idempotency_key=f"dist-{index}")
        assert transfer.kind == AllianceTransfer.Kind.DISTRIBUTION and transfer.status == "APPROVED"
        dispatch_transfer(user=centre_operator, transfer=transfer, idempotency_key=f"disp-{index}")
        transfers[member.hospital.code] = scan_and_receive(member, transfer, f"recv-{index}")
    assert all(t.status == AllianceTransfer.Status.RECEIVED for t in transfers.values())
    assert not Unit.objects.filter(hospital=hospital).exclude(status=UnitStatus.ACCEPTED).filter(
        location=warehouse).exists()
    assert LotBalance.objects.get(product=lot_product, location=warehouse).quantity == 0
    # Each member's units are now its own, under its own catalog entry, at the centre's cost.
    m1_units = list(Unit.objects.filter(hospital=m1.hospital).order_by("serial"))
    assert len(m1_units) == 2 and {u.product_id for u in m1_units} == {m1.products[product.pk].pk}
    assert {u.unit_cost for u in m1_units} == {Decimal("1200.00")}

    # Use in member 1: its own move to the ward, then a use billed at the centre's purchase price.
    m1_lot = m1.products[lot_product.pk]
    transfer_stock(actor=Actor(user=m1.keeper), hospital=m1.hospital, to_location=m1.store, units=[m1_units[0]],
                   lots=[LotQuantity(m1_lot, "L1", 4, m1.warehouse)], idempotency_key="m1-ward")
    context = ClinicalContext(encounter="ZY-M1-1", department=m1.department)
    consume_unit(actor=Actor(user=m1.keeper), hospital=m1.hospital, unit=m1_units[0], context=context,
                 idempotency_key="m1-use-1")
    consume_lot(actor=Actor(user=m1.keeper), hospital=m1.hospital, product=m1_lot, lot="L1", quantity=3,
                context=context, idempotency_key="m1-use-2", location=m1.store)
    charges = Charge.objects.filter(hospital=m1.hospital)
    assert sorted(c.unit_price for c in charges) == [Decimal("3.50"), Decimal("1200.00")]

    # The member's reconciliation: its ledger and stock agree; the 进销存 shows the centre's goods as 移入.
    for member in alliance:
        run = run_reconciliation(hospital=member.hospital, period_start=TODAY, period_end=TODAY)
        assert run.status == "DONE"
        assert not Finding.objects.filter(run=run, kind="INVENTORY_MISMATCH").exists()
        assert ledger_against_stock(member.hospital) == []
    centre_run = run_reconciliation(hospital=hospital, period_start=TODAY, period_end=TODAY)
    assert not Finding.objects.filter(run=centre_run, kind="INVENTORY_MISMATCH").exists()
    start, end = month_bounds(THIS_MONTH)
    m1_flows = {(row.location_id, row.product_id): row for row in stock_flows(m1.hospital, start, end)}
    assert m1_flows[(m1.warehouse.pk, m1_lot.pk)].transferred_in == 10
    centre_flows = stock_flows(hospital, start, end)
    centre_out = sum(row.transferred_out for row in centre_flows if row.location_code == "ALLIANCE-TRANSIT")
    members_in = sum(row.transferred_in for member in alliance for row in stock_flows(member.hospital, start, end)
                     if row.location_id == member.warehouse.pk)
    assert centre_out == members_in == 24

    # The centre's allocation: what each member received, at cost; it agrees with the member's books.
    statements = {m.hospital.code: issue_allocation_statement(user=centre_operator, member=m.hospital,
                                                              month=THIS_MONTH, now=AFTER_MONTH) for m in alliance}
    assert statements["M1"].total == Decimal("2435.00")  # 2 × 1200 + 10 × 3.50
    assert statements["M2"].total == statements["M3"].total == Decimal("1217.50")
    used = sum((c.unit_price * c.quantity for c in charges), Decimal("0.00"))
    assert statements["M1"].total == value_in(m1.hospital) + used
    assert sum(s.total for s in statements.values()) == Decimal("4800.00") + Decimal("70.00")  # the centre paid
    statement = statements["M1"]
    for report_format in ("csv", "xlsx", "pdf"):
        data = getattr(statement, f"report_{report_format}").read()
        assert hashlib.sha256(data).hexdigest() == getattr(statement, f"{report_format}_sha256")
    statement.report_csv.open()
    text = statement.report_csv.read().decode("utf-8-sig")
    assert "M1-" in text and "2400.00" not in text and "1200.00" in text
    assert issue_allocation_statement(user=centre_operator, member=m1.hospital, month=THIS_MONTH,
                                      now=AFTER_MONTH).pk == statement.pk


def test_a_transfer_in_transit_at_a_month_end_is_in_the_senders_snapshot_and_lands_in_both_books_next_month(
    hospital, warehouse, product, lot_product, supplier, alliance, centre_operator, keeper_actor,
):
    m1 = alliance[0]
    units = stock_units(keeper_actor, supplier, warehouse, product, ["T1", "T2"])
    transfer = create_transfer(user=centre_operator, source_location=warehouse, to_hospital=m1.hospital,
                               destination=m1.warehouse, units=units, idempotency_key="t-1")
    assert transfer.status == AllianceTransfer.Status.PENDING_APPROVAL
    with pytest.raises(Refused) as refused:
        dispatch_transfer(user=centre_operator, transfer=transfer, idempotency_key="d-1")
    assert refused.value.code == "ALLIANCE_TRANSFER_STATE"
    with pytest.raises(Refused):
        approve_transfer(user=centre_operator, transfer=transfer)  # the receiver approves, not the sender
    approve_transfer(user=m1.keeper, transfer=transfer)
    dispatch_transfer(user=centre_operator, transfer=transfer, idempotency_key="d-1")

    # The month ends with the stents on the road: the sender closes it.
    run_reconciliation(hospital=hospital, period_start=THIS_MONTH,
                       period_end=next_month(THIS_MONTH) - datetime.timedelta(days=1))
    period = close_month(hospital=hospital, month=THIS_MONTH, user=centre_operator, now=AFTER_MONTH)
    transit = AllianceTransfer.objects.get(pk=transfer.pk).in_transit_location
    snapshot = {(b.location_id, b.product_id): (b.quantity, b.value) for b in PeriodBalance.objects.filter(period=period)}
    assert snapshot[(transit.pk, product.pk)] == (2, Decimal("2400.00"))
    assert not any(row.quantity for row in ledger_fold(m1.hospital, month_bounds(THIS_MONTH)[1], None))

    # Received next month: out of the sender's books and into the receiver's, both dated then.
    transfer.refresh_from_db()
    later = AFTER_MONTH + datetime.timedelta(hours=2)
    scan_and_receive(m1, transfer, "r-1", now=later,
                     decisions={transfer.lines.order_by("pk").last().pk: LineDecision(
                         received=0, discrepancy="DAMAGED", action="RETURNED", reason="外包装破损")})
    out = Movement.objects.filter(hospital=hospital, kind=Movement.Kind.ALLIANCE_OUT)
    into = Movement.objects.filter(hospital=m1.hospital, kind=Movement.Kind.ALLIANCE_IN)
    assert out.count() == into.count() == 1 and out.get().occurred_at == into.get().occurred_at == later
    returned = Unit.objects.get(serial="T2")
    assert returned.hospital == hospital and returned.location == warehouse
    next_start, next_end = month_bounds(next_month(THIS_MONTH))
    sender = {(r.location_id, r.product_id): r for r in stock_flows(hospital, next_start, next_end)}
    assert (sender[(transit.pk, product.pk)].opening, sender[(transit.pk, product.pk)].transferred_out,
            sender[(transit.pk, product.pk)].closing) == (2, 2, 0)
    receiver = {(r.location_id, r.product_id): r for r in stock_flows(m1.hospital, next_start, next_end)}
    assert receiver[(m1.warehouse.pk, m1.products[product.pk].pk)].transferred_in == 1
    assert ledger_against_stock(hospital) == [] and ledger_against_stock(m1.hospital) == []


def test_an_emergency_allocation_skips_approval_and_is_flagged_and_lots_keep_their_cost_layers(
    hospital, warehouse, lot_product, supplier, alliance, keeper_actor,
):
    m1, m2 = alliance[0], alliance[1]
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L9", expiry=EXPIRY, quantity=5)], "DN-A")
    with pytest.raises(Refused) as refused:
        create_transfer(user=keeper_actor.user, source_location=warehouse, to_hospital=m1.hospital,
                        destination=m1.warehouse, lots=[], units=[], kind="EMERGENCY", idempotency_key="e-0")
    assert {p.code for p in refused.value.problems} >= {"REASON_REQUIRED", "NOTHING_SCANNED"}
    transfer = create_transfer(user=keeper_actor.user, source_location=warehouse, to_hospital=m1.hospital,
                               destination=m1.warehouse, lots=[TransferLot(lot_product, "L9", 5)], kind="EMERGENCY",
                               reason="急诊抢救缺货", idempotency_key="e-1")
    assert transfer.status == AllianceTransfer.Status.APPROVED and transfer.is_emergency
    assert transfer.lines.get().value is None  # known once dispatched: the layers drawn
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key="e-d1")
    transfer.refresh_from_db()
    assert transfer.lines.get().value == Decimal("17.50")
    received = scan_and_receive(m1, transfer, "e-r1")
    m1_balance = LotBalance.objects.get(hospital=m1.hospital, lot="L9", location=m1.warehouse)
    assert m1_balance.quantity == 5 and m1_balance.unit_cost == Decimal("3.50")
    assert received.status == "RECEIVED"
    # An ordinary move to another member's location stays refused.
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=Actor(user=m1.keeper), hospital=m1.hospital, to_location=m2.warehouse,
                       lots=[LotQuantity(m1.products[lot_product.pk], "L9", 1, m1.warehouse)], idempotency_key="x")
    assert refused.value.code == "NOT_FOUND"


def test_only_members_of_the_same_alliance_exchange_and_see_transfers(
    hospital, warehouse, product, supplier, alliance, centre_operator, keeper_actor,
):
    m1, m2 = alliance[0], alliance[1]
    stranger = Member("X1", [product], alliance="别县医共体")
    units = stock_units(keeper_actor, supplier, warehouse, product, ["I1"])
    with pytest.raises(Refused) as refused:
        create_transfer(user=centre_operator, source_location=warehouse, to_hospital=stranger.hospital,
                        destination=stranger.warehouse, units=units, idempotency_key="i-0")
    assert refused.value.code == "ALLIANCE_NOT_MEMBER" and refused.value.status == 404
    transfer = create_transfer(user=centre_operator, source_location=warehouse, to_hospital=m1.hospital,
                               destination=m1.warehouse, units=units, idempotency_key="i-1")
    assert list(transfers_visible_to(m1.keeper)) == [transfer]
    assert list(transfers_visible_to(centre_operator)) == [transfer]
    assert not transfers_visible_to(m2.keeper).exists() and not transfers_visible_to(stranger.keeper).exists()
    assert can_act_for_alliance(centre_operator) and not can_act_for_alliance(m1.keeper)
    alliance_operator = factories.UserFactory(username="al-op", hospital=m2.hospital, roles=["alliance_operator"])
    alliance_auditor = factories.UserFactory(username="al-aud", hospital=m2.hospital, roles=["alliance_auditor"])
    assert can_act_for_alliance(alliance_operator) and not can_act_for_alliance(alliance_auditor)
    with pytest.raises(Refused):
        approve_transfer(user=m2.keeper, transfer=transfer)


def test_over_the_api_each_member_sees_its_own_side_and_nobody_else_sees_the_transfer(
    hospital, warehouse, product, supplier, alliance, centre_operator, keeper_actor,
):
    m1, m2 = alliance[0], alliance[1]
    stranger = Member("X1", [product], alliance="别县医共体")
    units = stock_units(keeper_actor, supplier, warehouse, product, ["A1"])
    centre = api_client_for(centre_operator)
    answer = centre.post("/api/v1/alliance-transfers/", {
        "to_hospital": m1.hospital.pk, "source_location": warehouse.pk, "units": [units[0].pk],
        "kind": "EMERGENCY", "reason": "急诊手术", "idempotency_key": "api-1"}, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["side"] == "issue" and body["is_emergency"] and body["status"] == "APPROVED"
    assert body["lines"][0]["product_code"] == product.internal_code and body["destination"] is None
    url = f"/api/v1/alliance-transfers/{body['id']}/"
    assert centre.post(url + "dispatch/", {"idempotency_key": "api-d1"}, format="json").status_code == 200

    receiver = api_client_for(m1.keeper)
    seen = receiver.get(url).json()
    assert seen["side"] == "receipt" and seen["source_location"] is None and seen["destination"] == m1.warehouse.pk
    assert seen["lines"][0]["product_code"] == m1.products[product.pk].internal_code
    assert receiver.get("/api/v1/alliance-transfers/?direction=in&kind=EMERGENCY").json()["count"] == 1
    for outsider in (m2.keeper, stranger.keeper):
        client = api_client_for(outsider)
        assert client.get(url).status_code == 404
        assert client.post(url + "receive/", {"idempotency_key": "x"}, format="json").status_code == 404
        assert client.get("/api/v1/alliance-transfers/").json()["count"] == 0
    foreign = api_client_for(stranger.keeper).post("/api/v1/alliance-transfers/", {
        "to_hospital": m1.hospital.pk, "source_location": stranger.warehouse.pk, "units": [],
        "idempotency_key": "api-x"}, format="json")
    assert foreign.status_code == 404 and foreign.json()["code"] == "NOT_FOUND"

    not_counted = receiver.post(url + "receive/", {"idempotency_key": "api-r0"}, format="json")
    assert not_counted.status_code == 400 and not_counted.json()["code"] == "ALLIANCE_RECEIPT_LINE_INVALID"
    assert Unit.objects.get(pk=units[0].pk).hospital == hospital  # bad input changes nothing
    scanned = receiver.post(url + "scan/", {"code": units[0].udi}, format="json")
    assert scanned.status_code == 200 and scanned.json()["scanned_quantity"] == 1
    again = receiver.post(url + "scan/", {"code": units[0].udi}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "ALLIANCE_SCAN_COMPLETE"
    done = receiver.post(url + "receive/", {"idempotency_key": "api-r1"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "RECEIVED"
    assert Unit.objects.get(pk=units[0].pk).hospital == m1.hospital
    panel = centre.get("/api/v1/alliance-transfers/panel/").json()
    assert panel == [{
        "from_hospital_id": hospital.pk, "from_hospital": hospital.name, "to_hospital_id": m1.hospital.pk,
        "to_hospital": m1.hospital.name, "transfers": 1, "emergency": 1, "in_transit": 0,
        "in_transit_value": "0.00", "received_value": "1200.00"}]
    assert receiver.get("/api/v1/alliance-transfers/panel/").status_code == 403


def test_the_receivers_trace_of_a_transferred_unit_shows_its_own_books_only(
    hospital, warehouse, product, supplier, alliance, centre_operator, keeper_actor,
):
    from inventory.selectors.units import unit_trace

    m1 = alliance[0]
    units = stock_units(keeper_actor, supplier, warehouse, product, ["TR1"])
    transfer = create_transfer(user=centre_operator, source_location=warehouse, to_hospital=m1.hospital,
                               destination=m1.warehouse, units=units, kind="EMERGENCY", reason="急",
                               idempotency_key="tr-1")
    dispatch_transfer(user=centre_operator, transfer=transfer, idempotency_key="tr-d")
    scan_and_receive(m1, transfer, "tr-r")
    kinds = [event.kind for event in unit_trace(Unit.objects.get(pk=units[0].pk))]
    assert "DELIVERY" in kinds  # where it came from stays traceable (recalls)
    assert [kind for kind in kinds if kind.startswith("MOVEMENT_")] == ["MOVEMENT_ALLIANCE_IN"]
