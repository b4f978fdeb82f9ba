"""The web pages through Django's test client: who may see what, scoping, filters, exports, the
trace, scanning, alerts, languages and error messages. Runs on SQLite and on PostgreSQL."""
import csv
import io
import json
import string

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from openpyxl import load_workbook

from devices.models import Device
from inventory.actors import Actor
from inventory.errors import Problem, Refusal
from inventory.models import Alert, Unit
from inventory.selectors.dashboard import dashboard as dashboard_figures
from inventory.selectors.stock import StockScope
from inventory.services.alerts import expiry_tiers
from inventory.services.stock import transfer_stock
from inventory.web.problems import ShownProblem
from tests import factories
from tests.factories import gs1_udi
from tests.web.conftest import ENCOUNTER

pytestmark = pytest.mark.django_db

PAGES = ["web:dashboard", "web:stock", "web:stock-lots", "web:alerts", "web:station", "web:reconciliation"]


def client_for(user, language: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if language:
        client.cookies["django_language"] = language
    return client


def text(response) -> str:
    return response.content.decode()


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*PAGES, "web:scan"])
def test_every_page_sends_a_stranger_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_unit_trace_also_needs_a_login(client, world):
    response = client.get(reverse("web:unit-trace", args=[world.used.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_login_page_is_chinese_by_default_and_english_on_request(client):
    assert "登录" in text(client.get("/login/"))
    client.cookies["django_language"] = "en"
    page = text(client.get("/login/"))
    assert "Sign in" in page and "登录" not in page


def test_signing_in_leads_to_the_dashboard_and_a_wrong_password_says_so(client, keeper):
    wrong = client.post("/login/", {"username": "keeper", "password": "nope"})
    assert wrong.status_code == 200
    assert 'class="problems"' in text(wrong) and "请输入一个正确的" in text(wrong)

    right = client.post("/login/", {"username": "keeper", "password": "pw-Secret-123"})
    assert right.status_code == 302 and right["Location"] == "/"
    assert "首页" in text(client.get("/"))


def test_signing_out_is_a_post(client, keeper):
    client.force_login(keeper)
    assert client.post(reverse("web:logout")).status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("name", PAGES)
def test_every_page_opens_for_the_warehouse(world, name):
    assert client_for(world.keeper).get(reverse(name)).status_code == 200


def test_a_user_without_a_role_or_a_hospital_is_refused_with_a_readable_page(world, hospital):
    no_role = factories.UserFactory(hospital=hospital, roles=["nobody"])
    no_hospital = factories.UserFactory(hospital=None, roles=["warehouse"])
    for user in (no_role, no_hospital):
        response = client_for(user).get("/")
        assert response.status_code == 403
        assert "无权" in text(response)


def test_navigation_follows_the_role(world):
    keeper_nav = text(client_for(world.keeper).get("/"))
    nurse_nav = text(client_for(world.nurse).get("/"))
    auditor_nav = text(client_for(world.auditor).get("/"))
    for page in (keeper_nav, nurse_nav, auditor_nav):
        assert 'href="/stock/"' in page and 'href="/alerts/"' in page
    assert 'href="/reconciliation/"' in keeper_nav and 'href="/reconciliation/"' in auditor_nav
    assert 'href="/reconciliation/"' not in nurse_nav
    assert client_for(world.nurse).get(reverse("web:reconciliation")).status_code == 403


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_counts_alerts_expiry_stock_value_use_cabinets_and_his(world):
    page = text(client_for(world.keeper).get("/"))
    figures = client_for(world.keeper).get("/").context["figures"]
    kinds = {count.kind: count for count in figures.alerts}
    assert kinds["NEAR_EXPIRY"].critical == 1 and kinds["DEVICE_OFFLINE"].open == 1
    assert figures.open_alerts == 2  # the other hospital's alert is not counted
    assert figures.consumption.uses == 1 and str(figures.consumption.amount) == "1200.00"
    assert (figures.cabinets.online, [device.code for device in figures.cabinets.offline]) == (0, ["CAB-CATH-1"])
    assert (figures.his.failing, figures.his.gave_up) == (1, 0)
    warehouse = next(row for row in figures.stock_value.locations if row.location_id == world.warehouse.pk)
    # SN-A1 + SN-A2 own (2 × 1200), SN-C1 consignment (8800), 20 infusion sets at 3.50 own
    assert (warehouse.units, [(q.amount, q.measure) for q in warehouse.lot_quantities]) == (3, [(20, world.lot_product.unit_of_measure)])
    assert (str(warehouse.owned_value), str(warehouse.consignment_value)) == ("2470.00", "8800.00")
    assert "¥11,270.00" in page and "¥1,200.00" in page
    assert "今日患者使用" in page and "导管室智能柜1号（RFID）" in page


def test_a_nurse_dashboard_and_stock_show_their_department_only(world, cath_lab_store):
    """The figures a departmental person's dashboard is built from (a nurse's own home, tested in
    tests/web/test_nurse_pages.py, shows her work instead) and the stock page are of her department."""
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   units=[world.units["SN-A2"]], idempotency_key="to-store")
    nurse = client_for(world.nurse)
    figures = dashboard_figures(StockScope.of(world.nurse), tiers=expiry_tiers())
    assert [row.location_id for row in figures.stock_value.locations] == [cath_lab_store.pk]
    assert {count.kind for count in figures.alerts} == {"DEVICE_OFFLINE"}
    assert figures.consumption.uses == 1
    stock = nurse.get(reverse("web:stock"), {"status": "ANY"})
    assert [unit.serial for unit in stock.context["page"]] == ["SN-A2"]
    assert "仅显示您所在科室" in text(stock)


# --- stock ----------------------------------------------------------------------------------------


def serials(response) -> list[str]:
    """The serials the stock page lists (none when it shows no list)."""
    return sorted(unit.serial for unit in response.context.get("page") or [])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["SN-A1", "SN-A2", "SN-C1"]),
        ({"status": "ANY"}, ["SN-A1", "SN-A2", "SN-A3", "SN-C1"]),
        ({"status": "CONSUMED"}, ["SN-A3"]),
        ({"consignment": "yes"}, ["SN-C1"]),
        ({"consignment": "no"}, ["SN-A1", "SN-A2"]),
        ({"q": "sn-a2"}, ["SN-A2"]),
        ({"q": "可降解"}, ["SN-C1"]),
    ],
)
def test_stock_filters(world, query, expected):
    assert serials(client_for(world.keeper).get(reverse("web:stock"), query)) == expected


def test_stock_filters_by_product_location_supplier_and_expiry(world):
    keeper = client_for(world.keeper)
    stock = reverse("web:stock")
    assert serials(keeper.get(stock, {"product": world.consigned_product.internal_code})) == ["SN-C1"]
    assert serials(keeper.get(stock, {"product": world.consigned_product.internal_code.lower()})) == ["SN-C1"]
    assert serials(keeper.get(stock, {"product": world.product.udi_di})) == ["SN-A1", "SN-A2"]
    scanned = gs1_udi(world.product.udi_di, serial="SN-A9", lot="LOT-A")
    assert serials(keeper.get(stock, {"product": scanned, "status": "ANY"})) == ["SN-A1", "SN-A2", "SN-A3"]
    assert serials(keeper.get(stock, {"supplier": world.supplier.pk, "status": "ANY"})) == ["SN-A1", "SN-A2", "SN-A3"]
    assert serials(keeper.get(stock, {"location": world.cabinet.pk, "status": "ANY"})) == []
    assert serials(keeper.get(stock, {"location": world.warehouse.pk})) == ["SN-A1", "SN-A2", "SN-C1"]
    expiry = world.units["SN-A1"].expiry
    assert serials(keeper.get(stock, {"expiry_before": expiry.isoformat()})) == ["SN-A1", "SN-A2", "SN-C1"]
    assert serials(keeper.get(stock, {"expiry_before": "2000-01-01"})) == []


def test_a_scanned_udi_in_the_search_finds_its_unit(world):
    code = gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A")
    assert serials(client_for(world.keeper).get(reverse("web:stock"), {"q": code})) == ["SN-A2"]


def test_a_bad_filter_value_is_explained_and_no_list_pretends_to_answer(world):
    response = client_for(world.keeper).get(reverse("web:stock"), {"expiry_before": "not-a-date", "q": "SN-A1"})
    assert response.status_code == 400 and serials(response) == []
    assert 'class="problems"' in text(response) and "有效期截至" in text(response)
    assert 'data-note="invalid-filter"' in text(response) and 'data-table="units"' not in text(response)
    export = client_for(world.keeper).get(reverse("web:stock"), {"expiry_before": "not-a-date", "export": "csv"})
    assert export.status_code == 400 and export["Content-Type"].startswith("text/html")


def test_another_hospitals_product_cannot_be_chosen_as_a_filter(world):
    foreign_product = world.foreign_unit.product
    response = client_for(world.keeper).get(
        reverse("web:stock"), {"product": foreign_product.internal_code, "status": "ANY"})
    assert response.status_code == 400 and serials(response) == []
    assert 'class="problems"' in text(response)


def test_an_unknown_product_code_is_explained_and_lists_nothing(world):
    response = client_for(world.keeper).get(reverse("web:stock"), {"product": "NO-SUCH-CODE"})
    assert response.status_code == 400 and serials(response) == []  # not the whole stock, as if it matched
    page = text(response)
    assert 'class="problems"' in page and "本院目录中没有编码为“NO-SUCH-CODE”的产品" in page
    assert 'value="NO-SUCH-CODE"' in page  # what was typed stays in the field


def test_the_product_field_suggests_the_persons_products_as_one_types(world):
    suggest = reverse("web:product-suggestions")
    keeper = client_for(world.keeper)
    by_code = keeper.get(suggest, {"q": world.consigned_product.internal_code[:-1].lower()}).json()["products"]
    assert world.consigned_product.internal_code in [product["code"] for product in by_code]
    by_name = keeper.get(suggest, {"q": "可降解"}).json()["products"]
    assert by_name == [{"code": world.consigned_product.internal_code,
                        "label": " ".join(filter(None, [world.consigned_product.name,
                                                        world.consigned_product.specification]))}]
    foreign = world.foreign_unit.product
    assert keeper.get(suggest, {"q": foreign.internal_code}).json()["products"] == []  # another hospital's
    assert keeper.get(suggest, {"q": "  "}).json() == {"products": []}
    assert Client().get(suggest, {"q": "a"}).status_code == 302  # signed in only


def test_product_suggestions_are_capped(world):
    from inventory.selectors.stock import SUGGESTIONS

    factories.ProductFactory.create_batch(SUGGESTIONS + 5, hospital=world.product.hospital, name="批量导管")
    products = client_for(world.keeper).get(reverse("web:product-suggestions"), {"q": "批量"}).json()["products"]
    assert len(products) == SUGGESTIONS
    assert [product["code"] for product in products] == sorted(product["code"] for product in products)


def test_stock_is_paginated(world, monkeypatch):
    from inventory.web.views import stock

    monkeypatch.setattr(stock, "PAGE_SIZE", 2)
    keeper = client_for(world.keeper)
    first = keeper.get(reverse("web:stock"))
    second = keeper.get(reverse("web:stock"), {"page": 2})
    assert (len(first.context["page"]), len(second.context["page"])) == (2, 1)
    assert 'href="?page=2"' in text(first)


def test_lot_balances_are_listed_with_their_value(world):
    response = client_for(world.keeper).get(reverse("web:stock-lots"))
    rows = list(response.context["page"])
    assert [(row.lot, row.quantity) for row in rows] == [("L-2026", 20)]
    assert "¥70.00" in text(response)
    assert list(client_for(world.keeper).get(reverse("web:stock-lots"), {"consignment": "yes"}).context["page"]) == []


def test_units_export_as_csv_with_the_filters_and_chinese_headers(world):
    response = client_for(world.keeper).get(reverse("web:stock"), {"export": "csv", "consignment": "no"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="stock-units-')
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:6] == ["院内码", "产品", "规格型号", "UDI-DI", "批号", "序列号"]
    assert sorted(row[5] for row in rows[1:]) == ["SN-A1", "SN-A2"]
    assert {row[7] for row in rows[1:]} == {"在库"}


def test_units_export_as_xlsx_in_english_when_the_person_reads_english(world):
    response = client_for(world.keeper, "en").get(reverse("web:stock"), {"export": "xlsx", "status": "ANY"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Internal code", "Product", "Specification")
    by_serial = {row[5]: row for row in rows[1:]}
    assert set(by_serial) == {"SN-A1", "SN-A2", "SN-A3", "SN-C1"}
    assert by_serial["SN-A3"][7] == "Consumed" and by_serial["SN-C1"][11] == 8800


def test_exports_never_hand_a_spreadsheet_a_formula(world):
    world.product.name = "=HYPERLINK(\"http://evil\")"
    world.product.save()
    csv_body = b"".join(client_for(world.keeper).get(reverse("web:stock"), {"export": "csv"}).streaming_content)
    assert "'=HYPERLINK" in csv_body.decode()
    xlsx = client_for(world.keeper).get(reverse("web:stock"), {"export": "xlsx"})
    names = [row[1] for row in load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://evil\")" in names


def test_lots_export(world):
    response = client_for(world.keeper).get(reverse("web:stock-lots"), {"export": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))
    assert rows[0][3] == "批号" and len(rows) == 2
    assert (rows[1][3], rows[1][7], rows[1][10]) == ("L-2026", "20", "70.00")


# --- trace and scanning ---------------------------------------------------------------------------


def test_the_trace_shows_origin_acceptance_movements_session_use_charge_and_his(world):
    response = client_for(world.keeper).get(reverse("web:unit-trace", args=[world.used.pk]))
    page = text(response)
    assert response.status_code == 200
    assert world.supplier.name in page and world.supplier.uscc in page
    assert "DN-SN-A1" in page  # the delivery note
    assert "验收" in page and "已验收" in page
    for kind in ("入库", "上架", "移库", "已取出", "使用"):
        assert kind in page
    assert 'data-document="cabinet-session"' in page and "护士" in page
    assert ENCOUNTER in page and "PCI" in page
    assert "推送失败，正在重试" in page and "HIS answered 503" in page
    assert "¥1,200.00" in page


def test_the_trace_names_people_by_their_name_and_says_its_times_are_beijing_time(world):
    world.keeper.first_name, world.keeper.last_name = "建国", "李"
    world.keeper.save(update_fields=["first_name", "last_name"])
    page = text(client_for(world.keeper).get(reverse("web:unit-trace", args=[world.used.pk])))
    assert "操作人 建国 李" in page and "操作人 keeper" not in page
    assert "时间为北京时间（UTC+8）" in page


def test_another_hospitals_unit_does_not_exist(world):
    assert client_for(world.keeper).get(reverse("web:unit-trace", args=[world.foreign_unit.pk])).status_code == 404


def test_a_nurse_traces_units_of_her_department_only(world):
    nurse = client_for(world.nurse)
    assert nurse.get(reverse("web:unit-trace", args=[world.used.pk])).status_code == 200
    response = nurse.get(reverse("web:unit-trace", args=[world.units["SN-A1"].pk]))
    assert response.status_code == 404 and "未找到" in text(response)


def scan(client, code, *, json=True):
    headers = {"Accept": "application/json"} if json else {}
    return client.get(reverse("web:scan"), {"code": code}, headers=headers)


def test_a_scan_with_its_group_separator_opens_the_trace(world):
    code = gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A")
    assert "\x1d" in code
    answer = scan(client_for(world.keeper), code)
    assert answer.status_code == 200
    assert answer.json()["ok"] is True
    assert answer.json()["redirect"] == reverse("web:unit-trace", args=[world.units["SN-A2"].pk])

    plain = scan(client_for(world.keeper), code, json=False)
    assert plain.status_code == 302 and plain["Location"] == answer.json()["redirect"]


def test_the_stations_gs_substitute_is_read_as_a_group_separator(world, hospital):
    station = Device.objects.create(hospital=hospital, code="WS-1", name="中心库扫码工作站",
                                    kind=Device.Kind.WEDGE_SCANNER, config={"gs_substitute": "|"})
    keeper = client_for(world.keeper)
    code = gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A").replace("\x1d", "|")
    assert scan(keeper, code).json()["ok"] is False  # without the station, "|" is part of the lot

    response = keeper.post(reverse("web:station"), {"station": station.pk})
    assert response.status_code == 302 and response.cookies["spd_station"].value == str(station.pk)
    assert scan(keeper, code).json()["redirect"] == reverse("web:unit-trace", args=[world.units["SN-A1"].pk])
    assert 'data-gs-substitute="|"' in text(keeper.get("/"))


def test_a_failed_scan_says_why_in_the_persons_language(world):
    answer = scan(client_for(world.keeper), gs1_udi("06901234567892", serial="NOPE"))
    assert answer.status_code == 400
    assert answer.json()["problems"][0]["code"] == "PRODUCT_UNKNOWN"
    assert "本院目录中没有" in answer.json()["problems"][0]["detail"]

    unknown_serial = scan(client_for(world.keeper, "en"), gs1_udi(world.product.udi_di, serial="NOPE"))
    assert unknown_serial.status_code == 404
    assert unknown_serial.json()["problems"][0]["detail"] == "Unit not found."

    page = scan(client_for(world.keeper), "not a code", json=False)
    assert page.status_code == 400 and 'id="scan-again"' in text(page)
    assert "这个条码无法识别为 UDI：请重新扫描" in text(page) and "UDI 无法识别" not in text(page)


def test_scanning_another_hospitals_unit_finds_nothing(world):
    code = gs1_udi(world.foreign_unit.product.udi_di, serial="SN-X1")
    assert scan(client_for(world.keeper), code).json()["problems"][0]["code"] == "PRODUCT_UNKNOWN"


# --- alerts ---------------------------------------------------------------------------------------


def test_alerts_are_listed_for_the_own_hospital_in_the_readers_language(world):
    response = client_for(world.keeper).get(reverse("web:alerts"))
    alerts = list(response.context["page"])
    assert {alert.kind for alert in alerts} == {"NEAR_EXPIRY", "DEVICE_OFFLINE"}
    page = text(response)
    assert "将于 2026-12-20 过期，剩余 27 天" in page and "设备 CAB-CATH-1" in page
    assert 'data-action="acknowledge"' in page
    english = text(client_for(world.keeper, "en").get(reverse("web:alerts")))
    assert "expires on 2026-12-20: 27 days left" in english


def test_alert_filters(world):
    keeper = client_for(world.keeper)
    assert [a.kind for a in keeper.get(reverse("web:alerts"), {"kind": "DEVICE_OFFLINE"}).context["page"]] == [
        "DEVICE_OFFLINE"
    ]
    assert [a.severity for a in keeper.get(reverse("web:alerts"), {"severity": "CRITICAL"}).context["page"]] == [
        "CRITICAL"
    ]
    assert list(keeper.get(reverse("web:alerts"), {"status": "RESOLVED"}).context["page"]) == []


def test_acknowledge_then_resolve_with_a_note(world):
    keeper = client_for(world.keeper)
    back = reverse("web:alerts") + "?kind=NEAR_EXPIRY"
    ack = keeper.post(reverse("web:alert-acknowledge", args=[world.alert.pk]), {"note": "在查", "next": back})
    assert ack.status_code == 302 and ack["Location"] == back
    world.alert.refresh_from_db()
    assert (world.alert.status, world.alert.acknowledged_by, world.alert.acknowledge_note) == (
        "ACKNOWLEDGED", world.keeper, "在查"
    )
    assert "已确认预警" in text(keeper.get(back))

    keeper.post(reverse("web:alert-resolve", args=[world.alert.pk]), {"note": "已退货给供应商"})
    world.alert.refresh_from_db()
    assert (world.alert.status, world.alert.resolved_by, world.alert.resolve_note) == (
        "RESOLVED", world.keeper, "已退货给供应商"
    )
    assert world.alert.pk not in [alert.pk for alert in keeper.get(reverse("web:alerts")).context["page"]]


def test_resolving_without_a_note_is_refused_with_a_message(world):
    keeper = client_for(world.keeper)
    response = keeper.post(reverse("web:alert-resolve", args=[world.alert.pk]), {"note": "  "}, follow=True)
    world.alert.refresh_from_db()
    assert world.alert.status == "OPEN"
    assert "请说明预警是如何解决的" in text(response) and 'class="message error"' in text(response)


def test_auditors_read_alerts_but_cannot_handle_them(world):
    auditor = client_for(world.auditor)
    page = text(auditor.get(reverse("web:alerts")))
    assert 'data-action="acknowledge"' not in page and "只读" in page
    assert auditor.post(reverse("web:alert-acknowledge", args=[world.alert.pk])).status_code == 403
    world.alert.refresh_from_db()
    assert world.alert.status == "OPEN"


def test_another_hospitals_alert_cannot_be_handled_and_a_get_changes_nothing(world):
    keeper = client_for(world.keeper)
    foreign = Alert.objects.exclude(hospital=world.keeper.hospital).get()
    assert keeper.post(reverse("web:alert-acknowledge", args=[foreign.pk])).status_code == 404
    assert keeper.get(reverse("web:alert-acknowledge", args=[world.alert.pk])).status_code == 405


# --- languages and errors -------------------------------------------------------------------------


def test_the_language_switch_changes_the_pages_and_comes_back(world):
    keeper = client_for(world.keeper)
    switched = keeper.post("/i18n/setlang/", {"language": "en", "next": "/stock/"})
    assert switched.status_code == 302 and switched["Location"] == "/stock/"
    assert "Stock value by location" in text(keeper.get("/"))
    keeper.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "各库位库存金额" in text(keeper.get("/"))


def _filled(refusal: Refusal) -> Problem:
    names = {name for template in refusal.value[1:] for _, name, _, _ in string.Formatter().parse(template) if name}
    return Problem(refusal, {name: f"<{name}>" for name in names})


@pytest.mark.parametrize("refusal", list(Refusal), ids=lambda refusal: refusal.name)
def test_every_refusal_is_shown_readable_in_both_languages(refusal):
    for language, column in (("zh-hans", 2), ("en", 1)):
        with translation.override(language):
            problem = _filled(refusal)
            html = render_to_string("web/_errors.html", {"problems": [ShownProblem(problem.code, problem.detail)]})
        assert f'data-code="{refusal.name}"' in html
        expected = refusal.value[column].format(**problem.params)
        assert expected.replace("<", "&lt;").replace(">", "&gt;") in html.replace("&#x27;", "'")
        assert "{" not in problem.detail


def test_a_locked_out_person_gets_a_readable_page(rf):
    from inventory.web.views.auth import locked_out

    request = rf.post("/login/")
    request.user = AnonymousUser()
    with translation.override("zh-hans"):
        response = locked_out(request)
    assert response.status_code == 429 and "登录失败次数过多" in response.content.decode()


def test_not_found_pages_are_readable(world):
    response = client_for(world.keeper).get("/units/987654/")
    assert response.status_code == 404 and "未找到" in text(response) and "返回首页" in text(response)


def test_unit_model_labels_are_translated(world):
    with translation.override("zh-hans"):
        assert str(Unit._meta.get_field("serial").verbose_name) == "序列号"
        assert Alert.Kind.RETURN_OVERDUE.label == "定时回库预警"


def _catalog_entries() -> list[tuple[list[str], str]]:
    """(comment lines, one "msgid"/"msgid_plural"/"msgstr…" line per key with its text joined) per entry."""
    path = settings.LOCALE_PATHS[0] / "zh_Hans" / "LC_MESSAGES" / "django.po"
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        comments, fields, key = [], {}, None
        for line in block.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                comments.append(line)
            elif line.startswith('"'):
                fields[key] += json.loads(line)
            else:
                key, _, value = line.partition(" ")
                fields[key] = json.loads(value)
        entries.append((comments, fields))
    return entries


def test_the_chinese_catalog_is_complete_and_compiled():
    entries = [(comments, fields) for comments, fields in _catalog_entries() if fields.get("msgid")]
    assert len(entries) > 400
    assert not [fields["msgid"] for comments, fields in entries if any("fuzzy" in line for line in comments)]
    untranslated = [fields["msgid"] for _, fields in entries
                    if not (fields.get("msgstr") or fields.get("msgstr[0]"))]
    assert untranslated == []
    with translation.override("zh-hans"):
        stale = [fields["msgid"] for _, fields in entries
                 if "msgstr" in fields and "msgctxt" not in fields and gettext(fields["msgid"]) != fields["msgstr"]]
    assert stale == [], "run manage.py compilemessages --ignore=.venv"
