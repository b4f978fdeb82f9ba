"""Stocktakes: snapshot, counting, recount, approval that posts adjustments, freeze, daily check."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.errors import Refused
from inventory.models import (
    LotBalance,
    Movement,
    Owner,
    PackagingUnit,
    StocktakeFinding,
    StocktakeLine,
    StocktakeSession,
    Unit,
    UnitStatus,
)
from inventory.services import stocktake
from inventory.services.consumption import ClinicalContext, consume_lot
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.conftest import scan_every_line, stock_units
from tests.factories import TODAY

pytestmark = pytest.mark.django_db
Status = StocktakeSession.Status



@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def counter(hospital):
    return factories.UserFactory(username="counter", hospital=hospital, roles=["warehouse"])


@pytest.fixture
def recounter(hospital):
    return factories.UserFactory(username="recounter", hospital=hospital, roles=["warehouse"])


@pytest.fixture
def approver(hospital):
    return factories.UserFactory(username="approver", hospital=hospital, roles=["spd_operator"])


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    return stock_units(keeper_actor, supplier, warehouse, product, ["T1", "T2", "T3"])


@pytest.fixture
def lot_stock(keeper_actor, supplier, warehouse, lot_product):
    line = LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=TODAY + datetime.timedelta(days=700),
                     quantity=10)
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-L1",
        receiving_location=warehouse, lines=[line], idempotency_key="rcv-L1",
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-L1")
    return LotBalance.objects.get(product=lot_product, lot="L1", location=warehouse)


def adjustments(session):
    return Movement.objects.filter(document_type=Movement.DocumentType.STOCKTAKE, document_id=session.pk)


def test_a_count_snapshots_units_and_lots_from_the_ledger(counter, hospital, warehouse, units, lot_stock):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    lines = {(line.unit_id, line.lot): line.expected_quantity for line in session.lines.all()}
    assert lines == {**{(unit.pk, unit.lot): 1 for unit in units}, (None, "L1"): 10}
    assert session.blind and session.status == Status.COUNTING


def test_an_exact_count_approves_without_moving_anything(counter, approver, hospital, warehouse, units, lot_stock,
                                                         lot_product):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    for unit in units:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=10)
    stocktake.submit(session=session, user=counter)
    session = stocktake.approve(session=session, user=approver)
    assert session.status == Status.APPROVED and not adjustments(session).exists()
    assert session.summary["accuracy"] == 100.0 and session.summary["variances"] == 0


def test_a_missing_unit_is_adjusted_out_as_lost_after_a_recount_and_a_second_persons_approval(
    counter, recounter, approver, hospital, warehouse, units, settings
):
    settings.SPD_STOCKTAKE_RECOUNT_VALUE = "1000"
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    for unit in units[:2]:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    stocktake.submit(session=session, user=counter)
    missing = session.lines.get(unit=units[2])
    assert missing.counted_quantity == 0 and missing.variance == -1 and stocktake.needs_recount(missing)
    with pytest.raises(Refused) as refused:
        stocktake.approve(session=session, user=approver)
    assert refused.value.code == "STOCKTAKE_RECOUNT_REQUIRED" and not adjustments(session).exists()
    with pytest.raises(Refused) as refused:
        stocktake.recount_line(line=missing, user=counter, quantity=0)
    assert refused.value.code == "STOCKTAKE_RECOUNT_BY_COUNTER"
    stocktake.recount_line(line=missing, user=recounter, quantity=0)
    for same_person in (counter, recounter):
        same_person.groups.add(*approver.groups.all())
        with pytest.raises(Refused) as refused:
            stocktake.approve(session=session, user=same_person)
        assert refused.value.code == "STOCKTAKE_APPROVE_OWN_VARIANCE"
    stocktake.approve(session=session, user=approver)
    (movement,) = adjustments(session)
    assert (movement.kind, movement.reason_code, movement.unit_id) == ("ADJUSTMENT", "LOST", units[2].pk)
    assert Unit.objects.get(pk=units[2].pk).status == UnitStatus.SCRAPPED
    assert session.lines.get(unit=units[2]).movement == movement


def test_a_small_variance_needs_no_recount(counter, approver, hospital, warehouse, lot_stock, lot_product, settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 5
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    line = stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse,
                               quantity=12)
    assert line.variance == 2 and not stocktake.needs_recount(line)
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    (movement,) = adjustments(session)
    assert (movement.kind, movement.reason_code, movement.quantity, movement.to_location) == (
        "ADJUSTMENT", "FOUND", 2, warehouse)
    assert LotBalance.objects.get(pk=lot_stock.pk).quantity == 12


def test_the_counter_may_approve_a_variance_below_the_threshold(counter, hospital, warehouse, lot_stock, lot_product,
                                                               settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 5
    counter.groups.add(factories.UserFactory(roles=["spd_operator"]).groups.get())
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=9)
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=counter, reasons={session.lines.get().pk: "DATA_ERROR"})
    assert adjustments(session).get().reason_code == "DATA_ERROR"


def test_lot_quantities_are_converted_from_the_packaging_unit(counter, hospital, warehouse, lot_stock, lot_product):
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=4)
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    line = stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse,
                               quantity=Decimal("2.5"), packaging_unit="盒")
    assert (line.counted_quantity, line.variance) == (10, 0)
    for quantity, unit, code in ((1, "pallet", "UNKNOWN_PACKAGING_UNIT"), (Decimal("0.3"), "盒", "QUANTITY_NOT_WHOLE_BASE_UNITS"),
                                 (-1, "", "QUANTITY_NOT_POSITIVE")):
        with pytest.raises(Refused) as refused:
            stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse,
                                quantity=quantity, packaging_unit=unit)
        assert refused.value.code == code
    assert session.lines.get().counted_quantity == 10


def test_a_unit_found_in_the_wrong_place_is_transferred_not_adjusted(
    counter, approver, hospital, warehouse, cath_lab_store, units
):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse, cath_lab_store])
    stocktake.count_unit(session=session, user=counter, unit=units[0], location=cath_lab_store)
    for unit in units[1:]:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    (movement,) = adjustments(session)
    assert (movement.kind, movement.from_location, movement.to_location) == ("TRANSFER", warehouse, cath_lab_store)
    assert Unit.objects.get(pk=units[0].pk).location == cath_lab_store


def test_a_unit_not_expected_at_all_is_found_with_a_line_of_its_own(
    counter, approver, hospital, warehouse, cath_lab_store, units
):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[cath_lab_store])
    line = stocktake.count_unit(session=session, user=counter, unit=units[0], location=cath_lab_store)
    assert (line.reason, line.expected_quantity, line.variance) == ("FOUND", 0, 1)
    stocktake.submit(session=session, user=counter)
    stocktake.recount_line(line=line, user=approver, quantity=1)
    other = factories.UserFactory(hospital=hospital, roles=["admin"])
    stocktake.approve(session=session, user=other)
    assert adjustments(session).get().kind == "TRANSFER"


def test_a_move_during_an_unfrozen_count_is_not_a_variance(
    counter, keeper_actor, approver, hospital, warehouse, cath_lab_store, units, lot_stock, lot_product
):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[units[0]],
                   lots=[LotQuantity(lot_product, "L1", 4, warehouse)], idempotency_key="during-count")
    for unit in units[1:]:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    line = stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse,
                               quantity=6)
    assert (line.expected_quantity, line.expected_at_count, line.variance) == (10, 6, 0)
    stocktake.submit(session=session, user=counter)
    assert session.lines.get(unit=units[0]).variance == 0
    stocktake.approve(session=session, user=approver)
    assert not adjustments(session).exists()
    assert Unit.objects.get(pk=units[0].pk).location == cath_lab_store


def test_a_frozen_count_refuses_moves_out_of_its_locations_naming_the_count(
    counter, keeper_actor, approver, hospital, warehouse, cath_lab_store, units, lot_stock, lot_product
):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse], freeze_outgoing=True)
    before = Movement.objects.count()
    for request in (
        {"units": [units[0]]}, {"lots": [LotQuantity(lot_product, "L1", 1, warehouse)]},
    ):
        with pytest.raises(Refused) as refused:
            transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store,
                           idempotency_key=f"frozen-{len(request)}-{list(request)[0]}", **request)
        assert refused.value.code == "STOCKTAKE_FROZEN" and refused.value.status == 409
        assert str(session.pk) in refused.value.detail
    assert Movement.objects.count() == before
    stocktake.submit(session=session, user=counter)
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[units[0]],
                   idempotency_key="after-freeze")


def test_a_missing_consigned_unit_becomes_a_finding_for_the_supplier(
    counter, recounter, approver, hospital, warehouse, units, supplier
):
    Unit.objects.filter(pk=units[0].pk).update(owner=Owner.SUPPLIER)
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    for unit in units[1:]:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    stocktake.submit(session=session, user=counter)
    stocktake.recount_line(line=session.lines.get(unit=units[0]), user=recounter, quantity=0)
    stocktake.approve(session=session, user=approver)
    finding = StocktakeFinding.objects.get(session=session)
    assert (finding.supplier, finding.unit_id, finding.quantity, finding.amount) == (
        supplier, units[0].pk, 1, units[0].unit_cost)
    assert finding.status == StocktakeFinding.Status.OPEN


def test_a_second_approval_is_refused_and_posts_nothing_more(counter, approver, hospital, warehouse, lot_stock,
                                                             lot_product, settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 50
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=8)
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    with pytest.raises(Refused) as refused:
        stocktake.approve(session=session, user=approver)
    assert refused.value.code == "STOCKTAKE_NOT_OPEN" and refused.value.status == 409
    assert adjustments(session).count() == 1 and LotBalance.objects.get(pk=lot_stock.pk).quantity == 8


def test_damaged_lines_are_adjusted_with_the_damaged_reason(counter, approver, hospital, warehouse, lot_stock,
                                                            lot_product, settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 50
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=9,
                        quality="DAMAGED", note="box crushed")
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    assert adjustments(session).get().reason_code == "DAMAGED"


def test_auditors_cannot_count_and_nurses_count_only_their_departments(hospital, warehouse, cath_lab_store, auditor):
    with pytest.raises(Refused) as refused:
        stocktake.start_count(user=auditor, hospital=hospital, locations=[warehouse])
    assert refused.value.status == 403
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    with pytest.raises(Refused) as refused:
        stocktake.start_count(user=nurse, hospital=hospital, locations=[warehouse])
    assert refused.value.status == 404
    assert stocktake.start_count(user=nurse, hospital=hospital, locations=[cath_lab_store]).pk


def test_open_sessions_block_the_period_they_started_in(counter, approver, hospital, warehouse, lot_stock):
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    today = timezone.localdate()
    assert list(stocktake.open_sessions_in_period(hospital=hospital, start=today.replace(day=1), end=today)) == [
        session]
    yesterday = today - datetime.timedelta(days=1)
    assert not stocktake.open_sessions_in_period(hospital=hospital, start=yesterday, end=yesterday).exists()
    stocktake.cancel(session=session, user=counter)
    assert not stocktake.open_sessions_in_period(hospital=hospital, start=today, end=today).exists()


def test_a_daily_check_lists_what_moved_idle_units_and_products_used_above_usual(
    keeper_actor, counter, hospital, warehouse, cath_lab_store, cabinet, units, lot_stock, lot_product, settings
):
    settings.SPD_STOCKTAKE_ISSUED_UNUSED_DAYS = 3
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units[:2],
                   lots=[LotQuantity(lot_product, "L1", 6, warehouse)], idempotency_key="issue")
    consume_lot(actor=keeper_actor, hospital=hospital, product=lot_product, lot="L1", quantity=5,
                location=cath_lab_store, idempotency_key="use-today",
                context=ClinicalContext(encounter="ZY1", department=cath_lab_store.department))
    tomorrow = timezone.localdate() + datetime.timedelta(days=5)
    later = stocktake.build_daily_worklist(department=cath_lab_store.department, day=tomorrow)
    reasons = {line.unit_id or line.lot: line.reason for line in later.lines.all()}
    assert reasons == {units[0].pk: "ISSUED_NOT_USED", units[1].pk: "ISSUED_NOT_USED"}
    today = stocktake.build_daily_worklist(department=cath_lab_store.department, day=timezone.localdate())
    reasons = {line.unit_id or line.lot: line.reason for line in today.lines.all()}
    assert reasons == {units[0].pk: "MOVED_TODAY", units[1].pk: "MOVED_TODAY", "L1": "MOVED_TODAY"}
    assert [reading["cabinet"] for reading in today.cabinet_readings] == [cabinet.pk]
    assert stocktake.build_daily_worklist(department=cath_lab_store.department, day=timezone.localdate()) == today
    assert stocktake._products_used_above_usual(
        cath_lab_store.department,
        timezone.make_aware(datetime.datetime.combine(timezone.localdate(), datetime.time.min)),
        timezone.make_aware(datetime.datetime.combine(timezone.localdate(), datetime.time.min))
        + datetime.timedelta(days=1),
    ) == {lot_product.pk}


def test_a_daily_check_is_confirmed_line_by_line(counter, approver, keeper_actor, hospital, warehouse, cath_lab_store,
                                                 units):
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units[:2],
                   idempotency_key="issue")
    session = stocktake.build_daily_worklist(department=cath_lab_store.department, day=timezone.localdate())
    first, second = session.lines.order_by("unit")
    stocktake.confirm_line(line=first, user=counter)
    with pytest.raises(Refused) as refused:
        stocktake.submit(session=session, user=counter)
    assert refused.value.code == "STOCKTAKE_LINES_UNCOUNTED"
    stocktake.count_unit(session=session, user=counter, unit=units[1], location=cath_lab_store, quality="NEAR_EXPIRY")
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    assert not adjustments(session).exists()
    assert session.lines.get(unit=units[1]).quality == StocktakeLine.Quality.NEAR_EXPIRY


def test_the_daily_job_builds_a_worklist_per_department_once(hospital, cath_lab_store, cabinet):
    from inventory.jobs import run_job

    first = run_job("daily_stocktake_worklists")
    assert first["sessions"] == 1
    run_job("daily_stocktake_worklists")
    assert StocktakeSession.objects.filter(kind="DYNAMIC").count() == 1


def test_location_history_gives_accuracy_and_variance_value(counter, approver, hospital, warehouse, units, lot_stock,
                                                            lot_product, settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 50
    settings.SPD_STOCKTAKE_RECOUNT_VALUE = "100000"
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    for unit in units:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=warehouse)
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=8)
    stocktake.submit(session=session, user=counter)
    stocktake.approve(session=session, user=approver)
    (row,) = stocktake.location_history(location=warehouse)
    assert (row["lines"], row["variances"], row["accuracy"], row["variance_value"]) == (
        4, 1, 75.0, Decimal("7.00"))


def test_approval_stores_the_variance_report_hashed_and_reproducible(counter, approver, hospital, warehouse,
                                                                    lot_stock, lot_product, settings):
    import hashlib

    from inventory.services.stocktake_reports import count_sheet_pdf, render_variance_reports
    from tests.pdf_text import shown_strings

    def pdf_text(data):
        return "".join(shown_strings(data))

    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 50
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[warehouse])
    blind = pdf_text(count_sheet_pdf(session, warehouse))
    assert "L1" in blind and "盲盘" in blind
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=warehouse, quantity=7)
    stocktake.submit(session=session, user=counter)
    session = stocktake.approve(session=session, user=approver)
    for report_format in ("csv", "xlsx", "pdf"):
        data = getattr(session, f"report_{report_format}").read()
        assert hashlib.sha256(data).hexdigest() == getattr(session, f"{report_format}_sha256")
    assert render_variance_reports(session)["csv"] == session.report_csv.open("rb").read()
    csv_text = render_variance_reports(session)["csv"].decode()
    assert "L1" in csv_text and ",-3," in csv_text
    assert session.csv_sha256 in pdf_text(session.report_pdf.open("rb").read()).replace("\n", "")
