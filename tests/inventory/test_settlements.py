"""Consignment settlement (寄售结算): what is owed a supplier, statements confirmed once, exports, API.

Consumptions are written with the ORM as the consumption service leaves them (a consignment unit
used: `was_consignment`, price = the unit's cost), so these tests do not depend on that service.
"""
import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from openpyxl import load_workbook

from inventory.actors import Actor
from inventory.api.settlements import EXPORT_HEADER, TOTALS_LABEL
from inventory.errors import Refused
from inventory.models import (
    Consumption,
    Owner,
    SupplierSettlement,
    SupplierSettlementLine,
    Unit,
    UnitStatus,
)
from inventory.selectors.settlements import settlement_summary, unsettled_consignment_consumptions
from inventory.services.settlements import confirm_settlement, draft_settlement
from tests import factories
from tests.concurrency import run_together
from tests.conftest import api_client_for

API = "/api/v1/settlements"
MAY = (datetime.date(2025, 5, 1), datetime.date(2025, 5, 31))
JUNE = (datetime.date(2025, 6, 1), datetime.date(2025, 6, 30))

api_urls = pytest.mark.django_db  # the real URLconf serves these endpoints


def local(day: datetime.date, hour: int = 10, minute: int = 0) -> datetime.datetime:
    """A wall-clock time in the instance's time zone (Asia/Shanghai by default)."""
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=timezone.get_default_timezone())


def may(day: int, hour: int = 10, minute: int = 0) -> datetime.datetime:
    return local(datetime.date(2025, 5, day), hour, minute)


def consignment_product(hospital, supplier, *, tracking="UNIT", price="1200.00", **fields):
    agreement = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__is_consignment=True, product__tracking=tracking,
        product__is_high_value=tracking == "UNIT", supplier=supplier, unit_price=Decimal(price),
        valid_from=datetime.date(2025, 1, 1), valid_to=datetime.date(2025, 12, 31),
        **{f"product__{name}": value for name, value in fields.items()},
    )
    return agreement.product


class Clinic:
    """A department with a store where consignment units and lots are used on patients."""

    def __init__(self, hospital):
        self.hospital = hospital
        self.department = factories.DepartmentFactory(hospital=hospital, name="心内科")
        self.store = factories.LocationFactory(
            hospital=hospital, department=self.department, kind="DEPARTMENT_STORE", name="导管室二级库"
        )
        self.serials = 0

    def use_unit(self, product, supplier, at, *, cost="1200.00", encounter="ZY2025001", was_consignment=True):
        self.serials += 1
        serial = f"SN{product.pk}-{self.serials:04d}"
        unit = Unit.objects.create(
            hospital=self.hospital, product=product, supplier=supplier, udi_raw=serial, udi=serial,
            di=product.udi_di, lot="L2501", serial=serial, owner=Owner.HOSPITAL, unit_cost=Decimal(cost),
            status=UnitStatus.CONSUMED,
        )
        return Consumption.objects.create(
            hospital=self.hospital, product=product, unit=unit, lot=unit.lot, quantity=1, location=self.store,
            encounter=encounter, department=self.department, unit_price=unit.unit_cost,
            was_consignment=was_consignment, occurred_at=at,
        )

    def use_lot(self, product, at, *, lot="B1", quantity=1, price="3.50", encounter="MZ2025001"):
        return Consumption.objects.create(
            hospital=self.hospital, product=product, lot=lot, quantity=quantity, location=self.store,
            encounter=encounter, department=self.department, unit_price=Decimal(price), was_consignment=True,
            occurred_at=at,
        )


@pytest.fixture
def clinic(hospital):
    return Clinic(hospital)


@pytest.fixture
def stent(hospital, supplier):
    return consignment_product(hospital, supplier, name="药物洗脱冠脉支架", specification="3.0×18mm")


@pytest.fixture
def operator_actor(operator):
    return Actor(user=operator)


def refuse(call, **kwargs) -> Refused:
    with pytest.raises(Refused) as refused:
        call(**kwargs)
    return refused.value


def draft(hospital, supplier, actor, period=MAY):
    return draft_settlement(
        hospital=hospital, supplier=supplier, period_start=period[0], period_end=period[1], actor=actor
    )


# --- what is owed -----------------------------------------------------------------------------------


def test_only_consignment_use_of_that_supplier_in_the_local_period_is_owed(
    hospital, other_hospital, supplier, clinic, stent
):
    other_supplier = factories.SupplierFactory()
    lots = consignment_product(hospital, supplier, tracking="LOT", name="一次性使用输液器")
    others_lots = consignment_product(hospital, other_supplier, tracking="LOT")
    first_minute = clinic.use_unit(stent, supplier, may(1, 0, 10))  # 30 April 16:10 UTC: still May in Shanghai
    last_minute = clinic.use_unit(stent, supplier, may(31, 23, 50))
    lot_use = clinic.use_lot(lots, may(12), quantity=5)
    clinic.use_unit(stent, supplier, local(datetime.date(2025, 4, 30), 23, 59))
    clinic.use_unit(stent, supplier, local(datetime.date(2025, 6, 1), 0, 0))
    clinic.use_unit(stent, other_supplier, may(10))
    clinic.use_unit(stent, supplier, may(10), was_consignment=False)  # bought outright before use
    clinic.use_lot(others_lots, may(12))
    Clinic(other_hospital).use_unit(consignment_product(other_hospital, supplier), supplier, may(10))

    owed = unsettled_consignment_consumptions(hospital, supplier, *MAY)

    assert [consumption.pk for consumption in owed] == [first_minute.pk, lot_use.pk, last_minute.pk]


def test_refunded_and_confirmed_use_is_not_owed_but_drafted_use_still_is(hospital, supplier, clinic, stent, operator):
    refunded = clinic.use_unit(stent, supplier, may(3))
    Consumption.objects.filter(pk=refunded.pk).update(refunded_at=timezone.now(), refund_reason="WRONG_PATIENT")
    confirmed = clinic.use_unit(stent, supplier, may(4))
    drafted = clinic.use_unit(stent, supplier, may(5))
    free = clinic.use_unit(stent, supplier, may(6))
    for consumption, status in ((confirmed, "CONFIRMED"), (drafted, "DRAFT")):
        statement = SupplierSettlement.objects.create(
            hospital=hospital, supplier=supplier, period_start=consumption.occurred_at.date(),
            period_end=consumption.occurred_at.date(), status=status, created_by=operator,
        )
        SupplierSettlementLine.objects.create(
            settlement=statement, consumption=consumption, product=stent, unit=consumption.unit, quantity=1,
            unit_price=consumption.unit_price, amount=consumption.unit_price,
        )

    summary = settlement_summary(hospital, supplier, *MAY)

    assert [(line.consumption_id, line.statement_id) for line in summary.lines] == [
        (drafted.pk, drafted.settlement_line.settlement_id), (free.pk, None),
    ]


def test_summary_totals_are_exact_decimals_per_product_and_in_all(hospital, supplier, clinic, stent):
    lots = consignment_product(hospital, supplier, tracking="LOT", name="一次性使用输液器")
    clinic.use_unit(stent, supplier, may(2), cost="1200.01")
    clinic.use_unit(stent, supplier, may(3), cost="999.99")
    for day in (4, 5, 6):
        clinic.use_lot(lots, may(day), quantity=3, price="0.10")

    summary = settlement_summary(hospital, supplier, *MAY)

    assert summary.quantity == 11
    assert summary.amount == Decimal("2200.90") and isinstance(summary.amount, Decimal)
    assert {(p.product_id, p.quantity, p.amount) for p in summary.products} == {
        (stent.pk, 2, Decimal("2200.00")), (lots.pk, 9, Decimal("0.90")),
    }
    assert [line.amount for line in summary.lines] == [Decimal("1200.01"), Decimal("999.99")] + [Decimal("0.30")] * 3
    assert all(isinstance(p.amount, Decimal) for p in summary.products)


def test_an_empty_period_has_zero_totals(hospital, supplier):
    summary = settlement_summary(hospital, supplier, *MAY)
    assert (summary.lines, summary.products, summary.quantity, summary.amount) == ([], [], 0, Decimal("0.00"))


# --- statements: draft, confirm once, locked --------------------------------------------------------


def test_draft_then_confirm_and_confirming_again_is_refused_with_409(
    hospital, supplier, clinic, stent, operator, operator_actor
):
    uses = [clinic.use_unit(stent, supplier, may(day), cost="1500.00") for day in (2, 9)]

    statement = draft(hospital, supplier, operator_actor)
    assert statement.status == SupplierSettlement.Status.DRAFT and statement.created_by == operator
    assert sorted(statement.lines.values_list("consumption_id", "amount")) == [
        (use.pk, Decimal("1500.00")) for use in uses
    ]

    confirmed = confirm_settlement(settlement=statement, actor=operator_actor)
    assert confirmed.status == SupplierSettlement.Status.CONFIRMED
    assert confirmed.confirmed_by == operator and confirmed.confirmed_at is not None

    again = refuse(confirm_settlement, settlement=statement, actor=operator_actor)
    assert again.status == 409 and again.code == "SETTLEMENT_CONFIRMED"


def test_confirmed_lines_are_locked_against_a_new_draft_of_the_same_or_an_overlapping_period(
    hospital, supplier, clinic, stent, operator_actor
):
    may_use = clinic.use_unit(stent, supplier, may(20))
    june_use = clinic.use_unit(stent, supplier, local(JUNE[0], 9))
    statement = draft(hospital, supplier, operator_actor)
    confirm_settlement(settlement=statement, actor=operator_actor)
    lines_before = list(statement.lines.values_list("pk", "consumption_id", "amount"))

    for period in (MAY, (datetime.date(2025, 5, 15), datetime.date(2025, 6, 15))):
        refused = refuse(draft, hospital=hospital, supplier=supplier, actor=operator_actor, period=period)
        assert refused.code == "SETTLEMENT_PERIOD_LOCKED" and refused.problems[0].item == statement.pk

    june = draft(hospital, supplier, operator_actor, period=JUNE)
    assert list(june.lines.values_list("consumption_id", flat=True)) == [june_use.pk]
    assert list(statement.lines.values_list("pk", "consumption_id", "amount")) == lines_before
    assert list(unsettled_consignment_consumptions(hospital, supplier, *MAY)) == []
    assert may_use.pk not in june.lines.values_list("consumption_id", flat=True)


def test_the_database_keeps_a_consumption_on_one_statement_line_at_most(
    hospital, supplier, clinic, stent, operator, operator_actor
):
    use = clinic.use_unit(stent, supplier, may(20))
    confirm_settlement(settlement=draft(hospital, supplier, operator_actor), actor=operator_actor)
    elsewhere = SupplierSettlement.objects.create(
        hospital=hospital, supplier=supplier, period_start=datetime.date(2025, 7, 1),
        period_end=datetime.date(2025, 7, 31), created_by=operator,
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        SupplierSettlementLine.objects.create(
            settlement=elsewhere, consumption=use, product=stent, unit=use.unit, quantity=1,
            unit_price=use.unit_price, amount=use.unit_price,
        )


def test_use_refunded_after_drafting_refuses_confirmation_listing_it_until_drafted_again(
    hospital, supplier, clinic, stent, operator_actor
):
    kept = clinic.use_unit(stent, supplier, may(2))
    refunded = [clinic.use_unit(stent, supplier, may(day)) for day in (3, 4)]
    statement = draft(hospital, supplier, operator_actor)
    Consumption.objects.filter(pk__in=[c.pk for c in refunded]).update(
        refunded_at=timezone.now(), refund_reason="NOT_USED"
    )

    refused = refuse(confirm_settlement, settlement=statement, actor=operator_actor)
    assert refused.status == 409
    assert [(p.code, p.item) for p in refused.problems] == [("ALREADY_REFUNDED", c.pk) for c in refunded]
    statement.refresh_from_db()
    assert statement.status == SupplierSettlement.Status.DRAFT

    redrafted = draft(hospital, supplier, operator_actor)
    assert redrafted.pk == statement.pk
    assert list(redrafted.lines.values_list("consumption_id", flat=True)) == [kept.pk]
    assert confirm_settlement(settlement=redrafted, actor=operator_actor).status == SupplierSettlement.Status.CONFIRMED


def test_drafting_again_adds_late_use_and_takes_lines_from_an_overlapping_draft(
    hospital, supplier, clinic, stent, operator_actor
):
    early = clinic.use_unit(stent, supplier, may(5))
    wrong = draft(hospital, supplier, operator_actor, period=(datetime.date(2025, 5, 1), datetime.date(2025, 5, 20)))
    late = clinic.use_unit(stent, supplier, may(28))

    month = draft(hospital, supplier, operator_actor)

    assert sorted(month.lines.values_list("consumption_id", flat=True)) == [early.pk, late.pk]
    assert not wrong.lines.exists()
    assert refuse(confirm_settlement, settlement=wrong, actor=operator_actor).code == "SETTLEMENT_EMPTY"


def test_a_new_draft_with_nothing_to_settle_is_refused(hospital, supplier, clinic, stent, operator_actor):
    clinic.use_unit(stent, supplier, local(JUNE[0]))

    refused = refuse(draft, hospital=hospital, supplier=supplier, actor=operator_actor)

    assert refused.code == "SETTLEMENT_EMPTY"
    assert not SupplierSettlement.objects.exists()


def test_only_a_user_of_that_hospital_drafts_and_confirms(hospital, other_hospital, supplier, clinic, stent):
    clinic.use_unit(stent, supplier, may(5))
    stranger = Actor(user=factories.UserFactory(hospital=other_hospital, roles=["spd_operator"]))

    assert refuse(draft, hospital=hospital, supplier=supplier, actor=stranger).code == "NOT_ALLOWED"
    statement = draft(hospital, supplier, Actor(user=factories.UserFactory(hospital=hospital, roles=["admin"])))
    assert refuse(confirm_settlement, settlement=statement, actor=stranger).code == "NOT_ALLOWED"


# --- exports ----------------------------------------------------------------------------------------


@pytest.fixture
def may_uses(hospital, supplier, clinic, stent):
    lots = consignment_product(hospital, supplier, tracking="LOT", name="一次性使用输液器", specification="0.7mm")
    return [
        clinic.use_unit(stent, supplier, may(2, 8, 30), cost="1200.01", encounter="ZY2025001"),
        clinic.use_lot(lots, may(3, 14), quantity=4, price="3.50"),
        clinic.use_unit(stent, supplier, may(31, 23, 59), cost="999.99", encounter="ZY2025002"),
    ]


def expected_rows(uses):
    return [
        [
            str(use.pk), use.product.internal_code, use.product.name, use.product.specification,
            use.unit.serial if use.unit else "", use.lot, use.encounter, use.department.name,
            timezone.localtime(use.occurred_at).strftime("%Y-%m-%d %H:%M:%S"), str(use.quantity),
            str(use.unit_price), str(use.unit_price * use.quantity),
        ]
        for use in uses
    ]


@api_urls
def test_csv_export_has_a_bom_and_parses_back_to_the_same_lines_and_totals(supplier, may_uses, auditor):
    query = {"supplier": supplier.pk, "period": "2025-05", "format": "csv"}
    response = api_client_for(auditor).get(f"{API}/export/", query)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="consignment-{supplier.pk}-20250501-20250531.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(EXPORT_HEADER)
    assert rows[1:-1] == expected_rows(may_uses)
    assert rows[-1] == [TOTALS_LABEL, *[""] * 8, "6", "", "2214.00"]


@api_urls
def test_xlsx_export_of_a_statement_has_numbers_as_numbers_and_a_totals_row(
    hospital, supplier, may_uses, operator_actor, auditor
):
    statement = draft(hospital, supplier, operator_actor)

    response = api_client_for(auditor).get(f"{API}/statements/{statement.pk}/export/", {"format": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"] == f'attachment; filename="settlement-{statement.pk}.xlsx"'
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[0] == EXPORT_HEADER
    for row, use in zip(rows[1:-1], may_uses, strict=True):
        assert row[0] == use.pk and row[6] == use.encounter
        assert row[8] == timezone.localtime(use.occurred_at).replace(tzinfo=None)
        assert isinstance(row[9], int) and row[9] == use.quantity
        assert isinstance(row[10], float | int) and Decimal(str(row[10])) == use.unit_price
        assert Decimal(str(row[11])) == use.unit_price * use.quantity
    assert rows[-1][0] == TOTALS_LABEL and rows[-1][9] == 6 and Decimal(str(rows[-1][11])) == Decimal("2214.00")


@api_urls
def test_exported_text_never_runs_as_a_spreadsheet_formula(hospital, supplier, clinic, auditor):
    product = consignment_product(hospital, supplier, name='=HYPERLINK("http://evil.example","点我")')
    clinic.use_unit(product, supplier, may(5))
    client = api_client_for(auditor)
    query = {"supplier": supplier.pk, "period": "2025-05"}

    csv_text = client.get(f"{API}/export/", {**query, "format": "csv"}).content.decode("utf-8-sig")
    csv_rows = list(csv.reader(io.StringIO(csv_text)))
    sheet = load_workbook(io.BytesIO(client.get(f"{API}/export/", {**query, "format": "xlsx"}).content)).active

    assert csv_rows[1][2] == "'" + product.name
    assert sheet.cell(row=2, column=3).data_type == "s" and sheet.cell(row=2, column=3).value == product.name


@api_urls
def test_an_unknown_export_format_is_a_json_400(supplier, auditor):
    query = {"supplier": supplier.pk, "period": "2025-05", "format": "pdf"}
    response = api_client_for(auditor).get(f"{API}/export/", query)

    assert response.status_code == 400
    assert response.json()["code"] == "CHOICE_UNKNOWN"


@api_urls
def test_export_errors_are_json_not_files(auditor):
    response = api_client_for(auditor).get(f"{API}/export/", {"period": "2025-05", "format": "xlsx"})

    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["problems"][0]["field"] == "supplier"


# --- API --------------------------------------------------------------------------------------------


@api_urls
def test_summary_shows_unsettled_lines_with_totals_and_the_stored_statements(
    hospital, supplier, may_uses, operator_actor, auditor
):
    first_ten_days = (datetime.date(2025, 5, 1), datetime.date(2025, 5, 10))
    statement = draft(hospital, supplier, operator_actor, period=first_ten_days)

    data = api_client_for(auditor).get(f"{API}/", {"supplier": supplier.pk, "period": "2025-05"}).json()

    assert (data["period_start"], data["period_end"]) == ("2025-05-01", "2025-05-31")
    assert [line["consumption"] for line in data["lines"]] == [use.pk for use in may_uses]
    assert [line["statement"] for line in data["lines"]] == [statement.pk, statement.pk, None]
    first = data["lines"][0]
    assert (first["serial"], first["encounter"], first["unit_price"], first["amount"]) == (
        may_uses[0].unit.serial, "ZY2025001", "1200.01", "1200.01",
    )
    assert (data["total_quantity"], data["total_amount"]) == (6, "2214.00")
    assert {p["product"]: p["amount"] for p in data["products"]} == {
        may_uses[0].product_id: "2200.00", may_uses[1].product_id: "14.00"
    }
    assert [(s["id"], s["status"], s["line_count"], s["total_amount"]) for s in data["statements"]] == [
        (statement.pk, "DRAFT", 2, "1214.01")
    ]


@api_urls
def test_period_is_a_month_or_two_dates(supplier, auditor):
    client = api_client_for(auditor)

    dates = {"supplier": supplier.pk, "period_start": "2025-05-03", "period_end": "2025-05-04"}
    by_dates = client.get(f"{API}/", dates)
    assert by_dates.status_code == 200 and by_dates.json()["period_end"] == "2025-05-04"
    for bad in (
        {"period": "2025-13"}, {}, {"period_start": "2025-05-03"},
        {"period": "2025-05", "period_start": "2025-05-03", "period_end": "2025-05-04"},
        {"period_start": "2025-05-04", "period_end": "2025-05-03"},
    ):
        response = client.get(f"{API}/", {"supplier": supplier.pk, **bad})
        assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST", bad


@api_urls
def test_operators_and_admins_draft_and_confirm_while_auditors_and_keepers_only_read(
    hospital, supplier, clinic, stent, operator, auditor, keeper
):
    clinic.use_unit(stent, supplier, may(5), cost="800.00")
    admin = factories.UserFactory(hospital=hospital, roles=["admin"])
    body = {"supplier": supplier.pk, "period": "2025-05"}

    for reader in (auditor, keeper):
        assert api_client_for(reader).post(f"{API}/statements/", body, format="json").status_code == 403
    created = api_client_for(operator).post(f"{API}/statements/", body, format="json")
    assert created.status_code == 201
    statement = created.json()
    assert (statement["status"], statement["total_amount"], len(statement["lines"])) == ("DRAFT", "800.00", 1)

    confirm = f"{API}/statements/{statement['id']}/confirm/"
    assert api_client_for(auditor).post(confirm).status_code == 403
    confirmed = api_client_for(admin).post(confirm)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "CONFIRMED"
    again = api_client_for(operator).post(confirm)
    assert again.status_code == 409 and again.json()["code"] == "SETTLEMENT_CONFIRMED"

    listed = api_client_for(auditor).get(f"{API}/statements/", {"supplier": supplier.pk}).json()["results"]
    assert [(s["id"], s["status"], s["total_quantity"]) for s in listed] == [(statement["id"], "CONFIRMED", 1)]
    detail = api_client_for(auditor).get(f"{API}/statements/{statement['id']}/").json()
    assert [line["consumption"] for line in detail["lines"]] == [line["consumption"] for line in statement["lines"]]
    redraft = api_client_for(operator).post(f"{API}/statements/", body, format="json")
    assert redraft.status_code == 409 and redraft.json()["problems"][0]["item"] == statement["id"]


@api_urls
def test_another_hospitals_statements_do_not_exist_for_the_caller(
    hospital, other_hospital, supplier, clinic, stent, operator_actor
):
    clinic.use_unit(stent, supplier, may(5))
    statement = draft(hospital, supplier, operator_actor)
    outsider = api_client_for(factories.UserFactory(hospital=other_hospital, roles=["spd_operator"]))

    assert outsider.get(f"{API}/statements/{statement.pk}/").status_code == 404
    assert outsider.post(f"{API}/statements/{statement.pk}/confirm/").status_code == 404
    assert outsider.get(f"{API}/statements/{statement.pk}/export/", {"format": "csv"}).status_code == 404
    assert outsider.get(f"{API}/statements/").json()["results"] == []
    summary = outsider.get(f"{API}/", {"supplier": supplier.pk, "period": "2025-05"}).json()
    assert (summary["lines"], summary["statements"], summary["total_amount"]) == ([], [], "0.00")
    statement.refresh_from_db()
    assert statement.status == SupplierSettlement.Status.DRAFT


@api_urls
def test_openapi_schema_of_the_settlement_api_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    schema = (tmp_path / "schema.yml").read_text()
    assert "/api/v1/settlements/statements/{id}/confirm/" in schema
    assert "text/csv" in schema


# --- concurrency (PostgreSQL) -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_drafts_make_one_statement_and_concurrent_confirmations_one_confirmation(
    hospital, supplier, clinic, stent, operator_actor
):
    for day in range(1, 6):
        clinic.use_unit(stent, supplier, may(day))

    drafts = run_together(4, lambda _: draft(hospital, supplier, operator_actor).pk)
    assert len(set(drafts)) == 1 and all(isinstance(pk, int) for pk in drafts), drafts
    statement = SupplierSettlement.objects.get()
    assert statement.lines.count() == 5

    confirmations = run_together(4, lambda _: confirm_settlement(settlement=statement, actor=operator_actor))
    assert sum(isinstance(outcome, SupplierSettlement) for outcome in confirmations) == 1, confirmations
    refusals = [outcome for outcome in confirmations if not isinstance(outcome, SupplierSettlement)]
    assert all(isinstance(outcome, Refused) and outcome.status == 409 for outcome in refusals), refusals
