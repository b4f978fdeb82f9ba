"""Whatever sequence of stock operations is run, the balances are exactly the fold of the ledger.

A Hypothesis state machine receives (lots at two prices), transfers, uses and refunds, returns and
scraps units and lot quantities between a warehouse, a department store and a smart cabinet,
replays idempotency keys, and keeps a model of what the stock should be, cost layers included.
After every step the database must agree with the model and with the ledger: each unit's status
and location are its last movement's, each movement starts where the previous one ended, each lot
balance is what moved in minus what moved out, and so is each cost layer (per receipt) — whose
quantities add up to their balance, drawn oldest receipt first — and every use is billed at the
cost of the layers it took.
"""
import datetime
import itertools
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    UNIT_TRANSITIONS,
    Charge,
    Consumption,
    DeliveryNote,
    IdempotencyRecord,
    Location,
    LotBalance,
    LotCostLayer,
    LotMovementLayer,
    Movement,
    StockOrder,
    Unit,
    UnitStatus,
)
from inventory.services.consumption import ClinicalContext, consume_lot, refund_consumption
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

UNIT_PRICE = Decimal("1200.00")
LOT_PRICE = Decimal("3.50")
OTHER_LOT_PRICE = Decimal("3.80")  # the other supplier's price of the same product
LOT_EXPIRY = TODAY + datetime.timedelta(days=700)
LOTS = ("A", "B")
LIVE = frozenset({UnitStatus.IN_STOCK, UnitStatus.IN_CABINET})
# Each example builds its own hospital: the database is not emptied between examples of one test.
EXAMPLES = itertools.count(1)


@dataclass
class Done:
    """An operation that succeeded, kept to replay its idempotency key."""

    call: object  # call(**changes) repeats the request, with `changes` applied to it
    result: object
    different: dict  # changes that make it another request


class LedgerMachine(RuleBasedStateMachine):
    units = Bundle("units")

    def __init__(self) -> None:
        super().__init__()
        self.example = next(EXAMPLES)
        self.hospital = factories.HospitalFactory(code=f"PBT{self.example}")
        self.supplier = factories.SupplierFactory()
        self.other_supplier = factories.SupplierFactory()
        self.actor = Actor(user=factories.UserFactory(hospital=self.hospital))
        self.department = factories.DepartmentFactory(hospital=self.hospital)
        self.locations = [
            factories.LocationFactory(hospital=self.hospital, code=code, kind=kind, department=department)
            for code, kind, department in (
                ("CW", Location.Kind.CENTRAL_WAREHOUSE, None),
                ("STORE", Location.Kind.DEPARTMENT_STORE, self.department),
                ("CAB", Location.Kind.SMART_CABINET, None),
            )
        ]
        self.product = factories.SupplyAgreementFactory(product__hospital=self.hospital, supplier=self.supplier).product
        self.lot_product = factories.SupplyAgreementFactory(
            product__hospital=self.hospital, product__tracking="LOT", product__is_high_value=False,
            unit_price=LOT_PRICE, supplier=self.supplier,
        ).product
        factories.SupplyAgreementFactory(product=self.lot_product, supplier=self.other_supplier,
                                         unit_price=OTHER_LOT_PRICE)
        self.counter = itertools.count(1)
        self.free_keys: list[str] = []  # keys of refused requests: still unused, so reused on purpose
        # The model: what the stock must be.
        self.unit_state: dict[int, tuple[str, int | None]] = {}
        self.lot_quantity: dict[tuple[str, int], int] = defaultdict(int)
        # Cost layers: (lot, location) → {receipt movement id: quantity}, drawn in receipt order.
        self.layers: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
        self.receipt_price: dict[int, Decimal] = {}
        self.uses: list[tuple[int, list[tuple[int, int]]]] = []  # (first part, what it took) not refunded
        self.other_records = 0  # idempotency records of uses and refunds
        self.movements = 0
        self.orders = 0
        self.notes = 0
        self.done_orders: list[Done] = []
        self.done_receipts: list[Done] = []

    # Helpers

    def key(self) -> str:
        return self.free_keys.pop() if self.free_keys else f"k{self.example}-{next(self.counter)}"

    def location(self, index: int) -> Location:
        return self.locations[index]

    def attempt(self, call, expected_codes: set[str], *, key: str, different: dict, log: list[Done]):
        """Run a request the model says succeeds (no codes) or is refused with exactly these codes."""
        try:
            result = call()
        except Refused as refused:
            assert {problem.code for problem in refused.problems} == expected_codes, refused.detail
            self.free_keys.append(key)
            return None
        assert not expected_codes, f"expected refusal {expected_codes}, got {result}"
        log.append(Done(call, result, different))
        return result

    def order(self, service, *, expected_codes: set[str], note: str = "", **kwargs):
        key = self.key()
        kwargs.update(actor=self.actor, hospital=self.hospital, idempotency_key=key, note=note)

        def call(**changes):
            return service(**{**kwargs, **changes})

        changed = {"note": note + " (changed)"}
        result = self.attempt(call, expected_codes, key=key, different=changed, log=self.done_orders)
        if result is not None:
            self.orders += 1
        return result

    def unit_problem(self, pk: int, *, to: Location | None, from_location: Location | None = None,
                     supplier_ok: bool = True) -> set[str]:
        status, location_id = self.unit_state[pk]
        if from_location is not None and location_id != from_location.pk:
            return {"UNIT_NOT_AT_LOCATION"}
        if to is not None and location_id == to.pk and status in LIVE:
            return {"ALREADY_AT_LOCATION"}
        if not supplier_ok:
            return {"WRONG_SUPPLIER"}
        if status not in LIVE:
            return {"ILLEGAL_TRANSITION"}
        return set()

    def lot_problem(self, lot: str, source: Location, quantity: int) -> set[str]:
        return {"INSUFFICIENT_STOCK"} if quantity > self.lot_quantity[(lot, source.pk)] else set()

    def take_layers(self, lot: str, location_id: int, quantity: int) -> list[tuple[int, int]]:
        """Take `quantity` from the modelled layers, oldest receipt first: [(receipt, quantity)]."""
        layers, taken = self.layers[(lot, location_id)], []
        for receipt in sorted(layers):
            take = min(quantity, layers[receipt])
            if take:
                taken.append((receipt, take))
                layers[receipt] -= take
                quantity -= take
        assert quantity == 0
        self.lot_quantity[(lot, location_id)] -= sum(take for _, take in taken)
        return taken

    def put_layers(self, lot: str, location_id: int, taken: list[tuple[int, int]]) -> None:
        layers = self.layers[(lot, location_id)]
        for receipt, quantity in taken:
            layers[receipt] = layers.get(receipt, 0) + quantity
        self.lot_quantity[(lot, location_id)] += sum(quantity for _, quantity in taken)

    def move_layers(self, lot: str, source_id: int, destination_id: int | None, quantity: int) -> None:
        taken = self.take_layers(lot, source_id, quantity)
        if destination_id is not None:
            self.put_layers(lot, destination_id, taken)

    def draw_destination(self, data, current: int | None) -> Location:
        """Mostly somewhere else than where the unit is; at times where it already is."""
        elsewhere = [location for location in self.locations if location.pk != current]
        return data.draw(st.sampled_from(elsewhere if data.draw(st.integers(0, 4)) else self.locations))

    def draw_lot_line(self, data, exclude: Location | None = None) -> tuple[str, Location, int]:
        """A lot, a place to take it from and a quantity: mostly one that is there, at times one that is not."""
        excluded = exclude.pk if exclude is not None else None
        held = sorted(key for key, quantity in self.lot_quantity.items() if quantity > 0 and key[1] != excluded)
        if held and data.draw(st.integers(0, 3)):
            lot, location_id = data.draw(st.sampled_from(held))
            quantity = data.draw(st.integers(1, self.lot_quantity[(lot, location_id)] + 1))
            return lot, Location.objects.get(pk=location_id), quantity
        candidates = [location for location in self.locations if location != exclude]
        return data.draw(st.sampled_from(LOTS)), data.draw(st.sampled_from(candidates)), data.draw(st.integers(1, 6))

    # Receiving

    @initialize(target=units)
    def stock_the_warehouse(self):
        """Every example starts with a unit and ten of lot A in the warehouse."""
        self.receive_a_lot_quantity(lot=LOTS[0], quantity=10, put_away=0)
        return self.receive_a_unit(put_away=0)

    @rule(target=units, put_away=st.integers(0, 2))
    def receive_a_unit(self, put_away):
        serial = f"P{self.example}-{next(self.counter)}"
        destination = self.location(put_away)
        note = self.receive([LineInput(UNIT_PRICE, udi=gs1_udi(self.product.udi_di, serial=serial))], destination)
        unit = Unit.objects.get(delivery_line__note=note)
        assert unit.serial == serial
        self.unit_state[unit.pk] = (destination.holds_units_as, destination.pk)
        self.movements += 2
        return unit.pk

    @rule(lot=st.sampled_from(LOTS), quantity=st.integers(1, 10), put_away=st.integers(0, 2),
          other_price=st.booleans())
    def receive_a_lot_quantity(self, lot, quantity, put_away, other_price=False):
        destination = self.location(put_away)
        price, supplier = (OTHER_LOT_PRICE, self.other_supplier) if other_price else (LOT_PRICE, self.supplier)
        line = LineInput(price, product=self.lot_product, lot=lot, expiry=LOT_EXPIRY, quantity=quantity)
        note = self.receive([line], destination, supplier=supplier)
        receipt = Movement.objects.get(document_type=Movement.DocumentType.DELIVERY_NOTE, document_id=note.pk)
        self.receipt_price[receipt.pk] = price
        self.put_layers(lot, destination.pk, [(receipt.pk, quantity)])
        self.movements += 1

    def receive(self, lines, destination, supplier=None):
        number = f"DN{self.example}-{next(self.counter)}"
        receive_key, accept_key = self.key(), self.key()
        receive_kwargs = {
            "actor": self.actor, "hospital": self.hospital, "supplier": supplier or self.supplier, "number": number,
            "receiving_location": self.location(0), "lines": lines, "idempotency_key": receive_key,
        }

        def receive_call(**changes):
            return receive_delivery_note(**{**receive_kwargs, **changes})

        changed = {"number": number + "-X"}
        note = self.attempt(receive_call, set(), key=receive_key, different=changed, log=self.done_receipts)
        scan_every_line(self.actor, note)
        accept_kwargs = {"actor": self.actor, "note": note, "idempotency_key": accept_key, "put_away_to": destination}

        def accept_call(**changes):
            return accept_delivery_note(**{**accept_kwargs, **changes})

        other = next(location for location in self.locations if location != destination)
        changed = {"put_away_to": other}
        accepted = self.attempt(accept_call, set(), key=accept_key, different=changed, log=self.done_receipts)
        assert accepted.status == DeliveryNote.Status.ACCEPTED
        self.notes += 1
        return note

    # Transfers

    @rule(unit=units, claimed=st.sampled_from(["nowhere", "right", "wrong"]), data=st.data())
    def move_a_unit(self, unit, claimed, data):
        location_id = self.unit_state[unit][1]
        destination = self.draw_destination(data, location_id)
        from_location = None
        if claimed == "right" and location_id is not None:
            from_location = Location.objects.get(pk=location_id)
        elif claimed == "wrong":
            from_location = next(location for location in self.locations if location.pk != location_id)
        codes = self.unit_problem(unit, to=destination, from_location=from_location)
        if self.order(
            transfer_stock, expected_codes=codes, units=[Unit.objects.get(pk=unit)], to_location=destination,
            from_location=from_location,
        ):
            self.unit_state[unit] = (destination.holds_units_as, destination.pk)
            self.movements += 1

    @rule(to=st.integers(0, 2), data=st.data())
    def move_a_lot_quantity(self, to, data):
        destination = self.location(to)
        lot, source, quantity = self.draw_lot_line(data, exclude=destination)
        codes = self.lot_problem(lot, source, quantity)
        if self.order(
            transfer_stock, expected_codes=codes, lots=[LotQuantity(self.lot_product, lot, quantity, source)],
            to_location=destination,
        ):
            self.move_layers(lot, source.pk, destination.pk, quantity)
            self.movements += 1

    @rule(unit=units, data=st.data())
    def move_a_unit_and_a_lot_quantity_together(self, unit, data):
        destination = self.draw_destination(data, self.unit_state[unit][1])
        lot, source, quantity = self.draw_lot_line(data, exclude=destination)
        codes = self.unit_problem(unit, to=destination) | self.lot_problem(lot, source, quantity)
        if self.order(
            transfer_stock, expected_codes=codes, units=[Unit.objects.get(pk=unit)], to_location=destination,
            lots=[LotQuantity(self.lot_product, lot, quantity, source)],
        ):
            self.unit_state[unit] = (destination.holds_units_as, destination.pk)
            self.move_layers(lot, source.pk, destination.pk, quantity)
            self.movements += 2

    # Leaving the hospital

    @rule(unit=units, kind=st.sampled_from(["return", "scrap"]), right_supplier=st.sampled_from([True, True, False]),
          reason=st.sampled_from(["R1", "R1", "R1", ""]))
    def send_a_unit_away(self, unit, kind, right_supplier, reason):
        pk = unit
        unit = Unit.objects.get(pk=pk)
        if kind == "return":
            codes = {"REASON_REQUIRED"} if not reason else self.unit_problem(pk, to=None, supplier_ok=right_supplier)
            supplier = self.supplier if right_supplier else self.other_supplier
            done = self.order(
                return_to_supplier, expected_codes=codes, units=[unit], reason_code=reason, supplier=supplier
            )
        else:
            codes = {"REASON_REQUIRED"} if not reason else self.unit_problem(pk, to=None)
            done = self.order(scrap, expected_codes=codes, units=[unit], reason_code=reason)
        if done:
            status = UnitStatus.RETURNED_TO_SUPPLIER if kind == "return" else UnitStatus.SCRAPPED
            self.unit_state[pk] = (status, None)
            self.movements += 1

    @rule(kind=st.sampled_from(["return", "scrap"]), reason=st.sampled_from(["R1", "R1", "R1", ""]), data=st.data())
    def send_a_lot_quantity_away(self, kind, reason, data):
        lot, source, quantity = self.draw_lot_line(data)
        codes = {"REASON_REQUIRED"} if not reason else self.lot_problem(lot, source, quantity)
        lots = [LotQuantity(self.lot_product, lot, quantity, source)]
        if kind == "return":
            done = self.order(
                return_to_supplier, expected_codes=codes, lots=lots, reason_code=reason, supplier=self.supplier
            )
        else:
            done = self.order(scrap, expected_codes=codes, lots=lots, reason_code=reason)
        if done:
            self.move_layers(lot, source.pk, None, quantity)
            self.movements += 1

    # Use on a patient and refund

    @rule(lot=st.sampled_from(LOTS), data=st.data())
    def use_a_lot_quantity_in_the_store(self, lot, data):
        store = self.location(1)
        held = self.lot_quantity[(lot, store.pk)]
        quantity = data.draw(st.integers(1, held + 1))
        key = self.key()
        try:
            first = consume_lot(
                actor=self.actor, hospital=self.hospital, product=self.lot_product, lot=lot, quantity=quantity,
                location=store, idempotency_key=key,
                context=ClinicalContext(encounter=f"ZY{self.example}", department=self.department),
            )
        except Refused as refused:
            assert quantity > held and refused.code == "INSUFFICIENT_STOCK", refused.detail
            self.free_keys.append(key)
            return
        assert quantity <= held
        taken = self.take_layers(lot, store.pk, quantity)
        parts = [first, *first.other_parts.order_by("pk")]
        prices = [self.receipt_price[receipt] for receipt, _ in taken]
        assert [part.unit_price for part in parts] == list(dict.fromkeys(prices)), "one part per price, FIFO"
        self.uses.append((first.pk, taken))
        self.movements += len(parts)
        self.other_records += 1

    @precondition(lambda self: self.uses)
    @rule(data=st.data())
    def refund_a_use(self, data):
        first, taken = self.uses.pop(data.draw(st.integers(0, len(self.uses) - 1)))
        consumption = Consumption.objects.get(pk=first)
        refund_consumption(actor=self.actor, consumption=consumption, reason_code="WRONG_ENCOUNTER",
                           to_quarantine=False, idempotency_key=self.key())
        self.put_layers(consumption.lot, consumption.location_id, taken)
        self.movements += 1 + consumption.other_parts.count()
        self.other_records += 1

    # Replaying idempotency keys

    def draw_done(self, data) -> Done:
        """A request that succeeded: a stock order more often than a delivery note or its acceptance."""
        if self.done_orders and (not self.done_receipts or data.draw(st.integers(0, 2))):
            return data.draw(st.sampled_from(self.done_orders))
        return data.draw(st.sampled_from(self.done_receipts))

    @precondition(lambda self: self.done_receipts)
    @rule(data=st.data())
    def replay_the_same_request(self, data):
        done = self.draw_done(data)
        again = done.call()
        assert (type(again), again.pk) == (type(done.result), done.result.pk)

    @precondition(lambda self: self.done_receipts)
    @rule(data=st.data())
    def replay_the_key_with_another_request(self, data):
        done = self.draw_done(data)
        try:
            done.call(**done.different)
        except Refused as refused:
            assert (refused.code, refused.status) == ("IDEMPOTENCY_CONFLICT", 409)
        else:
            raise AssertionError("a reused idempotency key with another request was not refused")

    # What must hold after every step

    @invariant()
    def ledger_folds_to_the_balances(self):
        unit_fold: dict[int, tuple[str, int | None]] = {}
        lot_fold: dict[tuple[str, int], int] = defaultdict(int)
        rows = Movement.objects.filter(hospital=self.hospital).order_by("pk").values(
            "unit_id", "product_id", "lot", "quantity", "from_location_id", "to_location_id", "from_status",
            "to_status", "kind", "reason_code", "actor_user_id", "document_type", "document_id",
        )
        for row in rows:
            assert row["actor_user_id"] == self.actor.user.pk
            assert row["document_id"] and row["document_type"] in Movement.DocumentType.values
            if row["kind"] in Movement.KINDS_REQUIRING_REASON:
                assert row["reason_code"]
            if row["unit_id"] is not None:
                assert row["quantity"] == 1
                before = unit_fold.get(row["unit_id"], (UnitStatus.RECEIVED, None))
                assert (row["from_status"], row["from_location_id"]) == before, row
                assert row["to_status"] in UNIT_TRANSITIONS[row["from_status"]], row
                unit_fold[row["unit_id"]] = (row["to_status"], row["to_location_id"])
            else:
                assert row["product_id"] == self.lot_product.pk
                if row["from_location_id"] is not None:
                    lot_fold[(row["lot"], row["from_location_id"])] -= row["quantity"]
                    assert lot_fold[(row["lot"], row["from_location_id"])] >= 0, "the ledger went negative"
                if row["to_location_id"] is not None:
                    lot_fold[(row["lot"], row["to_location_id"])] += row["quantity"]

        units = {
            pk: (status, location_id)
            for pk, status, location_id in Unit.objects.filter(hospital=self.hospital).values_list(
                "pk", "status", "location_id"
            )
        }
        assert units == unit_fold
        assert units == self.unit_state

        balances = {
            (lot, location_id): quantity
            for lot, location_id, quantity in LotBalance.objects.filter(hospital=self.hospital).values_list(
                "lot", "location_id", "quantity"
            )
        }
        assert all(quantity >= 0 for quantity in balances.values())
        for key in set(balances) | set(lot_fold) | set(self.lot_quantity):
            assert balances.get(key, 0) == lot_fold.get(key, 0) == self.lot_quantity.get(key, 0), key

    @invariant()
    def cost_layers_fold_from_the_ledger_and_add_up_to_the_balances(self):
        moved: dict[int, int] = defaultdict(int)
        layer_fold: dict[tuple[str, int, int], int] = defaultdict(int)
        rows = LotMovementLayer.objects.filter(movement__hospital=self.hospital).order_by("movement_id", "pk").values(
            "movement_id", "movement__lot", "movement__from_location_id", "movement__to_location_id", "receipt_id",
            "quantity", "unit_cost",
        )
        for row in rows:
            moved[row["movement_id"]] += row["quantity"]
            assert row["unit_cost"] == self.receipt_price[row["receipt_id"]], row
            if row["movement__from_location_id"] is not None:
                key = (row["movement__lot"], row["movement__from_location_id"], row["receipt_id"])
                layer_fold[key] -= row["quantity"]
                assert layer_fold[key] >= 0, "a layer went negative in the ledger"
            if row["movement__to_location_id"] is not None:
                layer_fold[(row["movement__lot"], row["movement__to_location_id"], row["receipt_id"])] += row["quantity"]
        lot_movements = dict(
            Movement.objects.filter(hospital=self.hospital, unit__isnull=True).values_list("pk", "quantity")
        )
        assert moved == lot_movements, "each lot movement says which layers it moved, in full"

        layers = {
            (lot, location_id, receipt_id): (quantity, cost)
            for lot, location_id, receipt_id, quantity, cost in LotCostLayer.objects.filter(
                balance__hospital=self.hospital
            ).values_list("balance__lot", "balance__location_id", "receipt_id", "quantity", "unit_cost")
        }
        modelled = {
            (lot, location_id, receipt): quantity
            for (lot, location_id), held in self.layers.items()
            for receipt, quantity in held.items()
        }
        for key in set(layers) | set(layer_fold) | set(modelled):
            quantity = layers[key][0] if key in layers else 0
            assert quantity == layer_fold.get(key, 0) == modelled.get(key, 0), key
        assert all(cost == self.receipt_price[key[2]] for key, (_, cost) in layers.items())
        per_balance: dict[tuple[str, int], int] = defaultdict(int)
        for (lot, location_id, _), (quantity, _) in layers.items():
            per_balance[(lot, location_id)] += quantity
        for lot, location_id, quantity, unit_cost in LotBalance.objects.filter(hospital=self.hospital).values_list(
            "lot", "location_id", "quantity", "unit_cost"
        ):
            assert per_balance[(lot, location_id)] == quantity
            if quantity:
                oldest = min(r for r, q in self.layers[(lot, location_id)].items() if q)
                assert unit_cost == self.receipt_price[oldest], "the balance shows the cost drawn next"

    @invariant()
    def every_use_is_billed_at_the_cost_of_the_layers_it_took(self):
        for first, taken in self.uses:
            parts = Consumption.objects.filter(pk=first) | Consumption.objects.filter(part_of_id=first)
            billed = sum(Charge.objects.filter(consumption__in=parts, kind=Charge.Kind.CHARGE).values_list(
                "amount", flat=True))
            assert billed == sum(self.receipt_price[receipt] * quantity for receipt, quantity in taken)

    @invariant()
    def only_successful_operations_wrote(self):
        assert Movement.objects.filter(hospital=self.hospital).count() == self.movements
        assert StockOrder.objects.filter(hospital=self.hospital).count() == self.orders
        assert DeliveryNote.objects.filter(hospital=self.hospital).count() == self.notes
        assert IdempotencyRecord.objects.filter(hospital=self.hospital).count() == (
            2 * self.notes + self.orders + self.other_records
        )


@pytest.mark.django_db
def test_ledger_folds_to_balances():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25, stateful_step_count=20, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
