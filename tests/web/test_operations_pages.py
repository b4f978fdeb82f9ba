"""The operation pages through Django's test client: receiving (验收), smart cabinets, use at the
bedside and moves — who may use them, scoping to the hospital and department, every refusal shown
in the person's language, and double submits that replay instead of doing things twice."""
import datetime
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from inventory.actors import Actor
from inventory.models import (
    AcceptanceRecord,
    CabinetSession,
    ChargeDelivery,
    Consumption,
    DeliveryNote,
    Location,
    LotBalance,
    Movement,
    StockOrder,
    Unit,
)
from inventory.services.cabinets import close_session, open_session
from inventory.services.labelling import bind_tag
from inventory.services.receiving import LineInput, receive_delivery_note
from inventory.services.stock import LotQuantity, scrap, transfer_stock
from tests import factories
from tests.factories import gs1_udi
from tests.web.conftest import ENCOUNTER

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json"}
PRICE = Decimal("1200.00")


def client_for(user, language: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if language:
        client.cookies["django_language"] = language
    return client


def text(response) -> str:
    return response.content.decode()


def form_key(response) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', text(response)).group(1)


# --- who may use what ------------------------------------------------------------------------------

STOCK_PAGES = ["web:receiving", "web:receiving-new", "web:moves", "web:moves-return", "web:moves-scrap",
               "web:moves-release"]


@pytest.mark.parametrize("name", [*STOCK_PAGES, "web:cabinets", "web:bedside"])
def test_every_operation_page_sends_a_stranger_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("keeper", {*STOCK_PAGES, "web:cabinets"}),
        ("operator", {*STOCK_PAGES, "web:cabinets", "web:bedside"}),
        ("nurse", {"web:cabinets", "web:bedside"}),
        ("auditor", {"web:cabinets"}),
    ],
)
def test_pages_and_menu_follow_the_role(world, who, allowed):
    client = client_for(getattr(world, who))
    for name in [*STOCK_PAGES, "web:cabinets", "web:bedside"]:
        assert client.get(reverse(name)).status_code == (200 if name in allowed else 403), name
    menu = text(client.get("/"))
    for name, url in (("web:receiving", "/receiving/"), ("web:moves", "/moves/"), ("web:cabinets", "/cabinets/"),
                      ("web:bedside", "/use/")):
        assert (f'href="{url}"' in menu) == (name in allowed), name


def test_writes_are_refused_to_roles_without_them(world):
    auditor, nurse = client_for(world.auditor), client_for(world.nurse)
    assert auditor.post(reverse("web:moves-scan"), {"code": "x"}).status_code == 403
    assert nurse.post(reverse("web:moves"), {"units": [world.units["SN-A1"].pk]}).status_code == 403
    assert client_for(world.keeper).post(reverse("web:bedside-scan"), {"code": "x"}).status_code == 403
    assert auditor.get(reverse("web:bedside-refund", args=[world.consumption.pk])).status_code == 403


# --- receiving -------------------------------------------------------------------------------------


def recorded_note(world, number="DN-WEB-1", lines=None):
    product = world.product
    lines = lines or [
        LineInput(PRICE, udi=gs1_udi(product.udi_di, serial="R1", lot="L9")),
        LineInput(Decimal("999.00"), udi=gs1_udi(product.udi_di, serial="R2", lot="L9")),
        LineInput(PRICE, udi=gs1_udi("06901234567892", serial="R3")),
    ]
    return receive_delivery_note(actor=Actor(user=world.keeper), hospital=world.warehouse.hospital,
                                 supplier=world.supplier, number=number, receiving_location=world.warehouse,
                                 lines=lines, idempotency_key=f"rcv-{number}")


def test_the_receiving_list_shows_this_hospitals_notes_awaiting_acceptance(world, other_hospital):
    note = recorded_note(world)
    foreign_warehouse = Location.objects.get(hospital=other_hospital, code="CW")
    foreign_keeper = factories.UserFactory(hospital=other_hospital, roles=["warehouse"])
    receive_delivery_note(actor=Actor(user=foreign_keeper), hospital=other_hospital, supplier=world.supplier,
                          number="DN-FOREIGN", receiving_location=foreign_warehouse,
                          lines=[LineInput(PRICE, udi=gs1_udi(world.product.udi_di, serial="F1"))],
                          idempotency_key="rcv-foreign")
    response = client_for(world.keeper).get(reverse("web:receiving"))
    assert [n.number for n in response.context["awaiting"]] == ["DN-WEB-1"]
    assert "DN-FOREIGN" not in text(response) and "DN-SN-A1" in text(response)  # accepted earlier
    foreign = DeliveryNote.objects.get(number="DN-FOREIGN")
    assert client_for(world.keeper).get(reverse("web:receiving-note", args=[foreign.pk])).status_code == 404
    assert client_for(world.keeper).get(reverse("web:receiving-note", args=[note.pk])).status_code == 200


def test_scanning_a_note_number_opens_it_and_an_unknown_number_says_so(world):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    found = keeper.get(reverse("web:receiving-find"), {"code": "dn-web-1"}, headers=JSON)
    assert found.json() == {"ok": True, "message": "正在打开送货单 DN-WEB-1", "problems": [],
                            "redirect": reverse("web:receiving-note", args=[note.pk])}
    missing = keeper.get(reverse("web:receiving-find"), {"code": "DN-NOPE"}, headers=JSON)
    assert missing.status_code == 404 and missing.json()["problems"][0]["detail"] == "未找到送货单 DN-NOPE。"
    page = keeper.get(reverse("web:receiving-find"), {"code": "DN-NOPE"}, follow=True)
    assert "未找到送货单 DN-NOPE。" in text(page) and 'class="problems"' in text(page)


def test_a_recorded_note_shows_what_acceptance_will_decide_for_each_line(world):
    note = recorded_note(world)
    page = text(client_for(world.keeper).get(reverse("web:receiving-note", args=[note.pk])))
    # R1 would be accepted, but nobody has scanned it yet; R2 and R3 will be rejected.
    assert page.count('data-verdict="unverified"') == 1 and page.count('data-verdict="reject"') == 2
    assert "价格 999.00 与协议价 1200.00 不一致" in page
    assert "本院目录中没有 UDI-DI 为 06901234567892 的产品" in page
    assert not AcceptanceRecord.objects.filter(line__note=note).exists()


def note_scan(client, note, code, **headers):
    return client.post(reverse("web:receiving-note-scan", args=[note.pk]), {"code": code}, headers=headers or JSON)


def test_each_scan_says_at_once_which_line_and_whether_it_will_be_accepted(world):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    good = note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R1", lot="L9"))
    assert good.status_code == 200
    assert good.json()["ok"] is True and good.json()["line_no"] == 1 and good.json()["checked"] == 1
    assert "第 1 行" in good.json()["message"] and "可以验收" in good.json()["message"]

    bad = note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R2", lot="L9"))
    assert bad.json()["ok"] is False and bad.json()["line_no"] == 2 and bad.json()["checked"] == 2
    assert [p["code"] for p in bad.json()["problems"]] == ["PRICE_MISMATCH"]
    assert "将被拒收" in bad.json()["message"]

    stranger = note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R9"))
    assert stranger.status_code == 404 and stranger.json()["problems"][0]["code"] == "SCANNED_UNIT_NOT_ON_NOTE"
    assert "DN-WEB-1" in stranger.json()["problems"][0]["detail"]
    unreadable = note_scan(keeper, note, "]d2012345")
    assert unreadable.status_code == 400 and unreadable.json()["problems"][0]["code"] == "UDI_UNPARSEABLE"

    page = text(keeper.get(reverse("web:receiving-note", args=[note.pk])))
    assert page.count('class="check-mark"') == 2  # the ticks are kept for the page


def test_a_scan_sent_with_the_stations_gs_substitute_or_the_shown_mark_is_read(world, hospital):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    code = gs1_udi(world.product.udi_di, serial="R1", lot="L9")
    assert note_scan(keeper, note, code.replace("\x1d", "\u241d")).json()["line_no"] == 1
    station = Device.objects.create(hospital=hospital, code="WS-R", name="验收台", kind=Device.Kind.WEDGE_SCANNER,
                                    config={"gs_substitute": "|"})
    keeper.post(reverse("web:station"), {"station": station.pk})
    assert note_scan(keeper, note, code.replace("\x1d", "|")).json()["line_no"] == 1


def accept(client, note, key=None, **data):
    key = key or form_key(client.get(reverse("web:receiving-review", args=[note.pk])))
    return client.post(reverse("web:receiving-accept", args=[note.pk]), {"idempotency_key": key, **data})


def test_finishing_the_acceptance_shows_each_lines_result_and_a_double_submit_changes_nothing(world):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R1", lot="L9"))
    key = form_key(keeper.get(reverse("web:receiving-review", args=[note.pk])))
    first = accept(keeper, note, key)
    assert first.status_code == 302 and first["Location"] == reverse("web:receiving-note", args=[note.pk])
    again = accept(keeper, note, key)
    assert again.status_code == 302
    assert AcceptanceRecord.objects.filter(line__note=note).count() == 3
    assert Unit.objects.filter(serial="R1").count() == 1

    page = keeper.get(first["Location"])
    html = text(page)
    assert "验收完成：1 行通过，2 行拒收" in html
    assert html.count('data-decision="ACCEPTED"') == 1 and html.count('data-decision="REJECTED"') == 2
    assert "价格 999.00 与协议价 1200.00 不一致" in html
    assert reverse("web:unit-trace", args=[Unit.objects.get(serial="R1").pk]) in html


def test_accepting_an_accepted_note_with_a_new_form_is_refused_with_the_reason(world):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R1", lot="L9"))
    accept(keeper, note)
    late = accept(keeper, note, key="web-accept-another-tab")
    assert late.status_code == 409 and "送货单 DN-WEB-1 已验收" in text(late)


def test_only_an_operator_sees_the_gift_boxes_and_a_keeper_marking_a_gift_is_refused(world):
    note = recorded_note(world, lines=[LineInput(Decimal("0"), udi=gs1_udi(world.product.udi_di, serial="G1"))])
    keeper, operator = client_for(world.keeper), client_for(world.operator)
    note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="G1"))
    assert 'name="gift"' not in text(keeper.get(reverse("web:receiving-review", args=[note.pk])))
    assert 'name="gift"' in text(operator.get(reverse("web:receiving-review", args=[note.pk])))

    refused = accept(keeper, note, gift="1")
    assert refused.status_code == 403 and "只有 SPD 运营人员或管理员可以验收赠送品" in text(refused)
    assert not AcceptanceRecord.objects.filter(line__note=note).exists()

    accept(operator, note, gift="1")
    unit = Unit.objects.get(serial="G1")
    assert (unit.is_gift, unit.unit_cost) == (True, Decimal("0"))


def test_accepted_stock_can_be_put_away_elsewhere(world, cath_lab_store):
    note = recorded_note(world)
    keeper = client_for(world.keeper)
    note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R1", lot="L9"))
    accept(keeper, note, put_away_to=cath_lab_store.pk)
    assert Unit.objects.get(serial="R1").location == cath_lab_store


# --- a new delivery scanned in ---------------------------------------------------------------------


def start_delivery(client, world, number="DN-SCAN-1", **extra) -> str:
    response = client.post(reverse("web:receiving-new"), {
        "supplier": world.supplier.pk, "number": number, "receiving_location": world.warehouse.pk, **extra})
    assert response.status_code == 302, text(response)
    return response["Location"]


def draft_scan(client, draft_url, code, **data):
    return client.post(draft_url + "scan/", {"code": code, **data}, headers=JSON)


def test_a_delivery_is_scanned_into_a_new_note_with_each_verdict_then_recorded_once(world):
    keeper = client_for(world.keeper)
    draft = start_delivery(keeper, world)
    assert "DN-SCAN-1" in text(keeper.get(draft))

    first = draft_scan(keeper, draft, gs1_udi(world.product.udi_di, serial="N1", lot="L1"))
    assert first.json()["ok"] is True and first.json()["line_no"] == 1
    assert 'data-key="1"' in first.json()["row"] and "¥1,200.00" in first.json()["row"]
    priced = draft_scan(keeper, draft, gs1_udi(world.product.udi_di, serial="N2", lot="L1"), unit_price="1100")
    assert priced.json()["ok"] is False and priced.json()["problems"][0]["code"] == "PRICE_MISMATCH"
    again = draft_scan(keeper, draft, gs1_udi(world.product.udi_di, serial="N1", lot="L1"))
    assert again.status_code == 400 and "已在第 1 行" in again.json()["problems"][0]["detail"]
    unreadable = draft_scan(keeper, draft, "garbage")
    assert unreadable.json()["problems"][0]["code"] == "UDI_UNPARSEABLE"
    lot_udi = draft_scan(keeper, draft, gs1_udi(world.lot_product.udi_di, lot="LX-1"), quantity="12")
    assert lot_udi.json()["ok"] is True and lot_udi.json()["line_no"] == 3

    expiry = timezone.localdate() + datetime.timedelta(days=400)
    typed = keeper.post(draft + "lot/", {"product": world.lot_product.pk, "lot": "LX-2", "expiry": expiry.isoformat(),
                                         "quantity": "5", "unit_price": ""}, follow=True)
    assert "第 4 行" in text(typed)
    keeper.post(draft + "remove/2/")
    page = text(keeper.get(draft))
    assert page.count('data-verdict="accept"') == 3 and "N2" not in page

    recorded = keeper.post(draft)
    note = DeliveryNote.objects.get(number="DN-SCAN-1")
    assert recorded.status_code == 302 and recorded["Location"] == reverse("web:receiving-note", args=[note.pk])
    assert keeper.post(draft)["Location"] == recorded["Location"]  # a double submit opens the same note
    lines = list(note.lines.order_by("line_no").values_list("serial", "lot", "quantity", "unit_price"))
    assert lines == [("N1", "L1", 1, PRICE), ("", "LX-1", 12, Decimal("3.50")), ("", "LX-2", 5, Decimal("3.50"))]

    accept(keeper, note)
    assert LotBalance.objects.get(lot="LX-1").quantity == 12 and Unit.objects.get(serial="N1").status == "IN_STOCK"


def test_recording_a_note_number_the_supplier_already_used_is_refused_and_the_draft_is_kept(world):
    keeper = client_for(world.keeper)
    draft = start_delivery(keeper, world, number="DN-SN-A1")  # the world's first delivery
    draft_scan(keeper, draft, gs1_udi(world.product.udi_di, serial="N5"))
    refused = keeper.post(draft)
    assert refused.status_code == 409 and "该供应商的送货单 DN-SN-A1 已存在" in text(refused)
    assert "N5" in text(keeper.get(draft))


def test_a_cold_chain_line_needs_the_arrival_temperature(world, hospital):
    cold = factories.SupplyAgreementFactory(product__hospital=hospital, product__storage_min_c=Decimal("2"),
                                            product__storage_max_c=Decimal("8"), supplier=world.supplier).product
    keeper = client_for(world.keeper)
    warm = draft_scan(keeper, start_delivery(keeper, world, number="DN-C1", temperature_c="12.5"),
                      gs1_udi(cold.udi_di, serial="C1"))
    assert warm.json()["problems"][0]["code"] == "TEMPERATURE_OUT_OF_RANGE"
    assert "到货温度 12.5 °C 超出 2.0–8.0 °C 范围" in warm.json()["problems"][0]["detail"]


def test_another_hospitals_draft_does_not_exist(world, other_hospital):
    draft = start_delivery(client_for(world.keeper), world)
    assert client_for(world.operator).get(draft).status_code == 200  # drafts belong to the hospital
    stranger = factories.UserFactory(username="keeper-x", hospital=other_hospital, roles=["warehouse"])
    assert client_for(stranger).get(draft).status_code == 404


def test_receiving_speaks_english_to_an_english_reader(world):
    note = recorded_note(world)
    keeper = client_for(world.keeper, "en")
    bad = note_scan(keeper, note, gs1_udi(world.product.udi_di, serial="R2", lot="L9"))
    assert bad.json()["message"] == f"Line 2: {world.product.name} SN R2 — will be rejected"
    assert bad.json()["problems"][0]["detail"] == "Price 999.00 differs from the agreement price 1200.00."
    assert "Review and finish acceptance" in text(keeper.get(reverse("web:receiving-note", args=[note.pk])))


# --- smart cabinets --------------------------------------------------------------------------------


@pytest.fixture
def stocked_cabinet(world):
    return stock_the_cabinet(world)


def stock_the_cabinet(world):
    """SN-A1 and SN-A2 tagged and in the cabinet; a door session took SN-A1 (30 hours ago: overdue) and
    saw an unknown tag and SN-C1's tag (it belongs to the warehouse)."""
    actor = Actor(user=world.keeper)
    a1, a2, c1 = world.units["SN-A1"], world.units["SN-A2"], world.units["SN-C1"]
    for unit, epc in ((a1, "E28011606000020A0000A001"), (a2, "E28011606000020A0000A002"),
                      (c1, "E28011606000020A0000C001")):
        bind_tag(unit=unit, epc=epc, actor=actor)
    transfer_stock(actor=actor, hospital=world.cabinet.hospital, to_location=world.cabinet,
                   units=[Unit.objects.get(pk=a1.pk), Unit.objects.get(pk=a2.pk)], idempotency_key="cab-fill")
    # After the world's own session (a close older than the last one applied would not be applied).
    opened = CabinetSession.objects.filter(cabinet=world.cabinet).latest("closed_at").closed_at + datetime.timedelta(
        seconds=1)
    open_session(device=world.cabinet_device, cabinet=world.cabinet, occurred_at=opened, badge="BADGE-NURSE")
    close_session(device=world.cabinet_device, cabinet=world.cabinet, occurred_at=opened + datetime.timedelta(seconds=1),
                  epcs=["E28011606000020A0000A002", "E28011606000020A0000C001", "E2801160600002FFFFFFFFFF"])
    Unit.objects.filter(pk=a1.pk).update(status_since=timezone.now() - datetime.timedelta(hours=30))  # time passes
    return world.cabinet


def test_the_cabinet_list_shows_device_state_contents_and_overdue_takes(world, stocked_cabinet, other_hospital):
    factories.LocationFactory(hospital=other_hospital, code="CAB-X", name="外院智能柜", kind="SMART_CABINET")
    response = client_for(world.nurse).get(reverse("web:cabinets"))
    page = text(response)
    (summary,) = response.context["summaries"]
    assert (summary.in_cabinet, summary.taken, summary.overdue, summary.online) == (1, 1, 1, False)
    assert "外院智能柜" not in page and "离线" in page and "1 件超时" in page
    assert summary.last_session.user == world.nurse


def test_a_cabinet_shows_its_contents_sessions_with_unknown_and_misplaced_tags_and_overdue_units(
    world, stocked_cabinet
):
    response = client_for(world.auditor).get(reverse("web:cabinet", args=[stocked_cabinet.pk]))
    page = text(response)
    assert [unit.serial for unit in response.context["contents"]] == ["SN-A2", "SN-A1"]
    assert [unit.serial for unit in response.context["overdue"]] == ["SN-A1"]
    assert 'data-section="overdue"' in page and "超时未归还" in page
    session = CabinetSession.objects.filter(cabinet=stocked_cabinet, status="CLOSED").latest("pk")
    row = page[page.index(f'data-session="{session.pk}"'):]
    assert "SN-A1" in row[:row.index("</tr>")]
    assert 'data-tag="unknown"' in page and "E2801160600002FFFFFFFFFF" in page
    assert 'data-tag="misplaced"' in page and "中心库" in page
    assert "王护士" in page or "护士" in page


def test_a_nurse_does_not_see_another_departments_cabinet(world, hospital):
    elsewhere = factories.LocationFactory(hospital=hospital, code="ICU-CAB", name="ICU 智能柜", kind="SMART_CABINET",
                                          department=factories.DepartmentFactory(hospital=hospital, code="ICU"))
    assert client_for(world.nurse).get(reverse("web:cabinet", args=[elsewhere.pk])).status_code == 404
    assert client_for(world.keeper).get(reverse("web:cabinet", args=[elsewhere.pk])).status_code == 200


# --- use at the bedside ----------------------------------------------------------------------------


@pytest.fixture
def in_department(world, cath_lab_store):
    """SN-A1 and a lot of infusion sets moved into the cath lab's store, ready to be used."""
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   units=[world.units["SN-A1"]], idempotency_key="to-cath")
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(world.lot_product, "L-2026", 10, world.warehouse)], idempotency_key="lot-to-cath")
    return cath_lab_store


def context_of(world, encounter="ZY20261123999"):
    return {"encounter": encounter, "department": world.cabinet.department.pk, "surgery_id": "SS-1",
            "surgery_name": "PCI", "doctor": "D0042"}


def test_the_nurses_department_is_preselected_and_todays_uses_are_listed(world):
    response = client_for(world.nurse).get(reverse("web:bedside"))
    page = text(response)
    assert re.search(rf'<option value="{world.cabinet.department.pk}" selected>', page)
    assert [use.pk for use in response.context["uses"]] == [world.consumption.pk]
    assert ENCOUNTER in page and "推送失败，正在重试" in page and "¥1,200.00" in page


def bedside_page(client, world, **context):
    return client.get(reverse("web:bedside"), {**context_of(world), **context})


def use_scan(client, world, code, token, **context):
    return client.post(reverse("web:bedside-scan"), {**context_of(world), **context, "code": code,
                                                     "idempotency_key": token}, headers=JSON)


def test_a_scanned_unit_is_used_on_the_encounter_with_its_charge_and_a_double_read_is_one_use(world, in_department):
    nurse = client_for(world.nurse)
    page = bedside_page(nurse, world)
    token = re.search(r'name="idempotency_key" value="(web-use-[^"]+)"', text(page)).group(1)
    code = gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A")
    answer = use_scan(nurse, world, code, token)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert "ZY20261123999" in answer.json()["message"] and "¥1,200.00" in answer.json()["message"]
    assert "等待推送" in answer.json()["row"] and 'data-his-status="PENDING"' in answer.json()["row"]
    assert use_scan(nurse, world, code, token).json()["consumption"] == answer.json()["consumption"]
    use = Consumption.objects.get(unit__serial="SN-A1")
    assert (use.encounter, use.surgery_name, use.doctor, use.recorded_by) == ("ZY20261123999", "PCI", "D0042",
                                                                              world.nurse)
    assert ChargeDelivery.objects.filter(charge__consumption=use).count() == 1

    on_a_new_page = use_scan(nurse, world, code, "web-use-another-page")
    assert on_a_new_page.status_code == 409 and on_a_new_page.json()["problems"][0]["code"] == "ALREADY_CONSUMED"


def test_refusals_at_the_bedside_say_why(world, in_department):
    nurse = client_for(world.nurse)
    in_warehouse = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A"), "web-use-1")
    assert in_warehouse.json()["problems"][0]["code"] == "UNIT_NOT_IN_DEPARTMENT"
    assert in_warehouse.json()["problems"][0]["detail"] == (
        "耗材 SN-A2 在中心库，不在心内科导管室：请先移库到本科室，或以存放它的科室登记使用。")
    named = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"), "web-use-2",
                     encounter="330102199001011234")
    assert {p["code"] for p in named.json()["problems"]} == {"LOOKS_LIKE_PERSONAL_ID"}
    unknown = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="NOPE"), "web-use-3")
    assert unknown.status_code == 404 and unknown.json()["problems"][0]["code"] == "NOT_FOUND"
    other = factories.DepartmentFactory(hospital=world.cabinet.hospital, code="ICU", name="重症监护室")
    foreign = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"), "web-use-4",
                       department=other.pk)
    assert foreign.json()["problems"][0]["code"] == "INVALID_REQUEST"  # not one of her departments to choose
    assert not Consumption.objects.filter(unit__serial="SN-A1").exists()


def test_a_lot_quantity_is_used_once_per_form(world, in_department):
    nurse = client_for(world.nurse)
    page = bedside_page(nurse, world)
    balance = LotBalance.objects.get(location=in_department, lot="L-2026")
    assert f'<option value="{balance.pk}">' in text(page)
    key = re.search(r'name="idempotency_key" value="(web-use-lot-[^"]+)"', text(page)).group(1)
    data = {**context_of(world), "balance": balance.pk, "quantity": "3", "idempotency_key": key,
            "query": "encounter=ZY20261123999"}
    first = nurse.post(reverse("web:bedside-lot"), data)
    assert first.status_code == 302 and first["Location"] == reverse("web:bedside") + "?encounter=ZY20261123999"
    nurse.post(reverse("web:bedside-lot"), data)
    balance.refresh_from_db()
    assert balance.quantity == 7 and Consumption.objects.filter(lot="L-2026").count() == 1
    assert "批号 L-2026 × 3" in text(nurse.get(first["Location"]))

    too_many = nurse.post(reverse("web:bedside-lot"), {**data, "quantity": "50", "idempotency_key": "web-use-lot-2"},
                          follow=True)
    assert "仅有 7，请求 50" in text(too_many) and 'class="message error"' in text(too_many)


def test_a_use_is_refunded_with_a_reason_once(world, in_department):
    nurse = client_for(world.nurse)
    page = nurse.get(reverse("web:bedside-refund", args=[world.consumption.pk]))
    key = form_key(page)
    assert ENCOUNTER in text(page)
    missing = nurse.post(reverse("web:bedside-refund", args=[world.consumption.pk]),
                         {"idempotency_key": key, "to": "stock"})
    assert missing.status_code == 400 and "原因" in text(missing)
    review = nurse.post(reverse("web:bedside-refund", args=[world.consumption.pk]),
                        {"idempotency_key": key, "reason_code": "NOT_USED", "to": "stock"})
    assert review.status_code == 200 and 'data-section="review"' in text(review)
    assert "未用于患者" in text(review) and in_department.name in text(review)  # the reason's label, where it goes
    assert Consumption.objects.get(pk=world.consumption.pk).refunded_at is None  # nothing done yet
    assert not world.consumption.charges.filter(kind="REFUND").exists()
    data = {"idempotency_key": key, "reason_code": "NOT_USED", "to": "stock", "step": "confirm"}
    done = nurse.post(reverse("web:bedside-refund", args=[world.consumption.pk]), data)
    assert done.status_code == 302
    assert nurse.post(reverse("web:bedside-refund", args=[world.consumption.pk]), data).status_code == 302
    world.consumption.refresh_from_db()
    assert world.consumption.refund_reason == "NOT_USED"
    assert world.consumption.charges.filter(kind="REFUND").count() == 1
    assert Unit.objects.get(pk=world.used.pk).location == in_department  # from the cabinet to the store
    listed = text(nurse.get(done["Location"]))
    assert "已退费" in listed and 'data-charge-kind="REFUND"' in listed

    again = nurse.post(reverse("web:bedside-refund", args=[world.consumption.pk]),
                       {**data, "idempotency_key": "web-refund-new"})
    assert again.status_code == 409 and "已退费" in text(again)


def test_a_nurse_of_another_department_cannot_see_or_refund_a_use(world, hospital):
    other = factories.UserFactory(hospital=hospital, roles=["nurse"])
    other.departments.add(factories.DepartmentFactory(hospital=hospital, code="ICU"))
    client = client_for(other)
    assert client.get(reverse("web:bedside-refund", args=[world.consumption.pk])).status_code == 404
    assert list(client.get(reverse("web:bedside")).context["uses"]) == []


# --- transfers, returns, scraps --------------------------------------------------------------------


def move_scan(client, code, listed=""):
    return client.post(reverse("web:moves-scan"), {"code": code, "listed": listed}, headers=JSON)


def test_a_scan_adds_the_units_row_once(world):
    keeper = client_for(world.keeper)
    a1 = world.units["SN-A1"]
    answer = move_scan(keeper, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    assert answer.json()["ok"] is True and f'name="units" value="{a1.pk}"' in answer.json()["row"]
    twice = move_scan(keeper, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"), listed=f"{a1.pk}")
    assert twice.status_code == 400 and "已在列表中" in twice.json()["problems"][0]["detail"]
    foreign = move_scan(keeper, gs1_udi(world.foreign_unit.product.udi_di, serial="SN-X1"))
    assert foreign.json()["problems"][0]["code"] == "PRODUCT_UNKNOWN"


def test_a_transfer_moves_the_scanned_units_once_even_when_submitted_twice(world, cath_lab_store):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves")))
    units = [world.units["SN-A1"].pk, world.units["SN-A2"].pk]
    data = {"idempotency_key": key, "units": units, "to_location": cath_lab_store.pk, "note": "补货"}
    review = keeper.post(reverse("web:moves"), data)
    assert review.status_code == 200 and not StockOrder.objects.filter(kind="TRANSFER", note="补货").exists()
    assert set(Unit.objects.filter(pk__in=units).values_list("location", flat=True)) == {world.warehouse.pk}
    data["step"] = "confirm"
    first = keeper.post(reverse("web:moves"), data)
    order = StockOrder.objects.get(kind="TRANSFER", note="补货")
    assert first.status_code == 302 and first["Location"] == reverse("web:moves-order", args=[order.pk])
    assert keeper.post(reverse("web:moves"), data)["Location"] == first["Location"]
    assert Movement.objects.filter(document_type="STOCK_ORDER", document_id=order.pk).count() == 2
    assert set(Unit.objects.filter(pk__in=units).values_list("location", flat=True)) == {cath_lab_store.pk}
    page = text(keeper.get(first["Location"]))
    assert "移库" in page and "SN SN-A1" in page and "导管室二级库" in page


def test_a_refused_transfer_names_each_unit_and_keeps_the_list(world, cath_lab_store):
    keeper = client_for(world.keeper)
    scrapped = world.units["SN-A2"]
    scrap(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, reason_code="DAMAGED", units=[scrapped],
          idempotency_key="scrap-a2")
    data = {"idempotency_key": "web-transfer-x", "to_location": cath_lab_store.pk,
            "units": [world.units["SN-A1"].pk, scrapped.pk]}
    refused = keeper.post(reverse("web:moves"), data)
    page = text(refused)
    assert refused.status_code == 409 and "耗材 SN-A2 已报损，不再是库存。" in page and "不能从" not in page
    assert f'name="units" value="{world.units["SN-A1"].pk}"' in page and 'class="line-rejected"' in page
    assert "(SN SN-A2)" in page and 'data-code="ILLEGAL_TRANSITION"' in page
    assert Unit.objects.get(pk=world.units["SN-A1"].pk).location == world.warehouse  # nothing half done


def test_a_return_needs_a_supplier_and_a_reason(world):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-return")))
    unit = world.units["SN-A1"]
    missing = keeper.post(reverse("web:moves-return"), {"idempotency_key": key, "units": [unit.pk],
                                                         "supplier": world.supplier.pk})
    assert missing.status_code == 400 and "原因" in text(missing) and f'value="{unit.pk}"' in text(missing)
    wrong = keeper.post(reverse("web:moves-return"), {"idempotency_key": key, "units": [world.units["SN-C1"].pk],
                                                       "supplier": world.supplier.pk, "reason_code": "RECALL"})
    assert wrong.status_code == 409 and "不是该供应商" in text(wrong)
    done = keeper.post(reverse("web:moves-return"), {"idempotency_key": key, "units": [unit.pk], "step": "confirm",
                                                      "supplier": world.supplier.pk, "reason_code": "RECALL"})
    assert done.status_code == 302
    unit.refresh_from_db()
    assert unit.status == "RETURNED_TO_SUPPLIER"
    assert Movement.objects.get(unit=unit, kind="RETURN_TO_SUPPLIER").reason_code == "RECALL"


def test_a_scrap_with_a_reason(world):
    keeper = client_for(world.keeper)
    key = form_key(keeper.get(reverse("web:moves-scrap")))
    unit = world.units["SN-A2"]
    review = keeper.post(reverse("web:moves-scrap"), {"idempotency_key": key, "units": [unit.pk],
                                                      "reason_code": "DAMAGED"})
    assert review.status_code == 200 and "破损" in text(review) and "DAMAGED" not in text(review).replace(
        'value="DAMAGED"', "")
    unit.refresh_from_db()
    assert unit.status == "IN_STOCK"  # reviewed, not done
    keeper.post(reverse("web:moves-scrap"), {"idempotency_key": key, "units": [unit.pk], "reason_code": "DAMAGED",
                                             "step": "confirm"})
    unit.refresh_from_db()
    assert unit.status == "SCRAPPED"


def test_leaving_quarantine_takes_a_release_by_an_operator_with_a_reason(world, cath_lab_store):
    quarantine = factories.LocationFactory(hospital=cath_lab_store.hospital, code="QUAR", name="隔离区",
                                           kind="QUARANTINE")
    unit = world.units["SN-A1"]
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=quarantine,
                   units=[unit], idempotency_key="into-quarantine")
    keeper, operator = client_for(world.keeper), client_for(world.operator)

    moved = keeper.post(reverse("web:moves"), {"idempotency_key": form_key(keeper.get(reverse("web:moves"))),
                                               "units": [unit.pk], "to_location": cath_lab_store.pk})
    assert moved.status_code == 409 and 'data-code="QUARANTINE_RELEASE_REQUIRED"' in text(moved)
    data = {"units": [unit.pk], "to_location": cath_lab_store.pk, "reason_code": "QC_PASSED", "note": "复检合格"}
    by_keeper = keeper.post(reverse("web:moves-release"), {
        **data, "idempotency_key": form_key(keeper.get(reverse("web:moves-release")))})
    assert by_keeper.status_code == 403 and "只有 SPD 运营人员或管理员可以解除隔离" in text(by_keeper)
    page = operator.get(reverse("web:moves-release"))
    assert "解除隔离" in text(page) and 'value="QC_PASSED"' in text(page)
    reviewed = operator.post(reverse("web:moves-release"), {**data, "idempotency_key": form_key(page)})
    assert reviewed.status_code == 200 and not Movement.objects.filter(unit=unit, kind="QUARANTINE_RELEASE").exists()
    released = operator.post(reverse("web:moves-release"), {**data, "idempotency_key": form_key(page),
                                                            "step": "confirm"})
    assert released.status_code == 302
    movement = Movement.objects.get(unit=unit, kind="QUARANTINE_RELEASE")
    assert (movement.reason_code, movement.note, movement.actor_user) == ("QC_PASSED", "复检合格", world.operator)
    unit.refresh_from_db()
    assert unit.location == cath_lab_store


def test_another_hospitals_unit_or_order_cannot_be_named(world):
    keeper = client_for(world.keeper)
    response = keeper.post(reverse("web:moves-scrap"), {"idempotency_key": "web-scrap-1",
                                                        "units": [world.foreign_unit.pk], "reason_code": "DAMAGED"})
    assert response.status_code == 400 and "未找到耗材" in text(response)
    world.foreign_unit.refresh_from_db()
    assert world.foreign_unit.status == "IN_STOCK"
    foreign_order = StockOrder.objects.exclude(hospital=world.keeper.hospital).first()
    if foreign_order is not None:
        assert keeper.get(reverse("web:moves-order", args=[foreign_order.pk])).status_code == 404


def test_a_form_without_its_key_is_refused(world, cath_lab_store):
    response = client_for(world.keeper).post(reverse("web:moves"), {
        "units": [world.units["SN-A1"].pk], "to_location": cath_lab_store.pk})
    assert response.status_code == 400 and "表单已过期" in text(response)
