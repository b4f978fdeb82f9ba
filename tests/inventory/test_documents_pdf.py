"""The printed documents of stock orders (inventory/services/documents_pdf.py): what they say and
that a long order keeps its header on every page."""
import pytest

from inventory.actors import Actor
from inventory.models import StockOrder
from inventory.services.documents_pdf import order_document, order_document_pdf
from inventory.services.stock import put_away, scrap, transfer_stock
from tests.conftest import stock_units
from tests.pdf_text import shown_strings

pytestmark = pytest.mark.django_db


def test_a_transfer_document_names_the_hospital_destination_who_and_each_line(
        hospital, warehouse, cath_lab_store, supplier, product, keeper):
    keeper.first_name, keeper.last_name = "建国", "李"
    keeper.save()
    units = stock_units(Actor(user=keeper), supplier, warehouse, product, ["D-1", "D-2"], lot="L1")
    order = transfer_stock(actor=Actor(user=keeper), hospital=hospital, to_location=cath_lab_store, units=units,
                           note="周一补货", idempotency_key="doc-transfer")
    document = order_document(order)
    assert document.hospital == "县人民医院" and document.by == "李建国"
    assert ("调入库位", "导管室二级库") in document.facts and ("备注", "周一补货") in document.facts
    assert [line[4] for line in document.lines] == ["SN D-1", "SN D-2"]
    assert document.quantity == 2 and document.value == 2 * units[0].unit_cost

    strings = shown_strings(order_document_pdf(order))
    assert "移库单（出库/配送单）" in strings and "导管室二级库" in strings and "李建国" in strings
    assert any(text.startswith("发出人") for text in strings) and any(text.startswith("接收人") for text in strings)


def test_a_long_scrap_repeats_its_header_on_every_page_and_totals_once(
        hospital, warehouse, supplier, product, keeper):
    serials = [f"LONG-{number:03d}" for number in range(70)]
    units = stock_units(Actor(user=keeper), supplier, warehouse, product, serials)
    order = scrap(actor=Actor(user=keeper), hospital=hospital, reason_code="EXPIRED", units=units,
                  idempotency_key="doc-long-scrap")
    strings = shown_strings(order_document_pdf(order, reason="已过期"))
    assert strings.count("产品名称") >= 2  # the lines' header on each page
    assert "第 2 页" in strings and strings.count("合计") == 1
    assert all(f"SN {serial}" in strings for serial in serials)
    assert "已过期" in strings


def test_a_put_away_has_no_printed_document(hospital, warehouse, cath_lab_store, supplier, product, keeper):
    unit = stock_units(Actor(user=keeper), supplier, warehouse, product, ["P-1"])[0]
    order = put_away(actor=Actor(user=keeper), hospital=hospital, units=[unit], to_location=cath_lab_store,
                     idempotency_key="doc-putaway")
    assert order.kind == StockOrder.Kind.PUTAWAY
    with pytest.raises(ValueError):
        order_document(order)
