"""Import of the HIS's settlement lines (结算明细): JSON or CSV/XLSX, all or nothing, idempotent."""
import csv
import datetime
import io
import threading
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from openpyxl import Workbook

from inventory.errors import Refused
from inventory.models import Charge, Consumption, Department, HisSettlementLine, Location
from inventory.services.his import import_settlement_lines, parse_settlement_file
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/his/settlements/"
ENGLISH = ["his_line_id", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount", "settled_at"]
CHINESE = ["明细号", "就诊号", "收费编码", "医保编码", "数量", "单价", "金额", "结算时间"]


def line(his_line_id="L1", **fields):
    return {
        "his_line_id": his_line_id, "encounter": "ZY20240001", "his_charge_code": "HIS000123",
        "nhsa_code": "C02010000000000001", "quantity": 1, "unit_price": "1200.00", "amount": "1200.00",
        "settled_at": "2024-05-01T10:30:00+08:00", **fields,
    }


def a_charge(hospital) -> Charge:
    department, _ = Department.objects.get_or_create(hospital=hospital, code="CATH", defaults={"name": "导管室"})
    location, _ = Location.objects.get_or_create(hospital=hospital, code="CS", defaults={
        "name": "二级库", "kind": Location.Kind.DEPARTMENT_STORE})
    product = factories.ProductFactory(hospital=hospital)
    consumption = Consumption.objects.create(
        hospital=hospital, product=product, location=location, encounter="ZY20240001", department=department,
        unit_price=Decimal("1200.00"), occurred_at=timezone.now(),
    )
    return Charge.objects.create(
        hospital=hospital, consumption=consumption, kind=Charge.Kind.CHARGE, encounter="ZY20240001",
        his_charge_code=product.his_charge_code, quantity=1, unit_price=Decimal("1200.00"), amount=Decimal("1200.00"),
    )


def csv_file(header, rows, *, encoding="utf-8-sig", name="settlement.csv"):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, text.getvalue().encode(encoding), content_type="text/csv")


def xlsx_file(header, rows, name="结算明细.xlsx"):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return SimpleUploadedFile(name, data.getvalue())


def test_json_lines_are_imported_and_linked_to_our_charge(hospital, operator):
    charge = a_charge(hospital)
    lines = [line("L1", spd_charge_id=f"charge-{charge.pk}"), line("L2", quantity=-1, amount="-1200.00")]

    response = api_client_for(operator).post(URL, {"batch": "2024-05-01", "lines": lines}, format="json")

    assert response.status_code == 201, response.data
    assert response.data == {"batch": "2024-05-01", "rows": 2, "created": 2, "skipped": 0, "linked": 1, "released": 0}
    first, second = HisSettlementLine.objects.filter(hospital=hospital).order_by("his_line_id")
    assert (first.charge, first.quantity, first.amount) == (charge, 1, Decimal("1200.00"))
    assert first.settled_at == datetime.datetime(2024, 5, 1, 2, 30, tzinfo=datetime.UTC)
    assert (second.charge, second.quantity, second.import_batch) == (None, -1, "2024-05-01")


def test_a_line_naming_our_charge_stores_the_charges_use_with_it(hospital, operator):
    """The reconciliation joins a line straight to the use it bills: whatever the form of the import
    (the id or our idempotency key, JSON or a file), the use is the charge's; a line naming none has none."""
    by_key, by_id = a_charge(hospital), a_charge(hospital)
    rows = [line("L1", spd_charge_id=f"charge-{by_key.pk}"), line("L3")]
    import_settlement_lines(hospital=hospital, rows=rows, batch="json")
    upload = csv_file([*ENGLISH, "spd_charge_id"], [["L2", "ZY1", "HIS1", "", "1", "1200.00", "1200.00",
                                                     "2024-05-01 08:00:00", str(by_id.pk)]])
    api_client_for(operator).post(URL, {"file": upload, "batch": "csv"}, format="multipart")

    assert dict(HisSettlementLine.objects.values_list("his_line_id", "use_id")) == {
        "L1": by_key.consumption_id, "L2": by_id.consumption_id, "L3": None}


def test_a_line_holds_a_use_exactly_when_it_names_a_charge(hospital):
    charge = a_charge(hospital)
    stored = import_settlement_lines(hospital=hospital, rows=[line("L1")], batch="b")
    assert stored.created == 1

    for fields in ({"charge": charge}, {"use": charge.consumption}):
        with pytest.raises(IntegrityError), transaction.atomic():
            HisSettlementLine.objects.filter(his_line_id="L1").update(**fields)


@pytest.mark.postgres
def test_the_database_refuses_a_line_whose_use_is_not_its_charges(hospital):
    charge, another = a_charge(hospital), a_charge(hospital)
    import_settlement_lines(hospital=hospital, rows=[line("L1", spd_charge_id=charge.pk)], batch="b")
    fields = {"hospital": hospital, "his_line_id": "L2", "encounter": "ZY1", "his_charge_code": "HIS1", "quantity": 1,
              "unit_price": Decimal(1), "amount": Decimal(1), "settled_at": timezone.now()}

    for write in (
        lambda: HisSettlementLine.objects.filter(his_line_id="L1").update(use=another.consumption),
        lambda: HisSettlementLine.objects.filter(his_line_id="L1").update(charge=another),
        lambda: HisSettlementLine.objects.create(**fields, charge=charge, use=another.consumption),
    ):
        with pytest.raises(IntegrityError, match="HIS_LINE_USE"), transaction.atomic():
            write()
    HisSettlementLine.objects.filter(his_line_id="L1").update(charge=another, use=another.consumption)
    assert HisSettlementLine.objects.get(his_line_id="L1").use_id == another.consumption_id


@pytest.mark.postgres
def test_the_migration_fills_the_use_of_every_line_naming_a_charge_and_goes_back(hospital):
    """The migration adding the use (0052) forward on stored lines (the use read from each one's charge), and back."""
    charges = [a_charge(hospital) for _ in range(3)]
    rows = [line(f"L{n}", spd_charge_id=charge.pk) for n, charge in enumerate(charges)] + [line("L9")]
    import_settlement_lines(hospital=hospital, rows=rows, batch="b")
    stored = dict(HisSettlementLine.objects.values_list("his_line_id", "use_id"))
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("inventory")
    [this] = [key for key in executor.loader.graph.nodes if key[0] == "inventory" and key[1].endswith("_his_line_use")]
    previous = [key for key in executor.loader.get_migration(*this).dependencies if key[0] == "inventory"]
    with connection.cursor() as cursor:  # the lines' deferred key checks now: ALTER TABLE refuses pending ones
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    executor.migrate(previous)
    with connection.cursor() as cursor:
        columns = {column.name for column in connection.introspection.get_table_description(
            cursor, HisSettlementLine._meta.db_table)}
        cursor.execute(f"SELECT his_line_id, charge_id FROM {HisSettlementLine._meta.db_table}")
        charged = dict(cursor.fetchall())
    assert "use_id" not in columns
    assert charged == {**{f"L{n}": charge.pk for n, charge in enumerate(charges)}, "L9": None}

    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    assert dict(HisSettlementLine.objects.values_list("his_line_id", "use_id")) == stored == {
        **{f"L{n}": charge.consumption_id for n, charge in enumerate(charges)}, "L9": None}


def test_a_csv_file_is_imported_with_or_without_bom(hospital, operator):
    rows = [["L1", "ZY1", "HIS1", "", "2", "10.50", "21.00", "2024-05-01 08:00:00"]]
    client = api_client_for(operator)

    with_bom = client.post(URL, {"file": csv_file(ENGLISH, rows)}, format="multipart")
    without_bom = client.post(
        URL, {"file": csv_file(ENGLISH, [["L2", *rows[0][1:]]], encoding="utf-8"), "batch": "b2"}, format="multipart"
    )

    assert with_bom.status_code == 201, with_bom.data
    assert with_bom.data["batch"] == "settlement.csv"
    assert without_bom.status_code == 201, without_bom.data
    stored = HisSettlementLine.objects.get(his_line_id="L1")
    assert (stored.encounter, stored.quantity, stored.unit_price, stored.nhsa_code) == ("ZY1", 2, Decimal("10.50"), "")
    assert stored.settled_at == datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.UTC), "local time, +08:00"


def test_a_gbk_csv_with_chinese_headers_is_imported(hospital, operator):
    rows = [["L1", "ZY1", "HIS1", "C01", "1", "99", "99", "2024/05/01 08:00"], ["L2", "ZY2", "HIS2", "", "3", "1", "3",
                                                                                "2024-05-02"]]
    upload = csv_file(CHINESE + ["患者备注"], [row + ["忽略"] for row in rows], encoding="gbk")

    response = api_client_for(operator).post(URL, {"file": upload, "batch": "五月"}, format="multipart")

    assert response.status_code == 201, response.data
    assert response.data["created"] == 2
    second = HisSettlementLine.objects.get(his_line_id="L2")
    assert second.settled_at == datetime.datetime(2024, 5, 1, 16, 0, tzinfo=datetime.UTC), "a date: local midnight"


def test_an_xlsx_file_with_chinese_headers_is_imported(hospital, operator):
    rows = [
        ["L1", "ZY1", "HIS1", "C01", 2, 10.5, 21, datetime.datetime(2024, 5, 1, 9, 15)],
        [None, None, None, None, None, None, None, None],
        [1002, "ZY2", "HIS2", None, -1, 3.5, -3.5, datetime.datetime(2024, 5, 2)],
    ]

    response = api_client_for(operator).post(URL, {"file": xlsx_file(CHINESE, rows)}, format="multipart")

    assert response.status_code == 201, response.data
    assert (response.data["rows"], response.data["created"], response.data["batch"]) == (2, 2, "结算明细.xlsx")
    first = HisSettlementLine.objects.get(his_line_id="L1")
    assert (first.quantity, first.unit_price, first.amount) == (2, Decimal("10.50"), Decimal("21.00"))
    assert first.settled_at == datetime.datetime(2024, 5, 1, 1, 15, tzinfo=datetime.UTC)
    assert HisSettlementLine.objects.get(his_line_id="1002").amount == Decimal("-3.50")


def test_invalid_rows_are_all_listed_with_their_row_number_and_nothing_is_stored(hospital, operator):
    lines = [
        line("L1"),
        line("L2", quantity=0),
        line("L3", unit_price="-1", settled_at="2024-05-01 10:30"),
        line("L4", encounter="110101199003077777"),
        line("", amount="12.345"),
    ]

    response = api_client_for(operator).post(URL, {"batch": "b", "lines": lines}, format="json")

    assert response.status_code == 400
    assert response.data["code"] == "SETTLEMENT_ROW_INVALID"
    found = [(p["item"]["row"], p["item"]["field"]) for p in response.data["problems"]]
    assert found == [
        (2, "quantity"), (3, "unit_price"), (3, "settled_at"), (4, "encounter"), (5, "his_line_id"), (5, "amount")
    ]
    assert "第 2 行 quantity：必须是非 0 的整数" in response.data["detail"]
    assert response.data["problems"][0]["reason"] == "whole_number"
    assert response.data["problems"][3]["code"] == "LOOKS_LIKE_PERSONAL_ID"
    assert not HisSettlementLine.objects.exists()


def test_file_rows_are_reported_by_their_line_in_the_file(hospital, operator):
    rows = [["L1", "ZY1", "HIS1", "", "1", "1", "1", "2024-05-01"], ["L2", "ZY2", "HIS2", "", "x", "1", "1", "2024-05-01"]]

    response = api_client_for(operator).post(URL, {"file": csv_file(ENGLISH, rows)}, format="multipart")

    assert response.status_code == 400
    assert [p["item"] for p in response.data["problems"]] == [{"row": 3, "field": "quantity"}]
    assert not HisSettlementLine.objects.exists()


def test_a_file_lacking_columns_or_of_another_kind_is_refused(hospital, operator):
    client = api_client_for(operator)
    missing = client.post(URL, {"file": csv_file(ENGLISH[:3], [["L1", "ZY1", "HIS1"]])}, format="multipart")
    other = client.post(URL, {"file": SimpleUploadedFile("s.xls", b"\xd0\xcf\x11\xe0")}, format="multipart")
    broken = client.post(URL, {"file": SimpleUploadedFile("s.xlsx", b"not a zip")}, format="multipart")

    assert missing.status_code == 400
    assert missing.data["code"] == "FILE_COLUMNS_MISSING"
    assert "quantity, unit_price, amount, settled_at" in missing.data["detail"]
    assert other.status_code == broken.status_code == 400
    assert (other.data["code"], broken.data["code"]) == ("FILE_TYPE_UNSUPPORTED", "FILE_UNREADABLE")
    assert ".csv 或 .xlsx" in other.data["detail"]
    assert "XLSX" in broken.data["detail"]


def test_importing_the_same_lines_again_skips_them(hospital, operator):
    client = api_client_for(operator)
    body = {"batch": "b1", "lines": [line("L1"), line("L2")]}
    assert client.post(URL, body, format="json").status_code == 201

    again = client.post(URL, {"batch": "b2", "lines": [line("L1"), line("L2"), line("L3")]}, format="json")
    replay = client.post(URL, {"batch": "b3", "lines": [line("L1")]}, format="json")

    assert again.status_code == 201, again.data
    assert (again.data["created"], again.data["skipped"]) == (1, 2)
    assert replay.status_code == 200
    assert (replay.data["created"], replay.data["skipped"]) == (0, 1)
    assert HisSettlementLine.objects.count() == 3
    assert HisSettlementLine.objects.get(his_line_id="L1").import_batch == "b1"


def test_a_line_imported_again_with_other_content_is_a_409_conflict(hospital, operator):
    client = api_client_for(operator)
    client.post(URL, {"batch": "b1", "lines": [line("L1")]}, format="json")

    conflict = client.post(URL, {"batch": "b2", "lines": [line("L2"), line("L1", amount="1300.00")]}, format="json")

    assert conflict.status_code == 409
    [problem] = conflict.data["problems"]
    assert problem["code"] == "HIS_LINE_CONFLICT"
    assert problem["item"] == {"row": 2, "field": "his_line_id", "imported_in": "b1"}
    assert list(HisSettlementLine.objects.values_list("his_line_id", "amount")) == [("L1", Decimal("1200.00"))]


def test_the_same_line_twice_in_one_import_counts_once_and_differing_twins_are_refused(hospital):
    report = import_settlement_lines(hospital=hospital, rows=[line("L1"), line("L1")], batch="b")
    assert (report.created, report.skipped) == (1, 0)

    with pytest.raises(Refused) as refused:
        import_settlement_lines(hospital=hospital, rows=[line("L2"), line("L2", quantity=2)], batch="b")
    assert refused.value.problems[0].item == {"row": 2, "field": "his_line_id"}


def test_lines_and_charges_are_scoped_to_the_callers_hospital(hospital, other_hospital, operator):
    theirs = a_charge(other_hospital)
    import_settlement_lines(hospital=other_hospital, rows=[line("L1")], batch="b")
    client = api_client_for(operator)

    assert client.get(URL).data["results"] == []
    same_id = client.post(URL, {"batch": "b", "lines": [line("L1")]}, format="json")
    foreign_charge = client.post(URL, {"batch": "b", "lines": [line("L2", spd_charge_id=theirs.pk)]}, format="json")

    assert same_id.status_code == 201, "line ids are unique per hospital"
    assert foreign_charge.status_code == 400
    assert foreign_charge.data["problems"][0]["item"] == {"row": 1, "field": "spd_charge_id"}
    assert [row["his_line_id"] for row in client.get(URL).data["results"]] == ["L1"]


def test_any_hospital_user_reads_but_only_admins_and_operators_import(hospital, auditor, keeper, operator):
    import_settlement_lines(hospital=hospital, rows=[line("L1")], batch="b")
    body = {"batch": "b", "lines": [line("L2")]}
    admin = factories.UserFactory(hospital=hospital, roles=["admin"])

    assert api_client_for(auditor).get(URL).status_code == 200
    assert api_client_for(keeper).get(URL).status_code == 200
    assert api_client_for(auditor).post(URL, body, format="json").status_code == 403
    assert api_client_for(keeper).post(URL, body, format="json").status_code == 403
    assert api_client_for(admin).post(URL, body, format="json").status_code == 201
    assert api_client_for(operator).get("/api/v1/his/deliveries/").status_code == 200


def test_settlement_lines_are_filtered_by_encounter_code_and_time(hospital, auditor):
    import_settlement_lines(
        hospital=hospital, batch="b",
        rows=[
            line("L1", settled_at="2024-05-01T10:00:00+08:00"),
            line("L2", encounter="ZY2", settled_at="2024-05-02T10:00:00+08:00"),
            line("L3", his_charge_code="HIS9", settled_at="2024-05-03T10:00:00+08:00"),
        ],
    )
    client = api_client_for(auditor)

    def ids(**params):
        return [row["his_line_id"] for row in client.get(URL, params).data["results"]]

    assert ids(encounter="ZY2") == ["L2"]
    assert ids(his_charge_code="HIS9") == ["L3"]
    assert ids(settled_after="2024-05-02T00:00:00+08:00") == ["L2", "L3"]
    assert ids(settled_before="2024-05-02T00:00:00+08:00") == ["L1"]


def test_parse_settlement_file_keeps_the_file_line_and_local_times():
    upload = io.BytesIO("明细号,就诊号,收费编码,数量,单价,金额,结算时间\n\nA,Z1,H1,1,2,2,2024-05-01 08:00\n".encode())

    [row] = parse_settlement_file(upload, "x.CSV")

    assert row["_row"] == 3
    assert (row["his_line_id"], row["quantity"]) == ("A", "1")
    assert row["settled_at"] == datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_file_at_once_store_each_line_once(hospital):
    rows = [line(f"L{n}") for n in range(50)]
    barrier, reports = threading.Barrier(2), []

    def run():
        try:
            barrier.wait(timeout=10)
            reports.append(import_settlement_lines(hospital=hospital, rows=rows, batch="b"))
        except Exception as error:  # the test inspects every outcome
            reports.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted((r.created, r.skipped) for r in reports) == [(0, 50), (50, 0)], reports
    assert HisSettlementLine.objects.count() == 50
