"""Looking ahead at acceptance (`preview_note`, `preview_delivery`, `find_line`, `agreed_price`):
the same verdicts as `accept_delivery_note`, and nothing written."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AcceptanceRecord, DeliveryLine, DeliveryNote, Unit
from inventory.services.receiving import (
    LineInput,
    accept_delivery_note,
    agreed_price,
    find_line,
    preview_delivery,
    preview_note,
    receive_delivery_note,
)
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db
PRICE = Decimal("1200.00")


def lines_for(product, lot_product):
    return [
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="P1", lot="L1")),
        LineInput(Decimal("999.00"), udi=gs1_udi(product.udi_di, serial="P2", lot="L1")),
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="P1", lot="L1")),  # the same serial again
        LineInput(PRICE, udi=gs1_udi("06901234567892", serial="X")),  # not in the catalog
        LineInput(Decimal("3.50"), product=lot_product, lot="LOT-9", expiry=TODAY + datetime.timedelta(days=700),
                  quantity=30),
    ]


def codes(previews):
    return [[problem.code for problem in preview.problems] for preview in previews]


EXPECTED = [[], ["PRICE_MISMATCH"], ["DUPLICATE_SERIAL"], ["PRODUCT_UNKNOWN"], []]


def test_preview_of_a_delivery_not_yet_recorded_gives_the_verdicts_acceptance_will_give(
    keeper, supplier, warehouse, product, lot_product
):
    previews = preview_delivery(hospital=warehouse.hospital, supplier=supplier, lines=lines_for(product, lot_product))
    assert codes(previews) == EXPECTED
    assert [preview.accepted for preview in previews] == [True, False, False, False, True]
    assert previews[0].line.product == product and previews[0].line.serial == "P1"
    assert not DeliveryNote.objects.exists() and not DeliveryLine.objects.exists()

    note = receive_delivery_note(actor=Actor(user=keeper), hospital=warehouse.hospital, supplier=supplier,
                                 number="DN-P", receiving_location=warehouse, lines=lines_for(product, lot_product),
                                 idempotency_key="rcv-p")
    assert codes(preview_note(note)) == EXPECTED
    assert not AcceptanceRecord.objects.exists() and not Unit.objects.exists()

    scan_every_line(Actor(user=keeper), note)
    accept_delivery_note(actor=Actor(user=keeper), note=note, idempotency_key="acc-p")
    decided = [[r["code"] for r in record.reasons] for record in AcceptanceRecord.objects.order_by("line__line_no")]
    assert decided == EXPECTED


def test_a_gift_line_is_previewed_without_the_price_check(supplier, warehouse, product):
    line = LineInput(Decimal("0"), udi=gs1_udi(product.udi_di, serial="G1"))
    assert codes(preview_delivery(hospital=warehouse.hospital, supplier=supplier, lines=[line])) == [["PRICE_MISMATCH"]]
    previews = preview_delivery(hospital=warehouse.hospital, supplier=supplier, lines=[line], gift_line_nos=frozenset({1}))
    assert codes(previews) == [[]]


def test_a_cold_chain_delivery_is_previewed_with_its_arrival_temperature(hospital, supplier, warehouse):
    cold = factories.SupplyAgreementFactory(product__hospital=hospital, product__storage_min_c=Decimal("2"),
                                            product__storage_max_c=Decimal("8"), supplier=supplier).product
    line = LineInput(PRICE, udi=gs1_udi(cold.udi_di, serial="C1"))
    assert codes(preview_delivery(hospital=hospital, supplier=supplier, lines=[line])) == [["TEMPERATURE_MISSING"]]
    warm = preview_delivery(hospital=hospital, supplier=supplier, lines=[line], temperature_c=Decimal("12.5"))
    assert codes(warm) == [["TEMPERATURE_OUT_OF_RANGE"]]


def test_find_line_matches_a_scanned_unit_or_lot_to_its_line(keeper, supplier, warehouse, product, lot_product):
    expiry = TODAY + datetime.timedelta(days=700)
    note = receive_delivery_note(
        actor=Actor(user=keeper), hospital=warehouse.hospital, supplier=supplier, number="DN-F",
        receiving_location=warehouse, idempotency_key="rcv-f",
        lines=[LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="F1", lot="L1")),
               LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="F2", lot="L1")),
               LineInput(Decimal("3.50"), product=lot_product, lot="LOT-9", expiry=expiry, quantity=30)],
    )
    assert find_line(note, gs1_udi(product.udi_di, serial="F2", lot="L1")).line_no == 2
    assert find_line(note, gs1_udi(product.udi_di, serial="F2")).line_no == 2  # the lot is not needed
    assert find_line(note, gs1_udi(lot_product.udi_di, lot="LOT-9")).line_no == 3
    assert find_line(note, gs1_udi(product.udi_di, serial="F9")) is None
    assert find_line(note, gs1_udi(lot_product.udi_di, lot="OTHER")) is None
    with pytest.raises(Refused) as refused:
        find_line(note, "not a code")
    assert refused.value.code == "UDI_UNPARSEABLE"


def test_agreed_price_is_the_price_in_force_today(hospital, supplier, product, other_hospital):
    assert agreed_price(hospital=hospital, supplier=supplier, product=product) == PRICE
    assert agreed_price(hospital=hospital, supplier=factories.SupplierFactory(), product=product) is None
    product.agreements.update(valid_to=TODAY - datetime.timedelta(days=1))
    assert agreed_price(hospital=hospital, supplier=supplier, product=product) is None
