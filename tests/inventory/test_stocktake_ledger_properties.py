"""The ledger property test with counts and approvals: whatever sequence of receipts, moves, uses,
refunds, returns, scraps — and stocktakes, with moves during the count, units found in the wrong
place or missing and lots counted over or under — the balances are still exactly the fold of the
ledger (`LedgerMachine`'s invariants), and an approved count leaves each counted line's balance at
what was counted."""
from collections import Counter

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from inventory.models import LotBalance, LotMovementLayer, Movement, Unit, UnitStatus
from inventory.services import stocktake
from tests.inventory.test_ledger_properties import LIVE, LedgerMachine

# What the approvals posted over all examples: the test must have exercised every kind of posting.
POSTED: Counter = Counter()


class LedgerWithStocktakes(LedgerMachine):
    @rule(data=st.data())
    def count_and_approve(self, data):
        user = self.actor.user
        chosen = data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True))
        locations = [self.location(index) for index in chosen]
        session = stocktake.start_count(user=user, hospital=self.hospital, locations=locations)
        if data.draw(st.booleans()):  # a move during the (unfrozen) count
            self.move_a_lot_quantity(to=data.draw(st.integers(0, 2)), data=data)
        in_session = {location.pk for location in locations}
        counted_lots: dict[tuple[str, int], int] = {}
        for (lot, location_id), held in sorted(self.lot_quantity.items()):
            if location_id in in_session and (held or data.draw(st.booleans())):
                quantity = max(0, held + data.draw(st.integers(-3, 3)))
                stocktake.count_lot(session=session, user=user, product=self.lot_product, lot=lot,
                                    location=self.location_by_pk(location_id), quantity=quantity)
                counted_lots[(lot, location_id)] = quantity
        seen_at: dict[int, int] = {}
        for pk, (status, location_id) in sorted(self.unit_state.items()):
            if status not in LIVE:
                continue
            choice = data.draw(st.sampled_from(["here", "elsewhere", "missing"]))
            if choice == "missing" or (location_id not in in_session and choice == "here"):
                continue
            where = location_id if choice == "here" else data.draw(st.sampled_from(sorted(in_session)))
            stocktake.count_unit(session=session, user=user, unit=Unit.objects.get(pk=pk),
                                 location=self.location_by_pk(where))
            seen_at[pk] = where
        stocktake.submit(session=session, user=user)
        stocktake.approve(session=session, user=user)

        posted = Movement.objects.filter(document_type=Movement.DocumentType.STOCKTAKE, document_id=session.pk)
        for movement in posted.order_by("pk"):
            assert movement.kind in (Movement.Kind.ADJUSTMENT, Movement.Kind.TRANSFER)
            POSTED[(movement.kind, movement.reason_code, "unit" if movement.unit_id else "lot")] += 1
            if movement.unit_id is not None:
                self.unit_state[movement.unit_id] = (movement.to_status, movement.to_location_id)
            elif movement.to_location_id is not None:
                layer = LotMovementLayer.objects.get(movement=movement)
                assert layer.receipt_id == movement.pk
                self.receipt_price[movement.pk] = layer.unit_cost
                self.put_layers(movement.lot, movement.to_location_id, [(movement.pk, movement.quantity)])
            else:
                self.take_layers(movement.lot, movement.from_location_id, movement.quantity)
            self.movements += 1
        for (lot, location_id), quantity in counted_lots.items():
            balance = LotBalance.objects.filter(product=self.lot_product, lot=lot, location_id=location_id).first()
            assert (balance.quantity if balance else 0) == quantity, (lot, location_id)
        for pk, (status, location_id) in self.unit_state.items():
            if pk in seen_at:
                assert location_id == seen_at[pk] and status in LIVE
        for line in session.lines.filter(unit__isnull=False, counted_quantity=0):
            assert Unit.objects.get(pk=line.unit_id).status in (UnitStatus.SCRAPPED, *(s for s in UnitStatus
                                                                                      if s not in LIVE))

    def location_by_pk(self, pk: int):
        return next(location for location in self.locations if location.pk == pk)


@pytest.mark.django_db
@override_settings(SPD_STOCKTAKE_RECOUNT_QUANTITY=10**6, SPD_STOCKTAKE_RECOUNT_VALUE="1000000000")
def test_ledger_folds_to_balances_with_counts_and_approvals(settings_media):
    POSTED.clear()
    run_state_machine_as_test(
        LedgerWithStocktakes,
        settings=settings(
            max_examples=25, stateful_step_count=20, deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    assert {("ADJUSTMENT", "FOUND", "lot"), ("ADJUSTMENT", "LOST", "lot"), ("ADJUSTMENT", "LOST", "unit"),
            ("TRANSFER", "", "unit")} <= set(POSTED), POSTED


@pytest.fixture
def settings_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
