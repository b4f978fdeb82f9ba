"""A recall follows stock transferred to another member of the alliance (real PostgreSQL): a lot split
between the lead hospital and a member, recalled in the lead — the member's stock is locked, its use
refused, its staff work their part with their patients, and neither side sees the other's patients."""
import datetime
from decimal import Decimal

import pytest
from django.test import Client

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Alert, LotBalance, Recall, RecallItem, Unit
from inventory.selectors.recall import followed_in_members
from inventory.services import alerts
from inventory.services import recall as recalls
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.receiving import LineInput
from inventory.services.stock import LotQuantity, transfer_stock
from inventory.services.transfers import TransferLot, create_transfer, dispatch_transfer
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY
from tests.inventory.test_alliance_transfers import Member, scan_and_receive
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXPIRY = TODAY + datetime.timedelta(days=700)
SECRET = "ZY-M1-7781"


def nurse_of(department):
    nurse = factories.UserFactory(hospital=department.hospital, roles=["nurse"])
    nurse.departments.add(department)
    return nurse


def use_unit(hospital, store, unit, encounter):
    return consume_unit(actor=Actor(user=nurse_of(store.department)), hospital=hospital, unit=unit,
                        idempotency_key=f"use-{unit.serial}",
                        context=ClinicalContext(encounter=encounter, department=store.department, doctor="D1"))


def send(keeper_actor, warehouse, member, key, **what):
    transfer = create_transfer(user=keeper_actor.user, source_location=warehouse, to_hospital=member.hospital,
                               destination=member.warehouse, kind="EMERGENCY", reason="应急调拨",
                               idempotency_key=key, **what)
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key=f"{key}-d")
    transfer.refresh_from_db()
    return transfer


def open_lot_recall(hospital, keeper, product, lot):
    return recalls.open_recall(hospital=hospital, user=keeper, scope=Recall.Scope.LOT, product=product, lot=lot,
                               reason="厂家通知：涂层缺陷", source=Recall.Source.MANUFACTURER,
                               notice_reference="MFR-2026-9", notice_date=TODAY)


@pytest.fixture
def member(product, lot_product):
    return Member("M1", [product, lot_product])


@pytest.fixture
def split_lot(hospital, keeper_actor, supplier, warehouse, product, cath_lab_store, member):
    return build_split_lot(hospital, keeper_actor, supplier, warehouse, product, cath_lab_store, member)


def build_split_lot(hospital, keeper_actor, supplier, warehouse, product, cath_lab_store, member):
    """Lot L-RC of four stents: RC0 used in the lead's cath lab, RC1 in its warehouse; RC2 and RC3
    transferred to member M1, RC2 used there on a patient, RC3 in its ward store."""
    units = stock_units(keeper_actor, supplier, warehouse, product, ["RC0", "RC1", "RC2", "RC3"], lot="L-RC")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units[:1],
                   idempotency_key="to-cath")
    use_unit(hospital, cath_lab_store, Unit.objects.get(serial="RC0"), "ZY-LEAD-1")
    transfer = send(keeper_actor, warehouse, member, "t-1", units=units[2:])
    scan_and_receive(member, transfer, "r-1")
    m1_units = list(Unit.objects.filter(serial__in=["RC2", "RC3"]).order_by("serial"))
    transfer_stock(actor=Actor(user=member.keeper), hospital=member.hospital, to_location=member.store,
                   units=m1_units, idempotency_key="m1-to-ward")
    use_unit(member.hospital, member.store, Unit.objects.get(serial="RC2"), SECRET)
    return units


def test_a_recall_in_the_lead_follows_the_lot_into_the_member_that_received_part_of_it(
    hospital, keeper, product, member, split_lot,
):
    recall = open_lot_recall(hospital, keeper, product, "L-RC")

    # The lead's recall lists its own part: RC1 in stock, RC0 used on its patient.
    own = {(item.kind, item.unit.serial) for item in recall.items.select_related("unit")}
    assert own == {(RecallItem.Kind.STOCK, "RC1"), (RecallItem.Kind.USED, "RC0")}

    # The member's part is a recall of its own catalog entry, in its own books, following the lead's.
    part = Recall.objects.get(hospital=member.hospital)
    assert (part.origin_id, part.product_id, part.scope, part.lot, part.status) == (
        recall.pk, member.products[product.pk].pk, Recall.Scope.LOT, "L-RC", Recall.Status.OPEN)
    items = {(item.kind, item.unit.serial, item.consumption.encounter if item.consumption_id else None)
             for item in part.items.select_related("unit", "consumption")}
    assert items == {(RecallItem.Kind.STOCK, "RC3", None), (RecallItem.Kind.USED, "RC2", SECRET)}

    # The member's stock is locked: its use is refused, naming the member's recall.
    with pytest.raises(Refused) as refused:
        use_unit(member.hospital, member.store, Unit.objects.get(serial="RC3"), "ZY-M1-9")
    assert refused.value.code == "RECALL_LOCKED" and f"R{part.pk}" in refused.value.problems[0].detail

    # The opener sees the member's part as counts and places, no patient.
    assert followed_in_members(recall) == [{
        "recall": part.pk, "hospital": member.hospital.name, "status": "OPEN", "stock_items": 1, "stock_quantity": 1,
        "handled": 0, "uses": 1, "followed_up": 0, "locations": [{"location": member.store.name, "quantity": 1}],
    }]


def test_each_side_sees_its_own_patients_and_the_alliance_auditor_sees_both(
    hospital, keeper, product, member, split_lot,
):
    recall = open_lot_recall(hospital, keeper, product, "L-RC")
    part = Recall.objects.get(hospital=member.hospital)

    lead = api_client_for(keeper)
    detail = lead.get(f"/api/v1/recalls/{recall.pk}/")
    assert detail.status_code == 200
    assert detail.json()["followed_in"][0]["hospital"] == member.hospital.name
    assert detail.json()["followed_in"][0]["uses"] == 1
    assert SECRET not in detail.content.decode() and "ZY-LEAD-1" in detail.content.decode()
    assert lead.get(f"/api/v1/recalls/{part.pk}/").status_code == 404
    assert {row["id"] for row in lead.get("/api/v1/recalls/").json()["results"]} == {recall.pk}

    theirs = api_client_for(member.keeper)
    own = theirs.get(f"/api/v1/recalls/{part.pk}/")
    assert own.status_code == 200 and SECRET in own.content.decode() and "ZY-LEAD-1" not in own.content.decode()
    assert own.json()["followed_from"] == {"recall": recall.pk, "hospital": hospital.name}
    assert theirs.get(f"/api/v1/recalls/{recall.pk}/").status_code == 404
    assert {row["id"] for row in theirs.get("/api/v1/recalls/").json()["results"]} == {part.pk}

    # The pages say the same: the lead's lists the member's part without patients; the member's
    # says which recall it follows.
    page = Client()
    page.force_login(keeper)
    html = page.get(f"/recalls/{recall.pk}/").content.decode()
    assert f'data-member-recall="{part.pk}"' in html and SECRET not in html
    page.force_login(member.keeper)
    html = page.get(f"/recalls/{part.pk}/").content.decode()
    assert f'data-followed-from="{recall.pk}"' in html and SECRET in html
    assert page.get(f"/recalls/{recall.pk}/").status_code == 404

    auditor = api_client_for(factories.UserFactory(hospital=hospital, roles=["alliance_auditor"]))
    assert SECRET in auditor.get(f"/api/v1/recalls/{part.pk}/").content.decode()
    assert auditor.get(f"/api/v1/recalls/{recall.pk}/").status_code == 200


def test_the_member_is_alerted_and_sees_the_recall_was_opened_for_the_alliance_by_the_leads_staff(
    hospital, keeper, product, member, split_lot,
):
    keeper.first_name, keeper.last_name = "", "王库管"
    keeper.save(update_fields=["first_name", "last_name"])
    own_before = Alert.objects.filter(hospital=hospital).count()
    recall = open_lot_recall(hospital, keeper, product, "L-RC")
    part = Recall.objects.get(hospital=member.hospital)

    # Recorded: opened by the lead's keeper, for the alliance (not by one of the member's staff).
    assert (part.opened_by_id, part.opened_for_alliance, recall.opened_for_alliance) == (
        keeper.pk, member.hospital.alliance, "")

    # The member's SPD staff get one critical alert naming the recall, its origin and what to do.
    alert = Alert.objects.get(hospital=member.hospital, kind=Alert.Kind.RECALL_FOLLOWED)
    assert (alert.severity, alert.status, alert.subject_key, alert.product_id) == (
        "CRITICAL", "OPEN", f"recall:{part.pk}", member.products[product.pk].pk)
    assert alert.details == {"recall": part.pk, "origin": recall.pk, "origin_hospital": hospital.name,
                             "opened_by": "王库管", "stock": 1, "uses": 1}
    assert Alert.objects.filter(hospital=hospital).count() == own_before  # the lead opened its own: no alert
    operator = factories.UserFactory(hospital=member.hospital, roles=["spd_operator"])
    page = Client()
    page.force_login(operator)
    html = page.get("/alerts/").content.decode()
    assert f"R{part.pk}" in html and "王库管" in html and hospital.name in html

    # The member's page and API say who opened it and for whom, honestly.
    html = page.get(f"/recalls/{part.pk}/").content.decode()
    assert f'data-opened-by="{keeper.pk}"' in html
    assert f"王库管（{hospital.name}）代表医共体 {member.hospital.alliance} 开启" in html, html
    body = api_client_for(operator).get(f"/api/v1/recalls/{part.pk}/").json()
    assert body["opened_by"] == {"name": "王库管", "hospital": hospital.name}
    assert body["opened_for_alliance"] == member.hospital.alliance
    lead_body = api_client_for(keeper).get(f"/api/v1/recalls/{recall.pk}/").json()
    assert (lead_body["opened_by"]["hospital"], lead_body["opened_for_alliance"]) == (hospital.name, "")

    # Closed by the member: the alert resolves itself.
    quarantine = factories.LocationFactory(hospital=member.hospital, code="QUAR", name="M1隔离区", kind="QUARANTINE")
    recalls.handle_scan(recall=part, user=member.keeper, action="quarantine", code=Unit.objects.get(serial="RC3").udi,
                        to_location=quarantine, idempotency_key="q-a")
    recalls.close_recall(recall=part, user=member.keeper)
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"


def test_the_members_staff_work_and_close_their_part(hospital, keeper, product, member, split_lot):
    recall = open_lot_recall(hospital, keeper, product, "L-RC")
    part = Recall.objects.get(hospital=member.hospital)
    quarantine = factories.LocationFactory(hospital=member.hospital, code="QUAR", name="M1隔离区", kind="QUARANTINE")
    rc3 = Unit.objects.get(serial="RC3")
    recalls.handle_scan(recall=part, user=member.keeper, action="quarantine", code=rc3.udi, to_location=quarantine,
                        idempotency_key="q-1")
    used = part.items.get(kind=RecallItem.Kind.USED)
    recalls.record_follow_up(recall=part, item=used, user=member.keeper, follow_up="NOTIFIED", note="已电话通知")
    recalls.close_recall(recall=part, user=member.keeper)
    assert followed_in_members(recall)[0] | {"locations": None} == {
        "recall": part.pk, "hospital": member.hospital.name, "status": "CLOSED", "stock_items": 1,
        "stock_quantity": 1, "handled": 1, "uses": 1, "followed_up": 1, "locations": None}
    recall.refresh_from_db()
    assert recall.status == Recall.Status.OPEN  # the lead's own part is still to work


def test_a_lot_in_transit_when_the_recall_opens_is_followed_at_its_receipt(
    hospital, keeper, keeper_actor, supplier, warehouse, lot_product, member,
):
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L-X", expiry=EXPIRY, quantity=10)], "DN-X")
    transfer = send(keeper_actor, warehouse, member, "t-x", lots=[TransferLot(lot_product, "L-X", 6)])
    recall = open_lot_recall(hospital, keeper, lot_product, "L-X")
    assert not Recall.objects.filter(hospital=member.hospital).exists()  # still the lead's stock, on the road
    assert sorted(recall.items.values_list("location_id", "quantity")) == sorted(
        [(warehouse.pk, 4), (transfer.in_transit_location_id, 6)])

    scan_and_receive(member, transfer, "r-x")
    part = Recall.objects.get(hospital=member.hospital)
    assert (part.origin_id, part.opened_by_id, part.opened_for_alliance) == (recall.pk, keeper.pk, member.hospital.alliance)
    assert Alert.objects.get(hospital=member.hospital, kind=Alert.Kind.RECALL_FOLLOWED).details["recall"] == part.pk
    assert list(part.items.values_list("kind", "lot", "quantity", "location_id")) == [
        (RecallItem.Kind.STOCK, "L-X", 6, member.warehouse.pk)]
    m1_lot = member.products[lot_product.pk]
    with pytest.raises(Refused) as refused:  # issuing it to the ward (then using it) is refused
        transfer_stock(actor=Actor(user=member.keeper), hospital=member.hospital, to_location=member.store,
                       lots=[LotQuantity(m1_lot, "L-X", 1, member.warehouse)], idempotency_key="m1-x")
    assert refused.value.code == "RECALL_LOCKED" and f"R{part.pk}" in refused.value.problems[0].detail
    assert LotBalance.objects.get(product=m1_lot, location=member.warehouse).quantity == 6


def test_more_stock_received_under_the_members_open_recall_bumps_its_alert(
    hospital, keeper, keeper_actor, supplier, warehouse, lot_product, member,
):
    """Two transfers of the recalled lot on the road: the first receipt opens the member's part and
    alerts its staff; the second adds its stock to that part and says so on the same alert (bumped,
    not a second one), also once the staff acknowledged it."""
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L-X", expiry=EXPIRY, quantity=10)], "DN-X")
    first = send(keeper_actor, warehouse, member, "t-x", lots=[TransferLot(lot_product, "L-X", 6)])
    second = send(keeper_actor, warehouse, member, "t-x2", lots=[TransferLot(lot_product, "L-X", 3)])
    open_lot_recall(hospital, keeper, lot_product, "L-X")
    scan_and_receive(member, first, "r-x")
    part = Recall.objects.get(hospital=member.hospital)
    alert = Alert.objects.get(hospital=member.hospital, kind=Alert.Kind.RECALL_FOLLOWED)
    alerts.acknowledge(alert=alert, user=member.keeper)

    scan_and_receive(member, second, "r-x2")

    assert Recall.objects.filter(hospital=member.hospital).count() == 1
    assert list(part.items.values_list("kind", "lot", "quantity", "location_id")) == [
        (RecallItem.Kind.STOCK, "L-X", 9, member.warehouse.pk)]
    bumped = Alert.objects.get(hospital=member.hospital, kind=Alert.Kind.RECALL_FOLLOWED)
    assert (bumped.pk, bumped.occurrences, bumped.status, bumped.severity) == (alert.pk, 2, "ACKNOWLEDGED", "CRITICAL")
    second.refresh_from_db()
    assert bumped.details == {"recall": part.pk, "origin": part.origin_id, "origin_hospital": hospital.name,
                              "transfer": second.receipt_number, "received": 3, "stock": 1, "uses": 0}
    operator = factories.UserFactory(hospital=member.hospital, roles=["spd_operator"])
    page = Client()
    page.force_login(operator)
    html = page.get("/alerts/").content.decode()
    assert f"召回 R{part.pk}：经医共体调拨 {second.receipt_number}（来自 {hospital.name}）又收到 3" in html, html


def test_isolation_a_recall_in_a_member_that_sent_nothing_to_the_lead_stays_there(
    hospital, keeper, product, member, split_lot,
):
    """The member's own recall of the item does not reach the lead (nothing went that way)."""
    recall = recalls.open_recall(hospital=member.hospital, user=member.keeper, scope=Recall.Scope.LOT,
                                 product=member.products[product.pk], lot="L-RC", reason="院内质量问题",
                                 source=Recall.Source.HOSPITAL, notice_date=TODAY)
    assert Recall.objects.filter(hospital=hospital).count() == 0 and followed_in_members(recall) == []
