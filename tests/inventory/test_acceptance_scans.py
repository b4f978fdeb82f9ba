"""Acceptance verified by scanning (验收扫码核对): a unit enters stock only when someone held it, or
when an SPD operator decides, with a reason, to accept it without a scan."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AcceptanceRecord, DeliveryLine, DeliveryNote, LotBalance, Unit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note, record_scan
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db
PRICE = Decimal("1200.00")


@pytest.fixture
def note(keeper_actor, supplier, warehouse, product, lot_product):
    """Three units (S1 good, S2 good, S3 priced wrong) and one lot line typed from the paper note."""
    lines = [
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S1", lot="L1")),
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S2", lot="L1")),
        LineInput(Decimal("999.00"), udi=gs1_udi(product.udi_di, serial="S3", lot="L1")),
        LineInput(Decimal("3.50"), product=lot_product, lot="LT-1", expiry=TODAY + datetime.timedelta(days=400),
                  quantity=40),
    ]
    return receive_delivery_note(actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-S",
                                 receiving_location=warehouse, lines=lines, idempotency_key="rcv-s")


def scan(actor, note, serial, product):
    return record_scan(actor=actor, note=note, code=gs1_udi(product.udi_di, serial=serial, lot="L1"))


def decisions(note):
    return dict(AcceptanceRecord.objects.filter(line__note=note).values_list("line__line_no", "decision"))


def test_a_scan_records_who_verified_the_line_and_when_and_the_first_scan_is_kept(keeper_actor, operator, note,
                                                                                   product):
    line = scan(keeper_actor, note, "S1", product)
    assert (line.line_no, line.scanned_by, line.scanned_at is not None) == (1, keeper_actor.user, True)
    first = line.scanned_at
    again = scan(Actor(user=operator), note, "S1", product)
    assert (again.scanned_by, again.scanned_at) == (keeper_actor.user, first)
    assert list(DeliveryLine.objects.filter(note=note, scanned_at__isnull=False).values_list("line_no", flat=True)) == [1]


def test_a_code_on_no_line_or_unreadable_is_refused(keeper_actor, note, product):
    with pytest.raises(Refused) as stranger:
        scan(keeper_actor, note, "S9", product)
    assert (stranger.value.code, stranger.value.status) == ("SCANNED_UNIT_NOT_ON_NOTE", 404)
    assert "DN-S" in stranger.value.detail
    with pytest.raises(Refused) as unreadable:
        record_scan(actor=keeper_actor, note=note, code="]d2garbage")
    assert unreadable.value.code == "UDI_UNPARSEABLE"


def test_unscanned_units_stay_open_and_the_note_is_partly_accepted(keeper_actor, note, product, lot_product):
    scan(keeper_actor, note, "S1", product)
    partly = accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1")

    assert partly.status == DeliveryNote.Status.PARTLY_ACCEPTED
    # S1 scanned: accepted; S2 not scanned: open; S3 rejected on its price (a rejection needs no
    # scan: nothing enters stock); the lot line typed from paper is accepted.
    assert decisions(note) == {1: "ACCEPTED", 3: "REJECTED", 4: "ACCEPTED"}
    assert list(Unit.objects.values_list("serial", flat=True)) == ["S1"]
    assert LotBalance.objects.get(product=lot_product).quantity == 40

    scan(keeper_actor, note, "S2", product)
    done = accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-2")
    assert done.status == DeliveryNote.Status.ACCEPTED
    assert decisions(note) == {1: "ACCEPTED", 2: "ACCEPTED", 3: "REJECTED", 4: "ACCEPTED"}
    assert sorted(Unit.objects.values_list("serial", flat=True)) == ["S1", "S2"]
    assert LotBalance.objects.get(product=lot_product).quantity == 40  # decided lines are not decided twice
    assert not AcceptanceRecord.objects.filter(accepted_without_scan=True).exists()


def test_completing_when_only_unscanned_units_are_open_is_refused_not_silent(keeper_actor, supplier, warehouse,
                                                                            product):
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-U", receiving_location=warehouse,
        lines=[LineInput(PRICE, udi=gs1_udi(product.udi_di, serial=s)) for s in ("U1", "U2")], idempotency_key="r",
    )
    with pytest.raises(Refused) as refused:
        accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc")
    assert (refused.value.code, refused.value.status) == ("LINES_NOT_SCANNED", 409)
    assert "1, 2" in refused.value.detail
    note.refresh_from_db()
    assert note.status == DeliveryNote.Status.RECEIVED and not AcceptanceRecord.objects.exists()


def test_a_keeper_cannot_accept_unscanned_units_and_an_operator_needs_a_reason(keeper_actor, operator, note, product):
    with pytest.raises(Refused) as keeper_refused:
        accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="a1", accept_unscanned=True,
                             unscanned_reason="label torn")
    assert (keeper_refused.value.code, keeper_refused.value.status) == ("UNSCANNED_ACCEPT_NOT_AUTHORISED", 403)
    with pytest.raises(Refused) as no_reason:
        accept_delivery_note(actor=Actor(user=operator), note=note, idempotency_key="a2", accept_unscanned=True,
                             unscanned_reason="   ")
    assert no_reason.value.code == "UNSCANNED_REASON_MISSING"
    assert not AcceptanceRecord.objects.exists()


def test_an_operator_accepts_unscanned_units_with_the_reason_on_each_record(keeper_actor, operator, note, product):
    scan(keeper_actor, note, "S1", product)
    done = accept_delivery_note(actor=Actor(user=operator), note=note, idempotency_key="a3", accept_unscanned=True,
                                unscanned_reason="标签破损，按纸质送货单核对")
    assert done.status == DeliveryNote.Status.ACCEPTED
    records = {r.line.line_no: r for r in AcceptanceRecord.objects.filter(line__note=note).select_related("line")}
    assert (records[1].accepted_without_scan, records[1].without_scan_reason) == (False, "")
    assert (records[2].accepted_without_scan, records[2].without_scan_reason, records[2].decided_by) == (
        True, "标签破损，按纸质送货单核对", operator)
    assert records[3].decision == "REJECTED" and not records[3].accepted_without_scan
    assert not records[4].accepted_without_scan  # lot lines are not unit lines
    assert sorted(Unit.objects.values_list("serial", flat=True)) == ["S1", "S2"]


def test_lines_scanned_in_with_the_delivery_are_verified(keeper, supplier, warehouse, product):
    now = datetime.datetime.now(tz=datetime.UTC)
    note = receive_delivery_note(
        actor=Actor(user=keeper), hospital=warehouse.hospital, supplier=supplier, number="DN-IN",
        receiving_location=warehouse, idempotency_key="r-in",
        lines=[LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="I1"), scanned_by=keeper, scanned_at=now)],
    )
    assert note.lines.get().scanned_by == keeper
    assert accept_delivery_note(actor=Actor(user=keeper), note=note, idempotency_key="a").status == "ACCEPTED"


def test_a_decided_line_or_an_accepted_note_cannot_be_scanned(keeper_actor, note, product):
    scan(keeper_actor, note, "S1", product)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1")
    with pytest.raises(Refused) as decided:
        scan(keeper_actor, note, "S3", product)
    assert (decided.value.code, decided.value.status) == ("LINE_ALREADY_DECIDED", 409)
    scan(keeper_actor, note, "S2", product)
    note = accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-2")
    with pytest.raises(Refused) as accepted:
        scan(keeper_actor, note, "S2", product)
    assert accepted.value.code == "DELIVERY_ALREADY_ACCEPTED"


def test_the_same_key_replays_a_partial_acceptance(keeper_actor, note, product):
    first = accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1")
    again = accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1")
    assert again.pk == first.pk and AcceptanceRecord.objects.count() == 2
    with pytest.raises(Refused) as conflict:
        accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-1", accept_unscanned=True,
                             unscanned_reason="x")
    assert conflict.value.code == "IDEMPOTENCY_CONFLICT"
