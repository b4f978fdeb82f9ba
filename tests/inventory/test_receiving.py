import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AcceptanceRecord, DeliveryNote, LotBalance, Movement, Unit, UnitStatus
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db
PRICE = Decimal("1200.00")


def receive(actor, supplier, warehouse, lines, *, number="DN-1", key="rcv-1", **kwargs):
    return receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=lines, idempotency_key=key, **kwargs,
    )


def receive_and_accept(actor, supplier, warehouse, lines, *, gifts=frozenset(), **kwargs):
    note = receive(actor, supplier, warehouse, lines, **kwargs)
    scan_every_line(actor, note)
    return accept_delivery_note(actor=actor, note=note, idempotency_key="acc-" + note.number, gift_line_nos=gifts)


def decision(note, line_no=1):
    return AcceptanceRecord.objects.get(line__note=note, line__line_no=line_no)


def test_accepted_unit_enters_stock_at_the_warehouse_with_receipt_and_putaway(keeper_actor, supplier, warehouse, product):
    note = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S1"))])

    record = decision(note)
    assert record.decision == "ACCEPTED"
    unit = Unit.objects.get(serial="S1")
    assert (unit.status, unit.location, unit.unit_cost, unit.product) == (UnitStatus.IN_STOCK, warehouse, PRICE, product)
    kinds = list(unit.movements.values_list("kind", "from_status", "to_status"))
    assert kinds == [("RECEIPT", "RECEIVED", "ACCEPTED"), ("PUTAWAY", "ACCEPTED", "IN_STOCK")]
    assert note.status == DeliveryNote.Status.ACCEPTED


def test_lot_line_adds_quantity_to_the_lot_balance(keeper_actor, supplier, warehouse, lot_product):
    expiry = TODAY + datetime.timedelta(days=700)
    line = LineInput(Decimal("3.50"), product=lot_product, lot="L2401", expiry=expiry, quantity=200)
    receive_and_accept(keeper_actor, supplier, warehouse, [line])

    balance = LotBalance.objects.get(product=lot_product, lot="L2401", location=warehouse)
    assert balance.quantity == 200
    assert Movement.objects.get(product=lot_product).quantity == 200


@pytest.mark.parametrize(
    ("setup", "udi_kwargs", "price", "code"),
    [
        ("none", {"serial": "S1"}, "999.00", "PRICE_MISMATCH"),
        ("none", {"serial": "S1", "expiry": TODAY - datetime.timedelta(days=1)}, "1200.00", "UNIT_EXPIRED"),
        ("none", {"serial": "S1", "expiry": TODAY + datetime.timedelta(days=30)}, "1200.00", "SHELF_LIFE_TOO_SHORT"),
        ("none", {}, "1200.00", "SERIAL_MISSING"),
        ("no_agreement", {"serial": "S1"}, "1200.00", "NO_ACTIVE_AGREEMENT"),
        ("expired_registration", {"serial": "S1"}, "1200.00", "PRODUCT_CERTIFICATE_EXPIRED"),
        ("no_registration", {"serial": "S1"}, "1200.00", "PRODUCT_CERTIFICATE_MISSING"),
        ("expired_licence", {"serial": "S1"}, "1200.00", "SUPPLIER_CERTIFICATE_EXPIRED"),
        ("cold_chain_warm", {"serial": "S1"}, "1200.00", "TEMPERATURE_OUT_OF_RANGE"),
        ("cold_chain_unmeasured", {"serial": "S1"}, "1200.00", "TEMPERATURE_MISSING"),
    ],
)
def test_rejected_line_keeps_its_reason_and_never_enters_stock(
    keeper_actor, supplier, warehouse, product, agreement, setup, udi_kwargs, price, code
):
    temperature = None
    if setup == "no_agreement":
        agreement.is_active = False
        agreement.save()
    elif setup == "expired_registration":
        product.registration_certificate.valid_to = TODAY - datetime.timedelta(days=1)
        product.registration_certificate.save()
    elif setup == "no_registration":
        product.registration_certificate = None
        product.save()
    elif setup == "expired_licence":
        supplier.certificates.filter(kind="DISTRIBUTION_LICENCE").update(
            valid_from=TODAY - datetime.timedelta(days=800), valid_to=TODAY - datetime.timedelta(days=2)
        )
    elif setup.startswith("cold_chain"):
        product.storage_min_c, product.storage_max_c = Decimal("2"), Decimal("8")
        product.save()
        temperature = Decimal("12.5") if setup == "cold_chain_warm" else None
    udi = gs1_udi(product.udi_di, **udi_kwargs)
    note = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(Decimal(price), udi=udi)], temperature_c=temperature)

    record = decision(note)
    assert (record.decision, record.reason_code) == ("REJECTED", code)
    assert record.reasons[0]["detail"]
    assert not Unit.objects.exists()
    assert not Movement.objects.exists()


def test_unreadable_and_unknown_udis_are_rejected_with_reason(keeper_actor, supplier, warehouse, product):
    lines = [
        LineInput(PRICE, udi="not a barcode"),
        LineInput(PRICE, udi=gs1_udi(factories.gtin(999999), serial="X")),
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="OK1")),
    ]
    note = receive_and_accept(keeper_actor, supplier, warehouse, lines)

    assert [decision(note, n).reason_code for n in (1, 2, 3)] == ["UDI_UNPARSEABLE", "PRODUCT_UNKNOWN", ""]
    assert list(Unit.objects.values_list("serial", flat=True)) == ["OK1"]


def test_duplicate_serial_is_rejected_within_a_note_and_across_notes(keeper_actor, supplier, warehouse, product):
    udi = gs1_udi(product.udi_di, serial="DUP")
    first = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(PRICE, udi=udi), LineInput(PRICE, udi=udi)])
    second = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(PRICE, udi=udi)], number="DN-2", key="rcv-2")

    assert [decision(first, 1).reason_code, decision(first, 2).reason_code] == ["", "DUPLICATE_SERIAL"]
    assert decision(second).reason_code == "DUPLICATE_SERIAL"
    assert Unit.objects.count() == 1


def test_gift_line_needs_an_authorised_user_and_costs_nothing(keeper, operator, supplier, warehouse, product):
    lines = [LineInput(Decimal("0.00"), udi=gs1_udi(product.udi_di, serial="G1"))]
    note = receive(Actor(user=keeper), supplier, warehouse, lines)
    scan_every_line(Actor(user=keeper), note)

    with pytest.raises(Refused) as refused:
        accept_delivery_note(actor=Actor(user=keeper), note=note, idempotency_key="a1", gift_line_nos=frozenset({1}))
    assert refused.value.code == "GIFT_NOT_AUTHORISED"
    assert not Unit.objects.exists()

    accept_delivery_note(actor=Actor(user=operator), note=note, idempotency_key="a2", gift_line_nos=frozenset({1}))
    unit = Unit.objects.get()
    assert (unit.is_gift, unit.unit_cost) == (True, Decimal("0"))


def test_zero_price_line_not_marked_as_gift_is_a_price_mismatch(keeper_actor, supplier, warehouse, product):
    note = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(Decimal("0"), udi=gs1_udi(product.udi_di, serial="Z"))])
    assert decision(note).reason_code == "PRICE_MISMATCH"


def test_same_key_replays_the_delivery_and_different_content_conflicts(keeper_actor, supplier, warehouse, product):
    lines = [LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S1"))]
    first = receive(keeper_actor, supplier, warehouse, lines)
    again = receive(keeper_actor, supplier, warehouse, lines)
    assert again.pk == first.pk
    assert DeliveryNote.objects.count() == 1

    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, lines, number="DN-OTHER")
    assert (refused.value.code, refused.value.status) == ("IDEMPOTENCY_CONFLICT", 409)


def test_accepting_twice_with_the_same_key_writes_nothing_more(keeper_actor, supplier, warehouse, product):
    note = receive(keeper_actor, supplier, warehouse, [LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S1"))])
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc")
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc")
    assert Movement.objects.count() == 2

    with pytest.raises(Refused) as refused:
        accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-other")
    assert refused.value.code == "DELIVERY_ALREADY_ACCEPTED"


def test_duplicate_delivery_note_number_is_refused(keeper_actor, supplier, warehouse, product):
    lines = [LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="S1"))]
    receive(keeper_actor, supplier, warehouse, lines)
    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, lines, key="another-key")
    assert refused.value.code == "DUPLICATE_DELIVERY_NOTE"


def test_bad_request_lists_every_problem_and_records_nothing(keeper_actor, supplier, warehouse, product, other_hospital):
    foreign = factories.ProductFactory(hospital=other_hospital)
    lines = [LineInput(PRICE), LineInput(PRICE, product=foreign, lot="L", quantity=1), LineInput(Decimal("-1"), udi="x")]
    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, lines)
    assert len(refused.value.problems) == 3
    assert not DeliveryNote.objects.exists()


def test_shelf_life_minimum_can_be_set_per_product(keeper_actor, supplier, warehouse, product):
    product.min_shelf_life_days = 10
    product.save()
    udi = gs1_udi(product.udi_di, serial="S1", expiry=TODAY + datetime.timedelta(days=30))
    note = receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(PRICE, udi=udi)])
    assert decision(note).decision == "ACCEPTED"


def test_unit_tracked_line_with_a_quantity_above_one_is_rejected(keeper_actor, supplier, warehouse, product):
    line = LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="Q5"), quantity=5)
    note = receive_and_accept(keeper_actor, supplier, warehouse, [line])
    assert decision(note).reason_code == "UNIT_QUANTITY_NOT_ONE"
    assert not Unit.objects.exists()
