"""Irreversible operations on the people's pages are reviewed before they happen (scrap, return,
transfer, refund, a reconciliation re-run), lot-tracked goods move on the web as units do, the
orders print as documents to sign, and a refusal reads as what the person should do — through
Django's test client."""
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory.actors import Actor
from inventory.models import Consumption, LotBalance, Movement, StockOrder, Unit
from inventory.services.stock import LotQuantity, transfer_stock
from tests.factories import gs1_udi
from tests.pdf_text import shown_strings
from tests.web.test_operations_pages import JSON, client_for, form_key, text, use_scan

pytestmark = pytest.mark.django_db


def lot_balance(world) -> LotBalance:
    return LotBalance.objects.get(product=world.lot_product, lot="L-2026", location=world.warehouse)


def nothing_changed(world, orders_before: int, movements_before: int) -> None:
    assert StockOrder.objects.count() == orders_before and Movement.objects.count() == movements_before
    assert {unit.location_id for unit in Unit.objects.filter(serial__in=["SN-A1", "SN-A2"])} == {world.warehouse.pk}
    assert lot_balance(world).quantity == 20


# --- the review step --------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "header", "where_to"), [
    ("web:moves", "to_location", "导管室二级库"),
    ("web:moves-return", "supplier", "退回供应商"),
    ("web:moves-scrap", None, "报损（从库存中核销）"),
])
def test_every_move_is_reviewed_and_nothing_moves_until_it_is_confirmed(world, cath_lab_store, url, header, where_to):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse(url)))
    a1, a2 = world.units["SN-A1"], world.units["SN-A2"]
    data = {"idempotency_key": key, "units": [a1.pk, a2.pk], "lot_balance_line": [lot_balance(world).pk],
            "lot_quantity": ["4"], "reason_code": "RECALL" if header == "supplier" else "DAMAGED"}
    if header == "to_location":
        data["to_location"] = cath_lab_store.pk
    elif header == "supplier":
        data["supplier"] = world.supplier.pk
    before = StockOrder.objects.count(), Movement.objects.count()

    review = keeper.post(reverse(url), data)
    page = text(review)
    assert review.status_code == 200 and 'data-section="review"' in page
    assert re.search(r'data-field="count">6 件', page)  # two units and four of the lot
    assert 'data-field="value">¥2,414.00' in page  # 2 × 1,200.00 + 4 × 3.50
    assert where_to in page and "SN SN-A1" in page and "L-2026" in page
    assert 'name="step" value="confirm"' in page
    if header != "to_location":
        assert 'data-note="irreversible"' in page
        assert ("召回" if header == "supplier" else "破损") in page  # the reason's label, not its code
    nothing_changed(world, *before)

    back = keeper.post(reverse(url), {**data, "step": "edit"})
    assert back.status_code == 200 and f'name="units" value="{a1.pk}"' in text(back)
    assert 'name="lot_quantity"' in text(back) and 'value="4"' in text(back)
    nothing_changed(world, *before)

    done = keeper.post(reverse(url), {**data, "step": "confirm"})
    order = StockOrder.objects.latest("pk")
    assert done.status_code == 302 and done["Location"] == reverse("web:moves-order", args=[order.pk])
    assert Movement.objects.filter(document_type="STOCK_ORDER", document_id=order.pk).count() == 3
    assert lot_balance(world).quantity == 16


def test_a_refusal_found_by_the_review_is_shown_instead_of_the_review(world, cath_lab_store):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves")))
    too_many = keeper.post(reverse("web:moves"), {
        "idempotency_key": key, "to_location": cath_lab_store.pk, "lot_balance_line": [lot_balance(world).pk],
        "lot_quantity": ["50"]})
    page = text(too_many)
    assert too_many.status_code == 409 and 'data-section="review"' not in page
    assert 'data-code="INSUFFICIENT_STOCK"' in page and 'name="lot_quantity"' in page  # the list is kept
    assert lot_balance(world).quantity == 20


def test_a_lot_is_added_to_the_list_without_checking_the_rest_of_the_form(world):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-scrap")))
    balance = lot_balance(world)
    added = keeper.post(reverse("web:moves-scrap"), {
        "idempotency_key": key, "step": "add_lot", "lot_balance": balance.pk, "lot_quantity_new": "3"})
    page = text(added)
    assert added.status_code == 200 and f'name="lot_balance_line" value="{balance.pk}"' in page
    assert 'class="problems"' not in page  # no reason chosen yet: not a problem while building the list
    again = keeper.post(reverse("web:moves-scrap"), {
        "idempotency_key": key, "step": "add_lot", "lot_balance_line": [balance.pk], "lot_quantity": ["3"],
        "lot_balance": balance.pk, "lot_quantity_new": "2"})
    assert re.search(r'name="lot_quantity"[^>]*value="5"', text(again))  # the same lot twice: one line of 5
    assert lot_balance(world).quantity == 20


def test_a_lot_of_another_hospital_cannot_be_named(world):
    keeper = client_for(world.keeper)
    unit = world.foreign_unit
    foreign = LotBalance.objects.create(hospital=unit.hospital, product=unit.product, lot="F-1",
                                        location=unit.location, unit_cost=Decimal("2.00"), quantity=5)
    response = keeper.post(reverse("web:moves-scrap"), {
        "idempotency_key": "web-scrap-1", "reason_code": "DAMAGED", "lot_balance_line": [foreign.pk],
        "lot_quantity": ["1"]})
    assert response.status_code == 400 and "未找到批号" in text(response)
    assert LotBalance.objects.get(pk=foreign.pk).quantity == 5


def test_a_unit_in_an_rfid_cabinet_warns_that_the_cabinet_will_miss_it(world, cath_lab_store):
    a1 = world.units["SN-A1"]
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=world.cabinet,
                   units=[a1], idempotency_key="a1-into-cabinet")
    keeper = client_for(world.keeper)
    scanned = keeper.post(reverse("web:moves-scan"), {"code": gs1_udi(world.product.udi_di, serial="SN-A1",
                                                                          lot="LOT-A")}, headers=JSON)
    assert scanned.json()["ok"] is True and scanned.json()["warning"] is True
    assert "智能柜下次盘点会报告它缺失" in scanned.json()["message"]
    key = form_key(keeper.get(reverse("web:moves")))
    review = keeper.post(reverse("web:moves"), {"idempotency_key": key, "units": [a1.pk],
                                                 "to_location": cath_lab_store.pk})
    assert 'data-note="cabinet-warning"' in text(review) and "导管室智能柜1" in text(review)
    assert Unit.objects.get(pk=a1.pk).location == world.cabinet


def test_a_refund_is_reviewed_with_its_amount_and_destination_before_it_is_done(world, cath_lab_store):
    nurse = client_for(world.nurse, "en")
    url = reverse("web:bedside-refund", args=[world.consumption.pk])
    key = form_key(nurse.get(url))
    review = nurse.post(url, {"idempotency_key": key, "reason_code": "OPENED_NOT_USED", "to": "stock"})
    page = text(review)
    assert review.status_code == 200 and 'data-section="review"' in page
    assert "Opened but not used" in page and "OPENED_NOT_USED" not in page.replace('value="OPENED_NOT_USED"', "")
    assert 'data-field="value">¥1,200.00' in page
    assert 'data-field="where-to">导管室二级库' in page  # the cabinet's department store, as the service decides
    assert Consumption.objects.get(pk=world.consumption.pk).refunded_at is None
    assert not world.consumption.charges.filter(kind="REFUND").exists()


# --- refusals read as actions --------------------------------------------------------------------


@pytest.fixture
def a1_in_cabinet(world, cath_lab_store):
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=world.cabinet,
                   units=[world.units["SN-A1"]], idempotency_key="a1-into-cabinet")
    return world.units["SN-A1"]


def test_using_a_unit_still_in_the_cabinet_says_to_take_it_out_first(world, a1_in_cabinet):
    code = gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A")
    answer = use_scan(client_for(world.nurse), world, code, "web-use-cab")
    problem = answer.json()["problems"][0]
    assert answer.status_code == 409 and problem["code"] == "ILLEGAL_TRANSITION"
    assert problem["detail"] == "该耗材（SN-A1）仍在智能柜中，请先刷卡开柜取出再登记。"
    assert problem["item"] == ""  # never the unit's database id

    english = use_scan(client_for(world.nurse, "en"), world, code, "web-use-cab-en").json()["problems"][0]
    assert english["detail"] == ("SN SN-A1 is still in the smart cabinet: open the cabinet with your badge and take "
                                 "it out, then record its use.")


def test_a_refusal_in_chinese_has_no_english_and_no_prefix(world, in_department_lot):
    nurse = client_for(world.nurse)
    unreadable = use_scan(nurse, world, "hello world", "web-use-x").json()["problems"][0]
    assert unreadable["detail"].startswith("这个条码无法识别为 UDI")
    assert not re.search(r"[A-Za-z]{3,}", unreadable["detail"].replace("UDI", ""))
    empty = use_scan(nurse, world, "", "web-use-y").json()["problems"][0]
    assert empty["detail"].startswith("未扫描") and "请求无效" not in empty["detail"]
    unknown = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="NOPE"), "web-use-z").json()
    assert "unit" not in unknown["problems"][0]["detail"]


@pytest.fixture
def in_department_lot(world, cath_lab_store):
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(world.lot_product, "L-2026", 5, world.warehouse)], idempotency_key="lot-cath")
    return cath_lab_store


def test_one_problem_is_one_sentence_without_a_title(world, cath_lab_store):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves")))
    scrapped_first = keeper.post(reverse("web:moves-scrap"), {
        "idempotency_key": form_key(keeper.get(reverse("web:moves-scrap"))), "units": [world.units["SN-A2"].pk],
        "reason_code": "DAMAGED", "step": "confirm"})
    assert scrapped_first.status_code == 302
    refused = keeper.post(reverse("web:moves"), {"idempotency_key": key, "to_location": cath_lab_store.pk,
                                                  "units": [world.units["SN-A2"].pk]})
    page = text(refused)
    assert "耗材 SN-A2 已报损，不再是库存。" in page
    assert "无法完成" not in page and "problems-title" not in page


def test_the_reason_is_shown_as_its_label_on_the_order_and_the_recent_list(world):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-scrap")))
    done = keeper.post(reverse("web:moves-scrap"), {"idempotency_key": key, "units": [world.units["SN-A2"].pk],
                                                     "reason_code": "CONTAMINATED", "step": "confirm"})
    order_page = text(keeper.get(done["Location"]))
    assert 'data-field="reason">污染 / 包装已拆' in order_page and "CONTAMINATED" not in order_page
    recent = text(keeper.get(reverse("web:moves-scrap"))).split('data-table="recent-orders"')[1]
    assert "污染 / 包装已拆" in recent and "CONTAMINATED" not in recent


# --- printable documents ------------------------------------------------------------------------


def test_a_return_prints_as_a_return_note_with_its_lines_totals_and_signature_lines(world):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-return")))
    done = keeper.post(reverse("web:moves-return"), {
        "idempotency_key": key, "units": [world.units["SN-A1"].pk], "supplier": world.supplier.pk,
        "reason_code": "RECALL", "lot_balance_line": [lot_balance(world).pk], "lot_quantity": ["4"],
        "step": "confirm", "note": "厂家召回"})
    order = StockOrder.objects.get(pk=int(done["Location"].rstrip("/").split("/")[-1]))
    order_page = text(keeper.get(done["Location"]))
    assert reverse("web:moves-order-pdf", args=[order.pk]) in order_page and 'class="print-only' in order_page

    pdf = keeper.get(reverse("web:moves-order-pdf", args=[order.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    strings = shown_strings(pdf.content)
    assert strings.index("县人民医院") + 1 == strings.index("退货单")  # the hospital over the title
    assert f"No.{order.pk:08d}" in strings and "召回" in strings and "RECALL" not in strings
    assert world.supplier.name in strings and "厂家召回" in strings
    assert ["1", world.product.internal_code, world.product.name] == strings[strings.index("1"):strings.index("1") + 3]
    assert "SN SN-A1" in strings and "批号 L-2026" in strings
    assert "¥1,200.00" in strings and "¥14.00" in strings
    total = strings.index("合计")
    assert [value for value in strings[total + 1:total + 8] if value][:2] == ["5", "¥1,214.00"]
    assert any(s.startswith("经办人：") for s in strings) and any(s.startswith("供应商签收") for s in strings)


@pytest.mark.parametrize(("url", "title", "signer"), [("web:moves", "移库单（出库/配送单）", "接收人"),
                                                       ("web:moves-scrap", "报损单", "科室负责人")])
def test_transfers_and_scraps_print_with_their_own_titles_and_signers(world, cath_lab_store, url, title, signer):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse(url)))
    done = keeper.post(reverse(url), {"idempotency_key": key, "units": [world.units["SN-A2"].pk],
                                      "to_location": cath_lab_store.pk, "reason_code": "DAMAGED", "step": "confirm"})
    order_pk = int(done["Location"].rstrip("/").split("/")[-1])
    strings = shown_strings(keeper.get(reverse("web:moves-order-pdf", args=[order_pk])).content)
    assert title in strings and any(s.startswith(signer) for s in strings) and "SN SN-A2" in strings


def test_another_hospitals_order_document_is_not_found(world):
    foreign_keeper = world.foreign_unit.hospital.users.filter(username="keeper-other").first()
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-scrap")))
    done = keeper.post(reverse("web:moves-scrap"), {"idempotency_key": key, "units": [world.units["SN-A2"].pk],
                                                     "reason_code": "DAMAGED", "step": "confirm"})
    order_pk = int(done["Location"].rstrip("/").split("/")[-1])
    assert client_for(foreign_keeper).get(reverse("web:moves-order-pdf", args=[order_pk])).status_code == 404


# --- the stock search -----------------------------------------------------------------------------


def serials(response) -> list[str]:
    return sorted(unit.serial for unit in response.context.get("page") or [])


def test_the_stock_search_reads_a_scanned_udi_with_its_gs_mark_or_the_stations_substitute(world):
    keeper = client_for(world.keeper)
    code = gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A")
    assert serials(keeper.get(reverse("web:stock"), {"q": code.replace("\x1d", "\u241d")})) == ["SN-A2"]
    station = world.cabinet_device.__class__.objects.create(
        hospital=world.warehouse.hospital, location=world.warehouse, code="WEDGE-OPS-1", name="扫码工作站",
        kind="WEDGE_SCANNER", config={"gs_substitute": "|"})
    keeper.cookies["spd_station"] = str(station.pk)
    with_substitute = keeper.get(reverse("web:stock"), {"q": code.replace("\x1d", "|")})
    assert serials(with_substitute) == ["SN-A2"]


def test_the_stock_search_finds_a_typed_product_name_by_its_words(world):
    keeper = client_for(world.keeper)
    assert serials(keeper.get(reverse("web:stock"), {"q": world.product.name[:2]})) == ["SN-A1", "SN-A2"]
    assert serials(keeper.get(reverse("web:stock"), {"q": "可降解 支架"})) == ["SN-C1"]
    lots = keeper.get(reverse("web:stock-lots"), {"q": "输液器"})
    assert [balance.lot for balance in lots.context["page"]] == ["L-2026"]

