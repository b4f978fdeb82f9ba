"""Bad input at the edges is a clear 4xx in the project's error shape, never a 500 nor an HTML page.

The fuzz test (tests/test_fuzz_api.py) covers what schemathesis generates; these are the cases it
is unlikely to reach: hostile JSON, files, sizes, calendar edges, malformed paths, huge logins.
"""
import datetime
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook
from rest_framework.test import APIClient

from inventory.errors import Refusal
from inventory.models import HisSettlementLine
from tests import factories
from tests.conftest import api_client_for

API = "/api/v1"


@pytest.fixture
def admin(hospital):
    return factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])


@pytest.fixture
def as_admin(admin):
    return api_client_for(admin)


def assert_error(response, status: int, code: str) -> dict:
    """The response is `status` with the project's error body whose code is `code`."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "detail", "problems"}
    assert body["code"] == code and body["code"] in Refusal.__members__
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["problems"] and all({"code", "detail"} <= set(problem) for problem in body["problems"])
    return body


def post_json(client, url: str, text: str, **extra):
    return client.generic("POST", url, text.encode("utf-8", "surrogatepass"), content_type="application/json", **extra)


# --- hostile JSON --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_json_nested_deeper_than_the_parser_can_go_is_a_parse_error(as_admin):
    response = post_json(as_admin, f"{API}/transfers/", "[" * 100_000 + "]" * 100_000)
    assert_error(response, 400, "PARSE_ERROR")


@pytest.mark.django_db
def test_malformed_json_is_a_parse_error(as_admin):
    assert_error(post_json(as_admin, f"{API}/transfers/", '{"units": [1,'), 400, "PARSE_ERROR")


@pytest.mark.django_db
@pytest.mark.parametrize("text", ['"a\\u0000b"', '"\\ud800"', '"x\\udfff"'])
def test_nul_and_lone_surrogates_in_json_fields_are_refused_where_they_are(as_admin, text):
    body = '{"code": "CAB-X", "name": "x", "kind": "CABINET_MQTT", "config": {"note": ' + text + "}}"
    response = post_json(as_admin, f"{API}/devices/", body)
    problem = assert_error(response, 400, "TEXT_INVALID")["problems"][0]
    assert "/config/note" in problem["detail"]


@pytest.mark.django_db
def test_a_lone_surrogate_in_a_key_or_a_string_field_is_refused(as_admin):
    assert_error(post_json(as_admin, f"{API}/manufacturers/", '{"name": "ab\\ud800"}'), 400, "TEXT_INVALID")
    assert_error(post_json(as_admin, f"{API}/manufacturers/", '{"\\ud800": 1, "name": "x"}'), 400, "TEXT_INVALID")


@pytest.mark.django_db
def test_nul_in_a_string_field_is_a_validation_error(as_admin):
    body = assert_error(as_admin.post(f"{API}/manufacturers/", {"name": "a\x00b"}, format="json"), 400, "TEXT_INVALID")
    assert body["problems"][0]["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", [10**30, -(10**30), 2**63, 1e308])
def test_numbers_beyond_int64_are_a_validation_error(as_admin, value):
    body = {"code": "CAB-Y", "name": "y", "kind": "CABINET_MQTT", "offline_after_seconds": value}
    response = as_admin.post(f"{API}/devices/", body, format="json")
    assert assert_error(response, 400, "INVALID_REQUEST")["problems"][0]["field"] == "offline_after_seconds"


@pytest.mark.django_db
@pytest.mark.parametrize("value", [{"a": 1}, ["a"], True])
def test_objects_lists_or_booleans_where_a_string_is_expected_are_a_validation_error(as_admin, value):
    response = as_admin.post(f"{API}/scans/resolve/", {"code": value}, format="json")
    assert assert_error(response, 400, "INVALID_REQUEST")["problems"][0]["field"] == "code"


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"text"', "null", "12"])
def test_a_body_that_is_not_an_object_is_a_validation_error(as_admin, body):
    response = post_json(as_admin, f"{API}/transfers/", body)
    assert response.status_code == 400
    assert response.json()["code"] in {"INVALID_REQUEST", "IDEMPOTENCY_KEY_MISSING"}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1e999999", "123456789012345678901234567890.123456789"])
def test_decimals_beyond_their_precision_are_a_validation_error(as_admin, hospital, supplier, value):
    product = factories.ProductFactory(hospital=hospital)
    body = f'{{"product": {product.pk}, "supplier": {supplier.pk}, "unit_price": {value}}}'
    response = post_json(as_admin, f"{API}/supply-agreements/", body)
    assert response.status_code == 400
    assert response.json()["code"] in {"INVALID_REQUEST", "PARSE_ERROR"}


# --- paging, paths, calendar edges ---------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("query", [
    "limit=99999999999999999999999", "offset=99999999999999999999999", "limit=-1&offset=-5",
    "limit=abc&offset=%00", "page=99999999999999999999", "limit=9223372036854775808&offset=9223372036854775807",
])
def test_huge_or_odd_paging_parameters_give_a_page(as_admin, query):
    response = as_admin.get(f"{API}/products/?{query}")
    assert response.status_code == 200
    assert response.json()["results"] == [] or "offset" not in query


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    "units/abc/", "units/99999999999999999999999999/", "units/-1/", "units/%00/", "units/%F0%9F%92%A9/",
    "units/1.5/", "products/1e9/trace/", "no-such-thing/", "units/1/no-such-action/",
])
def test_malformed_or_unknown_ids_in_api_paths_are_a_json_404(as_admin, path):
    body = assert_error(as_admin.get(f"{API}/{path}"), 404, "NOT_FOUND")
    assert "<html" not in body["detail"].lower()


@pytest.mark.django_db
def test_outside_the_api_an_unknown_page_stays_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(("start", "end"), [
    ("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31"), ("0001-01-01", "9999-12-31"), ("9999-12-31", "0001-01-01"),
])
def test_reconciliation_periods_at_the_calendar_edges_are_answered_not_crashed(as_admin, start, end):
    response = as_admin.post(f"{API}/reconciliation/runs/", {"period_start": start, "period_end": end}, format="json")
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["code"])


@pytest.mark.django_db
@pytest.mark.parametrize("period", ["0001-01", "9999-12", "0000-01", "2024-13", "99999-01"])
def test_settlement_periods_at_the_calendar_edges_are_answered_not_crashed(as_admin, supplier, period):
    listing = as_admin.get(f"{API}/settlements/", {"supplier": supplier.pk, "period": period})
    draft = as_admin.post(f"{API}/settlements/statements/", {"supplier": supplier.pk, "period": period}, format="json")
    for response in (listing, draft):
        assert response.status_code < 500, response.content[:300]
        if response.status_code >= 400:
            assert_error(response, response.status_code, response.json()["code"])


@pytest.mark.django_db
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59+08:00", "0001-01-01T00:00:00+14:00"])
def test_movement_filters_at_the_calendar_edges_are_answered_not_crashed(as_admin, moment):
    for query in ({"occurred_after": moment}, {"occurred_before": moment}, {"since": moment}):
        response = as_admin.get(f"{API}/movements/", query)
        assert response.status_code in (200, 400), response.content[:300]


# --- files ---------------------------------------------------------------------------------------

HIS_IMPORT = f"{API}/his/settlements/"
HEADER = "his_line_id,encounter,his_charge_code,nhsa_code,quantity,unit_price,amount,settled_at\n"


def upload(client, name: str, data: bytes):
    return client.post(HIS_IMPORT, {"file": SimpleUploadedFile(name, data)}, format="multipart")


@pytest.fixture
def as_operator(operator):
    return api_client_for(operator)


@pytest.mark.django_db
def test_a_csv_with_nul_bytes_is_refused_as_not_text(as_operator):
    data = (HEADER + "L1,ZY1,HIS1,,1,1,1,2024-05-01\n").encode().replace(b"ZY1", b"ZY\x001")
    assert_error(upload(as_operator, "s.csv", data), 400, "FILE_ENCODING_UNKNOWN")


@pytest.mark.django_db
def test_a_utf16_csv_is_refused_as_of_unknown_encoding(as_operator):
    assert_error(upload(as_operator, "s.csv", (HEADER * 2).encode("utf-16")), 400, "FILE_ENCODING_UNKNOWN")


@pytest.mark.django_db
def test_a_latin1_csv_that_is_not_gbk_is_refused(as_operator):
    data = HEADER.encode() + b"L1,\xff\xfe\xfd\x80,HIS1,,1,1,1,2024-05-01\n"
    response = upload(as_operator, "s.csv", data)
    assert response.status_code == 400
    assert response.json()["code"] in {"FILE_ENCODING_UNKNOWN", "SETTLEMENT_ROW_INVALID", "INVALID_ENCOUNTER"}


@pytest.mark.django_db
@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really a zip", b"\x00" * 64, b"<html>not a workbook</html>"])
def test_fake_xlsx_files_are_refused(as_operator, data):
    response = upload(as_operator, "s.xlsx", data)
    assert_error(response, 400, response.json()["code"])
    assert response.json()["code"] in {"FILE_UNREADABLE", "FILE_EMPTY", "INVALID_REQUEST"}


@pytest.mark.django_db
def test_a_zip_that_is_not_a_workbook_is_refused(as_operator):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert_error(upload(as_operator, "s.xlsx", buffer.getvalue()), 400, "FILE_UNREADABLE")


@pytest.mark.django_db
@pytest.mark.parametrize("cell", [b"HIS&#0;1", b"HIS\x001"])
def test_an_xlsx_cell_holding_nul_is_refused_and_nothing_stored(as_operator, cell):
    workbook = Workbook()
    workbook.active.append(HEADER.strip().split(","))
    workbook.active.append(["L1", "ZY1", "HISZZZ1", "", 1, 1, 1, "2024-05-01"])
    plain, patched = io.BytesIO(), io.BytesIO()
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(patched, "w") as target:
        for item in source.infolist():  # openpyxl will not write NUL; a hand-made file may hold it
            target.writestr(item, source.read(item).replace(b"HISZZZ1", cell))
    response = upload(as_operator, "s.xlsx", patched.getvalue())
    assert response.status_code == 400
    assert response.json()["code"] in {"FILE_UNREADABLE", "SETTLEMENT_ROW_INVALID"}
    assert not HisSettlementLine.objects.exists()


@pytest.mark.django_db
def test_json_settlement_lines_with_nul_are_row_problems(as_operator):
    lines = [{"his_line_id": "L1", "encounter": "ZY1", "his_charge_code": "A\x00", "quantity": 1, "unit_price": "1",
              "amount": "1", "settled_at": "2024-05-01"}]
    response = as_operator.post(HIS_IMPORT, {"batch": "b", "lines": lines}, format="json")
    problem = assert_error(response, 400, "SETTLEMENT_ROW_INVALID")["problems"][0]
    assert (problem["reason"], problem["item"]) == ("nul", {"row": 1, "field": "his_charge_code"})


# --- sizes and logins ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_json_body_over_the_limit_is_a_json_413_before_it_is_read(as_admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = post_json(as_admin, f"{API}/transfers/", json.dumps({"units": list(range(5000))}))
    body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert "10000" in body["detail"]


@pytest.mark.django_db
def test_a_form_body_over_the_limit_is_a_json_413(as_admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = as_admin.post(f"{API}/manufacturers/", {"name": "x" * 20_000})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.django_db
def test_a_file_over_its_limit_is_a_json_413(as_operator, settings):
    settings.SPD_HIS_SETTLEMENT_MAX_BYTES = 1000
    response = upload(as_operator, "s.csv", HEADER.encode() * 100)
    assert_error(response, 413, "FILE_TOO_LARGE")


@pytest.mark.django_db
def test_a_chunked_body_without_a_length_is_a_json_411(as_admin):
    response = as_admin.generic(
        "POST", f"{API}/devices/events/", b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "LENGTH_REQUIRED")


@pytest.mark.django_db
def test_a_megabyte_username_at_the_api_login_is_a_validation_error(hospital):
    response = APIClient().post(f"{API}/auth/token/", {"username": "u" * 2**20, "password": "x"}, format="json")
    assert assert_error(response, 400, "INVALID_REQUEST")["problems"][0]["field"] == "username"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_megabyte_username_or_password_at_the_web_login_shows_the_form_again(client, field):
    """On PostgreSQL this was a 500: django-axes stored the failed username in a varchar(255)."""
    from axes.models import AccessAttempt

    credentials = {"username": "keeper", "password": "x", field: "u" * 2**20}
    response = client.post("/login/", credentials)
    assert response.status_code == 200
    assert b"<form" in response.content
    assert not AccessAttempt.objects.exists()  # refused before authenticate(): not even a failure


@pytest.mark.django_db
def test_a_wrong_password_at_the_api_login_is_invalid_credentials(keeper):
    response = APIClient().post(f"{API}/auth/token/", {"username": "keeper", "password": "wrong"}, format="json")
    assert_error(response, 400, "INVALID_CREDENTIALS")


# --- the error shape and its languages -----------------------------------------------------------

@pytest.mark.django_db
def test_drf_errors_come_out_in_the_project_shape(as_admin, hospital):
    assert_error(APIClient().get(f"{API}/units/"), 401, "NOT_AUTHENTICATED")
    bad_token = APIClient(HTTP_AUTHORIZATION="Token nope")
    assert_error(bad_token.get(f"{API}/units/"), 401, "AUTHENTICATION_FAILED")
    assert_error(as_admin.put(f"{API}/transfers/", {}, format="json"), 405, "METHOD_NOT_ALLOWED")
    response = as_admin.generic("POST", f"{API}/transfers/", b"<a/>", content_type="application/xml")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    assert_error(api_client_for(nurse).post(f"{API}/manufacturers/", {"name": "x"}, format="json"), 403, "PERMISSION_DENIED")


@pytest.mark.django_db
def test_messages_follow_accept_language(as_admin):
    english = as_admin.get(f"{API}/units/abc/", HTTP_ACCEPT_LANGUAGE="en")
    chinese = as_admin.get(f"{API}/units/abc/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert english.json()["detail"] == "Resource not found."
    assert chinese.json()["detail"] == "未找到资源。"
    empty = {"to_location": 1, "units": [], "idempotency_key": "k1"}
    english = as_admin.post(f"{API}/transfers/", empty, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 400


@pytest.mark.parametrize("refusal", list(Refusal))
def test_every_refusal_has_an_english_and_a_chinese_message(refusal):
    status, english, chinese = refusal.value
    assert 400 <= status < 600
    assert english and chinese and english != chinese
    assert any("\u4e00" <= char <= "\u9fff" for char in chinese), refusal.name


def test_the_schema_documents_the_error_body_for_every_operation():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "detail", "problems"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "401", "403", "404", "413"} <= set(operation["responses"]), (method, path)


@pytest.mark.django_db
def test_a_server_error_under_the_api_is_json(as_admin, monkeypatch, settings):
    from inventory.api import stock

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(stock.UnitViewSet, "list", explode)
    client = api_client_for(factories.UserFactory(username="a2", hospital=None, is_superuser=True))
    client.raise_request_exception = False
    response = client.get(f"{API}/units/")
    body = assert_error(response, 500, "SERVER_ERROR")
    assert "boom" not in body["detail"]


def test_dates_of_the_calendar_edges_are_valid_python_dates():
    assert datetime.date.min.year == 1 and datetime.date.max.year == 9999


# --- what the fuzz test found --------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("config", [None, "text", ["a"], 3])
def test_a_device_config_that_is_not_an_object_is_a_validation_error(as_admin, config):
    body = {"code": "CAB-Z", "name": "z", "kind": "CABINET_MQTT", "config": config}
    response = as_admin.post(f"{API}/devices/", body, format="json")
    assert assert_error(response, 400, "INVALID_REQUEST")["problems"][0]["field"] == "config"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["units/", "units/1/"])
def test_http_trace_is_not_the_trace_action(as_admin, path):
    assert_error(as_admin.generic("TRACE", f"{API}/{path}"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["settlements/export/?format=csv", "settlements/statements/1/export/?format=xlsx"])
def test_options_on_a_file_export_answers_json(as_admin, path):
    response = as_admin.options(f"{API}/{path}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("moment", ["0363-02-07T11:49:11.2-17:03", "2024-01-01T00:00:00+23:59"])
def test_a_timestamp_filter_with_an_offset_the_database_refuses_is_a_400(as_admin, moment):
    response = as_admin.get(f"{API}/his/deliveries/", {"failing_since_before": moment})
    assert response.status_code in (200, 400)  # SQLite compares text; PostgreSQL refuses the offset
    if response.status_code == 400:
        assert_error(response, 400, "VALUE_OUT_OF_RANGE")
