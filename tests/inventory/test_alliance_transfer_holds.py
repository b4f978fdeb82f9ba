"""An alliance transfer holds its stock (real PostgreSQL): reserved from creation to dispatch, and
at the sender's ALLIANCE-TRANSIT location from dispatch to receipt; nothing else moves it."""
import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AllianceTransfer, Consumption, LotBalance, Movement, StockReservation, Unit, UnitStatus
from inventory.selectors.fefo import propose_fefo
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.ledger import move_unit
from inventory.services.picking import create_pick_list
from inventory.services.receiving import LineInput
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from inventory.services.stocktake import start_count
from inventory.services.transfers import (
    LineDecision,
    TransferLot,
    approve_transfer,
    cancel_transfer,
    create_transfer,
    dispatch_transfer,
    reject_transfer,
)
from tests import factories
from tests.conftest import stock_units
from tests.factories import TODAY
from tests.inventory.test_alliance_transfers import Member, scan_and_receive
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXPIRY = TODAY + datetime.timedelta(days=700)
HOLDER = StockReservation.Holder.ALLIANCE_TRANSFER_LINE


def nurse_of(department):
    nurse = factories.UserFactory(hospital=department.hospital, roles=["nurse"])
    nurse.departments.add(department)
    return nurse


def codes(refused: pytest.ExceptionInfo) -> set[str]:
    return {problem.code for problem in refused.value.problems}


@pytest.fixture
def member(product, lot_product):
    return Member("M1", [product, lot_product])


@pytest.fixture
def store_stock(hospital, keeper_actor, supplier, warehouse, product, lot_product, cath_lab_store):
    """Three stents and ten infusion sets (lot L1) in the cath lab's store."""
    units = stock_units(keeper_actor, supplier, warehouse, product, ["H1", "H2", "H3"], lot="LH")
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=EXPIRY, quantity=10)], "DN-L1")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units,
                   lots=[LotQuantity(lot_product, "L1", 10, warehouse)], idempotency_key="to-cath")
    return units


def send(keeper_actor, cath_lab_store, member, units=(), lots=(), key="t-1", **kwargs):
    return create_transfer(user=keeper_actor.user, source_location=cath_lab_store, to_hospital=member.hospital,
                           destination=member.warehouse, units=list(units), lots=list(lots), idempotency_key=key,
                           **kwargs)


def use(hospital, store, key, *, unit=None, product=None, quantity=0):
    context = ClinicalContext(encounter=f"ZY-{key}", department=store.department, doctor="D1")
    actor = Actor(user=nurse_of(store.department))
    if unit is not None:
        return consume_unit(actor=actor, hospital=hospital, unit=unit, context=context, idempotency_key=key)
    return consume_lot(actor=actor, hospital=hospital, product=product, lot="L1", quantity=quantity, context=context,
                       idempotency_key=key, location=store)


def test_a_transfer_reserves_its_units_and_lot_quantity_and_every_other_path_refuses_them(
    hospital, keeper_actor, supplier, product, lot_product, cath_lab_store, member, store_stock,
):
    h1, h2, h3 = store_stock
    transfer = send(keeper_actor, cath_lab_store, member, units=[h1, h2], lots=[TransferLot(lot_product, "L1", 6)])
    held = StockReservation.objects.filter(holder_type=HOLDER, is_active=True)
    assert sorted((r.unit_id, r.quantity) for r in held if r.unit_id) == [(h1.pk, 1), (h2.pk, 1)]
    assert [(r.lot, r.quantity) for r in held if r.lot_balance_id] == [("L1", 6)]
    number = transfer.issue_number

    # Moved, scrapped, returned, used: refused, naming the transfer; nothing written.
    before = Movement.objects.count()
    for attempt in (
        lambda: transfer_stock(actor=keeper_actor, hospital=hospital, to_location=factories.LocationFactory(
            hospital=hospital, code="CW2"), units=[h1], idempotency_key="mv"),
        lambda: scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[h2], idempotency_key="sc"),
        lambda: return_to_supplier(actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="QUALITY",
                                   units=[h1], idempotency_key="rt"),
        lambda: use(hospital, cath_lab_store, "u1", unit=h1),
    ):
        with pytest.raises(Refused) as refused:
            attempt()
        assert codes(refused) == {"ALLIANCE_STOCK_RESERVED"}
        assert number in refused.value.problems[0].detail
    assert Movement.objects.count() == before and not Consumption.objects.exists()

    # A lot counts only what is not reserved: 4 of 10 are free.
    with pytest.raises(Refused) as refused:
        use(hospital, cath_lab_store, "l5", product=lot_product, quantity=5)
    assert codes(refused) == {"ALLIANCE_LOT_RESERVED"} and number in refused.value.problems[0].detail
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=keeper_actor, hospital=hospital, to_location=factories.LocationFactory(
            hospital=hospital, code="CW3"), lots=[LotQuantity(lot_product, "L1", 5, cath_lab_store)],
            idempotency_key="mv-l")
    assert codes(refused) == {"ALLIANCE_LOT_RESERVED"}
    use(hospital, cath_lab_store, "l4", product=lot_product, quantity=4)
    assert LotBalance.objects.get(product=lot_product, location=cath_lab_store).quantity == 6

    # Another transfer: neither the units nor the lot quantity can be sent twice.
    with pytest.raises(Refused) as refused:
        send(keeper_actor, cath_lab_store, member, units=[h1], lots=[TransferLot(lot_product, "L1", 1)], key="t-2")
    assert codes(refused) == {"ALLIANCE_STOCK_NOT_TRANSFERABLE", "INSUFFICIENT_STOCK"}
    # A pick list's FEFO proposal does not offer them.
    assert [pick.unit_id for pick in propose_fefo(hospital=hospital, location=cath_lab_store, product=product,
                                                  quantity=3).picks] == [h3.pk]
    assert propose_fefo(hospital=hospital, location=cath_lab_store, product=lot_product, quantity=1).shortfall == 1

    # Cancelled: released, the stock is free again.
    cancel_transfer(user=keeper_actor.user, transfer=transfer, reason="改由中心配送")
    assert not StockReservation.objects.filter(holder_type=HOLDER, is_active=True).exists()
    use(hospital, cath_lab_store, "u2", unit=h1)
    use(hospital, cath_lab_store, "l6", product=lot_product, quantity=6)


def test_a_rejection_releases_and_a_dispatch_consumes_the_reservations(
    hospital, keeper_actor, lot_product, cath_lab_store, member, store_stock,
):
    h1, h2, _h3 = store_stock
    rejected = send(keeper_actor, cath_lab_store, member, units=[h1], key="t-r")
    reject_transfer(user=member.keeper, transfer=rejected, reason="暂不需要")
    assert not StockReservation.objects.filter(holder_type=HOLDER, is_active=True).exists()

    transfer = send(keeper_actor, cath_lab_store, member, units=[h1, h2], lots=[TransferLot(lot_product, "L1", 6)])
    approve_transfer(user=member.keeper, transfer=transfer)
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key="d-1")
    transfer.refresh_from_db()
    assert not StockReservation.objects.filter(holder_type=HOLDER, is_active=True).exists()
    consumed = StockReservation.objects.filter(holder_type=HOLDER, holder_id__in=transfer.lines.values("pk"))
    assert consumed.count() == 3 and not consumed.filter(released_at__isnull=True).exists()
    assert set(Unit.objects.filter(pk__in=[h1.pk, h2.pk]).values_list("location_id", flat=True)) == {
        transfer.in_transit_location_id}
    assert LotBalance.objects.get(product=lot_product, location=cath_lab_store).quantity == 4
    use(hospital, cath_lab_store, "l4", product=lot_product, quantity=4)  # what was not sent is free


def test_stock_in_alliance_transit_moves_only_by_the_transfers_receipt_or_return(
    hospital, keeper_actor, supplier, product, lot_product, cath_lab_store, member, store_stock,
):
    h1, h2, h3 = store_stock
    transfer = send(keeper_actor, cath_lab_store, member, units=[h1, h2], lots=[TransferLot(lot_product, "L1", 6)],
                    kind="EMERGENCY", reason="抢救")
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key="d-1")
    transfer.refresh_from_db()
    transit = transfer.in_transit_location
    h1.refresh_from_db()
    before = Movement.objects.count()

    elsewhere = factories.LocationFactory(hospital=hospital, code="CW2")
    attempts = {
        "transfer units": lambda: transfer_stock(actor=keeper_actor, hospital=hospital, to_location=elsewhere,
                                                 units=[h1], idempotency_key="a1"),
        "transfer lots": lambda: transfer_stock(actor=keeper_actor, hospital=hospital, to_location=elsewhere,
                                                lots=[LotQuantity(lot_product, "L1", 1, transit)], idempotency_key="a2"),
        "issue back to the ward": lambda: transfer_stock(actor=keeper_actor, hospital=hospital,
                                                         to_location=cath_lab_store, units=[h2], from_location=transit,
                                                         idempotency_key="a3"),
        "scrap": lambda: scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[h1],
                               idempotency_key="a4"),
        "return": lambda: return_to_supplier(actor=keeper_actor, hospital=hospital, supplier=supplier,
                                             reason_code="QUALITY", lots=[LotQuantity(lot_product, "L1", 1, transit)],
                                             idempotency_key="a5"),
        "use (ledger)": lambda: move_unit(unit=Unit.objects.get(pk=h1.pk), kind=Movement.Kind.CONSUME,
                                          to_status=UnitStatus.CONSUMED, to_location=None, actor=keeper_actor,
                                          idempotency_key="a6", document=(Movement.DocumentType.CONSUMPTION, 1)),
        "move into transit": lambda: transfer_stock(actor=keeper_actor, hospital=hospital, to_location=transit,
                                                    units=[h3], idempotency_key="a9"),
        "stocktake": lambda: start_count(user=keeper_actor.user, hospital=hospital, locations=[transit]),
        "requisition pick": lambda: create_pick_list(user=keeper_actor.user, hospital=hospital,
                                                     source_location=transit, requisition_lines=[],
                                                     idempotency_key="a8"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(Refused) as refused:
            attempt()
        assert any(problem.code == "ALLIANCE_TRANSIT_LOCKED" and transit.name in problem.detail
                   for problem in refused.value.problems), (name, refused.value.problems)
    assert Movement.objects.count() == before
    assert propose_fefo(hospital=hospital, location=transit, product=product, quantity=1).shortfall == 1

    # The ledger itself refuses what a service forgot to check (trigger on inventory_movement), in a row
    # that is otherwise valid: a column's own constraint is checked before the statement's triggers.
    with pytest.raises(IntegrityError, match="ALLIANCE_TRANSIT_LOCKED"), transaction.atomic():
        Movement.objects.create(hospital=hospital, kind=Movement.Kind.SCRAP, product=product, unit=h1, lot=h1.lot,
                                from_location=transit, from_status=UnitStatus.IN_STOCK, to_status=UnitStatus.SCRAPPED,
                                reason_code="DAMAGED", actor_user=keeper_actor.user, occurred_at=transfer.dispatched_at,
                                document_type=Movement.DocumentType.STOCK_ORDER, document_id=1, idempotency_key="raw")

    # The transfer's own paths still work: one received, one returned to the sender's store.
    received = scan_and_receive(member, transfer, "r-1", decisions={
        transfer.lines.get(unit=h2).pk: LineDecision(received=0, discrepancy="DAMAGED", action="RETURNED",
                                                     reason="外包装破损")})
    assert received.status == AllianceTransfer.Status.RECEIVED
    h1.refresh_from_db()
    h2.refresh_from_db()
    assert h1.hospital_id == member.hospital.pk and (h2.hospital_id, h2.location_id) == (hospital.pk, cath_lab_store.pk)
    assert LotBalance.objects.get(product=lot_product, location=transit).quantity == 0


def test_the_ledger_trigger_refuses_a_movement_of_a_reserved_unit(
    hospital, keeper_actor, product, cath_lab_store, member, store_stock,
):
    h1 = store_stock[0]
    transfer = send(keeper_actor, cath_lab_store, member, units=[h1])
    with pytest.raises(IntegrityError, match="ALLIANCE_STOCK_RESERVED"), transaction.atomic():
        Movement.objects.create(hospital=hospital, kind=Movement.Kind.SCRAP, product=product, unit=h1, lot=h1.lot,
                                from_location=cath_lab_store, from_status=UnitStatus.IN_STOCK,
                                to_status=UnitStatus.SCRAPPED, reason_code="DAMAGED", actor_user=keeper_actor.user,
                                occurred_at=transfer.created_at, document_type=Movement.DocumentType.STOCK_ORDER,
                                document_id=1, idempotency_key="raw")


def test_the_ledger_trigger_refuses_a_lot_movement_taking_quantity_reserved_for_a_transfer(
    hospital, keeper_actor, lot_product, cath_lab_store, member, store_stock,
):
    transfer = send(keeper_actor, cath_lab_store, member, lots=[TransferLot(lot_product, "L1", 6)])

    def raw_scrap(quantity: int, key: str, **document) -> Movement:
        fields = {"document_type": Movement.DocumentType.STOCK_ORDER, "document_id": 1, **document}
        return Movement.objects.create(hospital=hospital, kind=Movement.Kind.SCRAP, product=lot_product, lot="L1",
                                       quantity=quantity, from_location=cath_lab_store, reason_code="DAMAGED",
                                       actor_user=keeper_actor.user, occurred_at=transfer.created_at,
                                       idempotency_key=key, **fields)

    # 10 on hand, 6 reserved: a raw write of 5 (bypassing services/ledger.py) takes reserved stock.
    with pytest.raises(IntegrityError, match="ALLIANCE_LOT_RESERVED"), transaction.atomic():
        raw_scrap(5, "raw-5")
    assert not Movement.objects.filter(idempotency_key="raw-5").exists()
    raw_scrap(4, "raw-4")  # the unreserved part may move
    # The transfer's own movement and an expiry lock are not held.
    raw_scrap(10, "raw-own", document_type=Movement.DocumentType.ALLIANCE_TRANSFER, document_id=transfer.pk)
    # Released (cancelled): the lot is free again.
    cancel_transfer(user=keeper_actor.user, transfer=transfer, reason="改由中心配送")
    raw_scrap(10, "raw-10")


def test_a_stocktake_cannot_adjust_away_what_a_transfer_reserved(
    hospital, keeper_actor, lot_product, cath_lab_store, member, store_stock, settings,
):
    from inventory.services import stocktake

    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 100
    transfer = send(keeper_actor, cath_lab_store, member, units=[store_stock[0]],
                    lots=[TransferLot(lot_product, "L1", 6)])
    counter = factories.UserFactory(hospital=hospital, roles=["warehouse"])
    approver = factories.UserFactory(hospital=hospital, roles=["spd_operator"])
    session = stocktake.start_count(user=counter, hospital=hospital, locations=[cath_lab_store])
    for unit in store_stock:
        stocktake.count_unit(session=session, user=counter, unit=unit, location=cath_lab_store)
    stocktake.count_lot(session=session, user=counter, product=lot_product, lot="L1", location=cath_lab_store,
                        quantity=3)  # 7 missing, but 6 of the 10 are promised to the transfer
    stocktake.submit(session=session, user=counter)
    with pytest.raises(Refused) as refused:
        stocktake.approve(session=session, user=approver)
    assert codes(refused) == {"ALLIANCE_LOT_RESERVED"} and transfer.issue_number in refused.value.problems[0].detail
    assert not Movement.objects.filter(document_type=Movement.DocumentType.STOCKTAKE).exists()
    assert LotBalance.objects.get(product=lot_product, location=cath_lab_store).quantity == 10
