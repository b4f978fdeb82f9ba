"""Recalls: a lot split across two departments, a cabinet and three patients (real PostgreSQL)."""
import datetime
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Consumption, LotBalance, Recall, RecallItem, Unit
from inventory.services import recall as recalls
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.conftest import stock_units
from tests.factories import TODAY

pytestmark = [pytest.mark.postgres]


def nurse_of(department):
    nurse = factories.UserFactory(hospital=department.hospital, roles=["nurse"])
    nurse.departments.add(department)
    return nurse


@pytest.fixture
def ortho_store(hospital):
    department = factories.DepartmentFactory(hospital=hospital, code="ORTHO", name="骨科")
    return factories.LocationFactory(hospital=hospital, department=department, code="ORTHO-STORE",
                                     name="骨科二级库", kind="DEPARTMENT_STORE")


@pytest.fixture
def quarantine(hospital):
    return factories.LocationFactory(hospital=hospital, code="QUAR", name="隔离区", kind="QUARANTINE")


@pytest.fixture
def spread(hospital, keeper_actor, supplier, warehouse, product, cath_lab_store, cabinet, ortho_store):
    """Lot L-RC of 8 units: 1 in the warehouse, 2 in the cath lab store, 2 in its cabinet, 3 in
    orthopaedics; three used on three patients (one in the cath lab, two in orthopaedics)."""
    units = stock_units(keeper_actor, supplier, warehouse, product, [f"RC{n}" for n in range(8)], lot="L-RC")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units[1:3],
                   idempotency_key="t1")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cabinet, units=units[3:5], idempotency_key="t2")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=ortho_store, units=units[5:8],
                   idempotency_key="t3")
    uses = [(units[1], cath_lab_store, "ZY1", "D01"), (units[5], ortho_store, "ZY2", "D02"),
            (units[6], ortho_store, "ZY3", "D02")]
    for unit, store, encounter, doctor in uses:
        consume_unit(actor=Actor(user=nurse_of(store.department)), hospital=hospital, unit=unit,
                     idempotency_key=f"use-{unit.serial}",
                     context=ClinicalContext(encounter=encounter, department=store.department, doctor=doctor,
                                             surgery_id=f"S-{encounter}", surgery_name="PCI"))
    return units


def open_lot_recall(hospital, operator, product, lot="L-RC"):
    return recalls.open_recall(hospital=hospital, user=operator, scope=Recall.Scope.LOT, product=product, lot=lot,
                               reason="sterility breach", source=Recall.Source.MANUFACTURER,
                               notice_date=TODAY, notice_reference="MFR-2026-01")


@pytest.mark.django_db
def test_every_item_and_patient_is_listed_and_stock_locked_at_once(
    hospital, operator, product, spread, warehouse, cath_lab_store, cabinet, ortho_store
):
    other = stock_units(Actor(user=operator), spread[0].supplier, warehouse, product, ["OTHER1"], lot="L-OK")[0]
    recall = open_lot_recall(hospital, operator, product)

    stock = {item.unit.serial: item.location for item in recall.items.filter(kind=RecallItem.Kind.STOCK)}
    assert stock == {"RC0": warehouse, "RC2": cath_lab_store, "RC3": cabinet, "RC4": cabinet, "RC7": ortho_store}
    used = {(i.unit.serial, i.consumption.encounter, i.consumption.doctor, i.consumption.department.code,
             i.consumption.surgery_id) for i in recall.items.filter(kind=RecallItem.Kind.USED)}
    assert used == {("RC1", "ZY1", "D01", "CATH", "S-ZY1"), ("RC5", "ZY2", "D02", "ORTHO", "S-ZY2"),
                    ("RC6", "ZY3", "D02", "ORTHO", "S-ZY3")}
    assert recalls.progress(recall) == recalls.Progress(in_stock=5, located=0, returned=0, used=3, notified=0)

    nurse = nurse_of(ortho_store.department)
    with pytest.raises(Refused) as refused:
        consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=Unit.objects.get(serial="RC7"),
                     idempotency_key="late", context=ClinicalContext(encounter="ZY9", department=ortho_store.department))
    assert refused.value.code == "RECALL_LOCKED" and f"R{recall.pk}" in refused.value.detail
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=Actor(user=operator), hospital=hospital, to_location=cath_lab_store,
                       units=[Unit.objects.get(serial="RC0")], idempotency_key="issue")
    assert refused.value.code == "RECALL_LOCKED"
    # A unit of another lot still moves.
    transfer_stock(actor=Actor(user=operator), hospital=hospital, to_location=cath_lab_store, units=[other],
                   idempotency_key="other")
    assert Consumption.objects.count() == 3


@pytest.mark.django_db
def test_closing_is_refused_while_items_are_unhandled_then_worked_to_closure(
    hospital, operator, product, spread, quarantine
):
    recall = open_lot_recall(hospital, operator, product)
    with pytest.raises(Refused) as refused:
        recalls.close_recall(recall=recall, user=operator)
    assert refused.value.code == "RECALL_NOT_CLOSABLE" and refused.value.status == 409
    assert "5" in refused.value.detail

    for serial in ["RC0", "RC2", "RC3"]:
        recalls.handle_scan(recall=recall, user=operator, action="quarantine", to_location=quarantine,
                            code=Unit.objects.get(serial=serial).udi_raw, idempotency_key=serial)
    for serial in ["RC4", "RC7"]:
        recalls.handle_scan(recall=recall, user=operator, action="return",
                            code=Unit.objects.get(serial=serial).udi_raw, idempotency_key=serial)
    # A returned or quarantined unit may still leave quarantine for the supplier.
    recalls.handle_scan(recall=recall, user=operator, action="return",
                        code=Unit.objects.get(serial="RC0").udi_raw, idempotency_key="RC0-back")
    assert Unit.objects.get(serial="RC0").status == "RETURNED_TO_SUPPLIER"
    assert set(Unit.objects.filter(serial__in=["RC2", "RC3"]).values_list("location", flat=True)) == {quarantine.pk}
    for n, item in enumerate(recall.items.filter(kind=RecallItem.Kind.USED)):
        recalls.record_follow_up(recall=recall, item=item, user=operator,
                                 follow_up="NOTIFIED" if n else "NOT_NEEDED", note=f"called {n}")
    assert recalls.progress(recall) == recalls.Progress(in_stock=5, located=5, returned=3, used=3, notified=3)
    closed = recalls.close_recall(recall=recall, user=operator, note="done")
    assert closed.status == Recall.Status.CLOSED
    # Closed: the lock is lifted.
    from inventory.services.ledger import recall_lock_problem
    assert recall_lock_problem(Unit.objects.get(serial="RC2")) is None


@pytest.mark.django_db
def test_recalled_lot_quantities_are_listed_and_locked(
    hospital, operator, keeper_actor, supplier, warehouse, lot_product, cath_lab_store, quarantine
):
    note = receive_delivery_note(
        actor=keeper_actor, hospital=hospital, supplier=supplier, number="LRC", receiving_location=warehouse,
        lines=[LineInput(Decimal("3.50"), product=lot_product, lot="LB", expiry=TODAY + datetime.timedelta(days=900),
                         quantity=30)], idempotency_key="lrc")
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="lrca")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(lot_product, "LB", 10, warehouse)], idempotency_key="lt")
    consume_lot(actor=Actor(user=nurse_of(cath_lab_store.department)), hospital=hospital, product=lot_product,
                lot="LB", quantity=4, idempotency_key="ul",
                context=ClinicalContext(encounter="ZY7", department=cath_lab_store.department, doctor="D07"))
    recall = open_lot_recall(hospital, operator, lot_product, lot="LB")
    stock = sorted((i.location.code, i.quantity) for i in recall.items.filter(kind=RecallItem.Kind.STOCK))
    assert stock == [("CATH-STORE", 6), ("CW", 20)]
    used = [(i.consumption.encounter, i.quantity) for i in recall.items.filter(kind=RecallItem.Kind.USED)]
    assert used == [("ZY7", 4)]
    with pytest.raises(Refused) as refused:
        consume_lot(actor=Actor(user=nurse_of(cath_lab_store.department)), hospital=hospital, product=lot_product,
                    lot="LB", quantity=1, idempotency_key="ul2",
                    context=ClinicalContext(encounter="ZY8", department=cath_lab_store.department))
    assert refused.value.code == "RECALL_LOCKED"
    store_item = recall.items.get(kind=RecallItem.Kind.STOCK, location=cath_lab_store)
    recalls.handle_scan(recall=recall, user=operator, action="quarantine", item=store_item, to_location=quarantine,
                        idempotency_key="q")
    assert LotBalance.objects.get(product=lot_product, lot="LB", location=quarantine).quantity == 6
    warehouse_item = recall.items.get(kind=RecallItem.Kind.STOCK, location=warehouse)
    recalls.handle_scan(recall=recall, user=operator, action="return", item=warehouse_item, idempotency_key="r")
    assert LotBalance.objects.get(product=lot_product, lot="LB", location=warehouse).quantity == 0
    assert recalls.progress(recall).located == 2


@pytest.mark.django_db
def test_export_is_hashed_and_lists_every_patient(hospital, operator, product, spread):
    recall = open_lot_recall(hospital, operator, product)
    data = recalls.export_csv(recall)
    text = data.decode()
    assert all(encounter in text for encounter in ["ZY1", "ZY2", "ZY3"])
    assert recalls.sha256(data) == recalls.sha256(recalls.export_csv(recall))
    assert len(recalls.sha256(data)) == 64
    pdf = recalls.export_pdf(recall)
    assert pdf.startswith(b"%PDF")
    xlsx = recalls.export_xlsx(recall)
    assert xlsx[:2] == b"PK"


@pytest.mark.django_db(transaction=True)
def test_a_use_racing_the_opening_of_a_recall_is_refused(hospital, operator, product, spread, ortho_store):
    """The recall opens and holds its locks; a use of an affected unit started meanwhile waits and is refused."""
    nurse = nurse_of(ortho_store.department)
    opened, outcome = threading.Event(), {}

    def open_and_hold():
        try:
            with transaction.atomic():
                outcome["recall"] = open_lot_recall(hospital, operator, product)
                opened.set()
                time.sleep(1.0)
        finally:
            connection.close()

    def use():
        try:
            opened.wait(10)
            consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=Unit.objects.get(serial="RC7"),
                         idempotency_key="race", context=ClinicalContext(encounter="ZY9", department=ortho_store.department))
            outcome["use"] = "used"
        except Refused as refused:
            outcome["use"] = refused.code
        finally:
            connection.close()

    threads = [threading.Thread(target=open_and_hold), threading.Thread(target=use)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome["use"] == "RECALL_LOCKED"
    assert not Consumption.objects.filter(encounter="ZY9").exists()
    assert Unit.objects.get(serial="RC7").status == "IN_STOCK"


@pytest.mark.django_db
def test_implant_records_export(hospital, operator, product, spread):
    uses = recalls.implant_uses(hospital)
    rows = recalls.implant_rows(uses)
    assert [(row[0], row[7]) for row in rows] == [("ZY1", "RC1"), ("ZY2", "RC5"), ("ZY3", "RC6")]
    assert rows[0][8] == product.manufacturer.name
    assert recalls.implant_pdf(hospital, "ZY1", uses.filter(encounter="ZY1")).startswith(b"%PDF")


@pytest.mark.django_db
def test_stock_already_in_quarantine_is_listed_quarantined_and_the_export_names_each_use(
    hospital, operator, keeper_actor, product, spread, quarantine, ortho_store
):
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=quarantine,
                   units=[Unit.objects.get(serial="RC7")], idempotency_key="to-quarantine")
    recall = open_lot_recall(hospital, operator, product)

    stock = {item.unit.serial: (item.location.code, item.handling, item.handled_at is not None, item.follow_up)
             for item in recall.items.filter(kind=RecallItem.Kind.STOCK)}
    assert stock["RC7"] == ("QUAR", RecallItem.Handling.QUARANTINED, True, "")
    assert stock["RC0"] == ("CW", RecallItem.Handling.PENDING, False, "")
    assert recalls.progress(recall) == recalls.Progress(in_stock=5, located=1, returned=0, used=3, notified=0)
    used = recall.items.filter(kind=RecallItem.Kind.USED)
    assert {item.follow_up for item in used} == {RecallItem.FollowUp.PENDING}
    assert all(item.unit_id == item.consumption.unit_id and item.location_id == item.consumption.location_id
               for item in used)

    rows = {row[5]: row for row in recalls.export_rows(recall)}
    use = Consumption.objects.get(unit__serial="RC5")
    assert rows["RC5"][1:] == [
        "USED", product.name, product.udi_di, "L-RC", "RC5", 1, ortho_store.name, "", "ZY2", "S-ZY2 PCI", "D02",
        "骨科", use.occurred_at.isoformat(), "PENDING", "", "",
    ]
    assert rows["RC7"][7:9] == ["隔离区", "QUARANTINED"] and rows["RC7"][9:15] == [""] * 6


@pytest.mark.django_db
def test_opening_a_recall_costs_the_same_statements_whatever_it_lists(hospital, operator, product, spread):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        recall = open_lot_recall(hospital, operator, product)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert recall.items.count() == 8
    assert sum(statement.startswith("INSERT INTO \"inventory_recallitem\"") for statement in statements) == 3
    # The recall, its three INSERT … SELECTs, and which members received the item by transfer
    # (the hospital is in an alliance: a recall follows transferred stock, docs/recall.md).
    assert len(statements) == 5, statements


@pytest.mark.django_db
def test_a_recall_of_serials_lists_and_locks_only_those_units_and_their_uses(
    hospital, operator, product, spread, cath_lab_store
):
    recall = recalls.open_recall(hospital=hospital, user=operator, scope=Recall.Scope.SERIALS, product=product,
                                 serials=["RC0", "RC5", "NOPE"], reason="labelling", source=Recall.Source.NMPA,
                                 notice_date=TODAY)
    listed = sorted((item.kind, item.unit.serial) for item in recall.items.select_related("unit"))
    assert listed == [("STOCK", "RC0"), ("USED", "RC5")]
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=Actor(user=operator), hospital=hospital, to_location=cath_lab_store,
                       units=[Unit.objects.get(serial="RC0")], idempotency_key="moved")
    assert refused.value.code == "RECALL_LOCKED"
    whole = recalls.open_recall(hospital=hospital, user=operator, scope=Recall.Scope.PRODUCT, product=product,
                                reason="all", source=Recall.Source.MANUFACTURER, notice_date=TODAY)
    assert whole.items.count() == 8
