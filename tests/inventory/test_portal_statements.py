"""Consignment settlement statements between the hospital and its supplier, through the portal:
the hospital issues (confirms) a statement, the supplier's user sees it across the hospitals it serves
— lines without encounter or department — downloads it, confirms or disputes it with a reason; the
hospital settles a confirmed one or reopens a disputed one. Every step is kept, append-only, and a
step in the wrong stage is a 409 with nothing changed."""
import csv
import io
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, transaction
from openpyxl import load_workbook

from inventory.actors import Actor
from inventory.models import Alert, SupplierSettlement, SupplierSettlementEvent
from inventory.services.settlement_workflow import supplier_confirm_statement
from inventory.services.settlements import confirm_settlement
from tests import factories
from tests.conftest import api_client_for
from tests.inventory.test_settlements import JUNE, Clinic, consignment_product, draft, local, may
from tests.pdf_text import shown_strings

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
PORTAL = "/api/v1/portal/settlement-statements"
HOSPITAL = "/api/v1/settlements/statements"


@pytest.fixture
def vendor(supplier):
    return factories.UserFactory(username="vendor", hospital=None, supplier=supplier, roles=["supplier"])


@pytest.fixture
def issued(hospital, supplier, operator):
    clinic = Clinic(hospital)
    stent = consignment_product(hospital, supplier, name="药物洗脱冠脉支架", specification="3.0×18mm")
    clinic.use_unit(stent, supplier, may(3), cost="1200.00", encounter="ZY2025-SECRET-1")
    clinic.use_unit(stent, supplier, may(9), cost="1200.00", encounter="ZY2025-SECRET-2")
    statement = draft(hospital, supplier, Actor(user=operator))
    return confirm_settlement(settlement=statement, actor=Actor(user=operator))


def test_supplier_sees_issued_statements_across_hospitals_without_patients_or_departments(
    vendor, supplier, issued, other_hospital, operator
):
    elsewhere_operator = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    clinic = Clinic(other_hospital)
    clinic.use_unit(consignment_product(other_hospital, supplier), supplier, may(4), cost="99.00")
    elsewhere = confirm_settlement(settlement=draft(other_hospital, supplier, Actor(user=elsewhere_operator)),
                                   actor=Actor(user=elsewhere_operator))
    june = Clinic(issued.hospital)
    june.use_unit(consignment_product(issued.hospital, supplier), supplier, local(JUNE[0], 9))
    never_issued = draft(issued.hospital, supplier, Actor(user=operator), period=JUNE)
    client = api_client_for(vendor)

    listed = client.get(f"{PORTAL}/").json()["results"]
    detail = client.get(f"{PORTAL}/{issued.pk}/")

    assert sorted(row["id"] for row in listed) == sorted([issued.pk, elsewhere.pk])
    assert client.get(f"{PORTAL}/{never_issued.pk}/").status_code == 404
    body = detail.json()
    assert (body["stage"], body["total_amount"], body["line_count"]) == ("ISSUED", "2400.00", 2)
    assert [(line["serial"][:2], line["used_on"], line["amount"]) for line in body["lines"]] == [
        ("SN", "2025-05-03", "1200.00"), ("SN", "2025-05-09", "1200.00")]
    assert "SECRET" not in detail.content.decode() and "心内科" not in detail.content.decode()
    assert not {"encounter", "department", "consumption"} & set(body["lines"][0])
    assert [event["kind"] for event in body["events"]] == ["ISSUED"]


def test_supplier_downloads_the_statement_as_csv_xlsx_and_pdf(vendor, issued):
    client = api_client_for(vendor)

    as_csv = client.get(f"{PORTAL}/{issued.pk}/export/", {"format": "csv"})
    as_xlsx = client.get(f"{PORTAL}/{issued.pk}/export/", {"format": "xlsx"})
    as_pdf = client.get(f"{PORTAL}/{issued.pk}/export/", {"format": "pdf"})
    unknown = client.get(f"{PORTAL}/{issued.pk}/export/", {"format": "docx"})

    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0][4] == "UDI" and rows[-1][1] == "合计" and rows[-1][-1] == "2400.00" and len(rows) == 4
    assert "SECRET" not in as_csv.content.decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet.cell(row=4, column=11).value == 2400
    assert as_pdf["Content-Type"] == "application/pdf"
    text = "".join(shown_strings(as_pdf.content))
    assert "寄售结算单" in text and "SECRET" not in text
    assert (unknown.status_code, unknown.json()["code"]) == (400, "CHOICE_UNKNOWN")


def test_supplier_confirms_then_hospital_settles_each_step_kept(vendor, issued, operator, auditor):
    client = api_client_for(vendor)
    hospital_side = api_client_for(operator)
    early = hospital_side.post(f"{HOSPITAL}/{issued.pk}/settle/")
    assert (early.status_code, early.json()["code"]) == (409, "SETTLEMENT_STAGE")

    confirmed = client.post(f"{PORTAL}/{issued.pk}/confirm/")
    again = client.post(f"{PORTAL}/{issued.pk}/dispute/", {"reason": "too late"}, format="json")
    seen = api_client_for(auditor).get(f"{HOSPITAL}/{issued.pk}/").json()
    assert api_client_for(auditor).post(f"{HOSPITAL}/{issued.pk}/settle/").status_code == 403
    settled = hospital_side.post(f"{HOSPITAL}/{issued.pk}/settle/")

    assert confirmed.status_code == 200 and confirmed.json()["stage"] == "SUPPLIER_CONFIRMED"
    assert (again.status_code, again.json()["code"]) == (409, "SETTLEMENT_STAGE")
    assert seen["stage"] == "SUPPLIER_CONFIRMED"
    assert [(e["kind"], e["by"]) for e in seen["events"]] == [("ISSUED", operator.pk), ("SUPPLIER_CONFIRMED", vendor.pk)]
    assert settled.status_code == 200 and settled.json()["stage"] == "SETTLED"
    assert [e["kind"] for e in settled.json()["events"]] == ["ISSUED", "SUPPLIER_CONFIRMED", "SETTLED"]
    assert client.post(f"{PORTAL}/{issued.pk}/confirm/").status_code == 409


def test_a_dispute_goes_back_to_the_hospital_which_reopens_and_issues_again(vendor, issued, operator):
    client = api_client_for(vendor)
    no_reason = client.post(f"{PORTAL}/{issued.pk}/dispute/", {"reason": "  "}, format="json")
    assert no_reason.status_code == 400
    assert SupplierSettlement.objects.get(pk=issued.pk).stage == "ISSUED"

    disputed = client.post(f"{PORTAL}/{issued.pk}/dispute/", {"reason": "SN 0002 was returned to us"}, format="json")

    assert disputed.json()["stage"] == "DISPUTED"
    alert = Alert.objects.get(kind="SETTLEMENT_DISPUTED", hospital=issued.hospital)
    assert "SN 0002 was returned to us" in alert.message
    seen = api_client_for(operator).get(f"{HOSPITAL}/{issued.pk}/").json()
    assert seen["events"][-1]["reason"] == "SN 0002 was returned to us"
    assert api_client_for(operator).post(f"{HOSPITAL}/{issued.pk}/settle/").json()["code"] == "SETTLEMENT_STAGE"

    reopened = api_client_for(operator).post(f"{HOSPITAL}/{issued.pk}/reopen/", {"reason": "checked: removed"},
                                             format="json")
    assert reopened.status_code == 200, reopened.json()
    assert (reopened.json()["status"], reopened.json()["stage"]) == ("DRAFT", "DRAFT")
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"
    assert client.post(f"{PORTAL}/{issued.pk}/confirm/").json()["code"] == "SETTLEMENT_STAGE"
    reissued = api_client_for(operator).post(f"{HOSPITAL}/{issued.pk}/confirm/")
    assert reissued.json()["stage"] == "ISSUED"
    assert [e["kind"] for e in reissued.json()["events"]] == ["ISSUED", "DISPUTED", "REOPENED", "ISSUED"]


def test_statement_events_cannot_be_changed_or_deleted(issued):
    event = SupplierSettlementEvent.objects.get(settlement=issued)
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        SupplierSettlementEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        SupplierSettlementEvent.objects.filter(pk=event.pk).delete()


# --- a statement issued by another path than confirm_settlement --------------------------------------


@contextmanager
def checked_as_at_commit():
    """The block, then the checks PostgreSQL defers to the commit (a test's transaction never commits)."""
    try:
        with transaction.atomic():
            yield
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_a_statement_stored_confirmed_without_the_service_is_issued_with_its_step(
    hospital, supplier, operator, keeper, vendor
):
    with checked_as_at_commit():
        stored = SupplierSettlement.objects.create(
            hospital=hospital, supplier=supplier, period_start=JUNE[0], period_end=JUNE[1], status="CONFIRMED",
            created_by=keeper, confirmed_by=operator, confirmed_at=local(JUNE[1], 18),
        )
    client = api_client_for(vendor)

    assert [(event.kind, event.by, event.at) for event in stored.events.all()] == [
        ("ISSUED", operator, local(JUNE[1], 18))]
    assert [row["id"] for row in client.get(f"{PORTAL}/").json()["results"]] == [stored.pk]
    answered = client.post(f"{PORTAL}/{stored.pk}/confirm/")
    assert answered.status_code == 200, answered.json()
    assert [event["kind"] for event in answered.json()["events"]] == ["ISSUED", "SUPPLIER_CONFIRMED"]


def test_an_issued_statement_saved_again_gets_no_second_step(issued, operator):
    with checked_as_at_commit():
        issued.save()
        SupplierSettlement.objects.get(pk=issued.pk).save(update_fields=["status", "stage"])
        stored = SupplierSettlement(hospital=issued.hospital, supplier=issued.supplier, period_start=JUNE[0],
                                    period_end=JUNE[1], created_by=operator)
        stored.save()
        stored.save()

    assert list(issued.events.values_list("kind", "by")) == [("ISSUED", operator.pk)]
    assert not stored.events.exists()


def test_the_database_refuses_a_stage_set_without_its_step(hospital, supplier, operator, vendor, issued):
    june = SupplierSettlement.objects.create(hospital=hospital, supplier=supplier, period_start=JUNE[0],
                                             period_end=JUNE[1], created_by=operator)
    july = SupplierSettlement(hospital=hospital, supplier=supplier, period_start=JUNE[1].replace(month=7, day=1),
                              period_end=JUNE[1].replace(month=7, day=31), created_by=operator, status="CONFIRMED",
                              stage="ISSUED")

    for write in (
        lambda: SupplierSettlement.objects.filter(pk=june.pk).update(status="CONFIRMED", stage="ISSUED"),
        lambda: SupplierSettlement.objects.bulk_create([july]),
        lambda: SupplierSettlement.objects.filter(pk=issued.pk).update(stage="SETTLED"),
    ):
        with pytest.raises(DatabaseError, match="SETTLEMENT_STAGE"), checked_as_at_commit():
            write()

    assert SupplierSettlement.objects.get(pk=june.pk).stage == "DRAFT"
    assert SupplierSettlement.objects.get(pk=issued.pk).stage == "ISSUED"
    with checked_as_at_commit():  # the workflow's own steps pass the same check
        supplier_confirm_statement(settlement=issued, actor=Actor(user=vendor))
