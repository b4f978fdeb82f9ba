"""A generated evaluation dataset: three suppliers of one hospital with an on-time, a late, a short
and an over-delivery, upheld and dismissed complaints and a certificate lapse, and the figures each
computed indicator must show for PERIOD (worked out by hand below)."""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Certificate, Hospital, Location, PurchaseOrder, Supplier, User
from inventory.services.complaints import decide_complaint, record_complaint
from inventory.services.purchasing import OrderLineInput, close_purchase_order, create_purchase_order
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

PERIOD = (TODAY - datetime.timedelta(days=30), TODAY + datetime.timedelta(days=30))
PRICE = Decimal("1200.00")
LAPSE_DAY = TODAY - datetime.timedelta(days=9)


@dataclass
class Dataset:
    a: Supplier  # everything on time and in full
    b: Supplier  # one late order, one over-delivery rejected, two upheld complaints in the period
    c: Supplier  # a short delivery closed short, an authorisation that lapsed in the period


# By hand, for PERIOD:
#   A: 1 line, on time → 100.0 %; 4 of 4 received → 100.0 %; 0 of 4 rejected → 0.0 %; 0; 0
#   B: 2 lines, the late one not on time → 50.0 %; 5 of 5 → 100.0 %; 1 of 6 decided rejected → 16.7 %;
#      2 upheld (a third dismissed, a fourth received before the period); 0 lapses
#   C: 1 line, short → 0.0 %; 2 of 5 → 40.0 %; 0 of 2 → 0.0 %; 0; 1 lapse (the day after TODAY-10)
EXPECTED = {
    "a": {"ON_TIME_RATE": "100.0", "FILL_RATE": "100.0", "REJECTION_RATE": "0.0", "UPHELD_COMPLAINTS": "0",
          "CERTIFICATE_LAPSES": "0"},
    "b": {"ON_TIME_RATE": "50.0", "FILL_RATE": "100.0", "REJECTION_RATE": "16.7", "UPHELD_COMPLAINTS": "2",
          "CERTIFICATE_LAPSES": "0"},
    "c": {"ON_TIME_RATE": "0.0", "FILL_RATE": "40.0", "REJECTION_RATE": "0.0", "UPHELD_COMPLAINTS": "0",
          "CERTIFICATE_LAPSES": "1"},
}


def _order(actor: Actor, supplier: Supplier, product, quantity: int, promised: datetime.date) -> PurchaseOrder:
    return create_purchase_order(
        actor=actor, hospital=product.hospital, supplier=supplier, promised_date=promised,
        lines=[OrderLineInput(product=product, quantity=quantity, platform_reference="YG-EVAL")],
    )


def _deliver(actor: Actor, supplier: Supplier, warehouse: Location, product, serials, order, number: str):
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=[LineInput(PRICE, udi=gs1_udi(product.udi_di, serial=serial)) for serial in serials],
        idempotency_key=f"rcv-{number}", purchase_order=order,
    )
    scan_every_line(actor, note)
    return accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


def build(hospital: Hospital, warehouse: Location, keeper: User, operator: User, *, prefix: str = "") -> Dataset:
    actor, deciding = Actor(user=keeper), Actor(user=operator)
    suppliers = {}
    for key in "abc":
        supplier = factories.SupplierFactory(name=f"{prefix}供应商{key.upper()}")
        agreement = factories.SupplyAgreementFactory(product__hospital=hospital, supplier=supplier, unit_price=PRICE)
        suppliers[key] = (supplier, agreement.product)

    a, product_a = suppliers["a"]
    order = _order(actor, a, product_a, 4, TODAY + datetime.timedelta(days=3))
    _deliver(actor, a, warehouse, product_a, [f"{prefix}A{n}" for n in range(4)], order, f"{prefix}DN-A")

    b, product_b = suppliers["b"]
    late = _order(actor, b, product_b, 2, TODAY)
    PurchaseOrder.objects.filter(pk=late.pk).update(
        ordered_at=timezone.now() - datetime.timedelta(days=5), promised_date=TODAY - datetime.timedelta(days=1))
    _deliver(actor, b, warehouse, product_b, [f"{prefix}B1", f"{prefix}B2"], late, f"{prefix}DN-B1")
    over = _order(actor, b, product_b, 3, TODAY + datetime.timedelta(days=1))
    _deliver(actor, b, warehouse, product_b, [f"{prefix}B{n}" for n in range(3, 7)], over, f"{prefix}DN-B2")
    for received_on, outcome in [(TODAY - datetime.timedelta(days=5), "UPHELD"),
                                 (TODAY - datetime.timedelta(days=3), "UPHELD"),
                                 (TODAY - datetime.timedelta(days=2), "DISMISSED"),
                                 (TODAY - datetime.timedelta(days=60), "UPHELD")]:
        complaint = record_complaint(actor=actor, hospital=hospital, supplier=b, received_on=received_on,
                                     complainant="心内科", subject="送货包装破损", evidence="书面投诉")
        decide_complaint(actor=deciding, complaint=complaint, outcome=outcome, reason="核实")

    c, product_c = suppliers["c"]
    short = _order(actor, c, product_c, 5, TODAY + datetime.timedelta(days=2))
    _deliver(actor, c, warehouse, product_c, [f"{prefix}C1", f"{prefix}C2"], short, f"{prefix}DN-C")
    close_purchase_order(actor=actor, order=short, reason="供应商断货")
    # After the deliveries (acceptance checks the licences): an authorisation that ran out in the
    # period with nothing after it (a lapse), an old business licence followed by the current one
    # (no lapse), and one that ran out before the period (not counted).
    factories.CertificateFactory(supplier=c, kind=Certificate.Kind.AUTHORISATION,
                                 valid_from=TODAY - datetime.timedelta(days=400), valid_to=TODAY - datetime.timedelta(days=10))
    factories.CertificateFactory(supplier=c, kind=Certificate.Kind.BUSINESS_LICENCE,
                                 valid_from=TODAY - datetime.timedelta(days=800), valid_to=TODAY - datetime.timedelta(days=20))
    factories.CertificateFactory(supplier=c, kind=Certificate.Kind.REGISTRATION,
                                 valid_from=TODAY - datetime.timedelta(days=800), valid_to=TODAY - datetime.timedelta(days=100))
    return Dataset(a, b, c)


def small_run(hospital: Hospital, operator: User, scores: dict[Supplier, int], *, name: str = "季度评价"):
    """A finalised run without deliveries: one entered indicator and one computed (complaints)."""
    from inventory.services.evaluation import (
        IndicatorInput,
        ScoreInput,
        create_indicator_set,
        create_run,
        enter_scores,
        finalise_run,
    )

    actor = Actor(user=operator)
    indicator_set = create_indicator_set(actor=actor, hospital=hospital, name=f"{name}指标", indicators=[
        IndicatorInput("S", "服务评分"), IndicatorInput("R", "投诉", source="UPHELD_COMPLAINTS"),
    ])
    run = create_run(actor=actor, hospital=hospital, indicator_set=indicator_set, name=name, period_start=PERIOD[0],
                     period_end=PERIOD[1], suppliers=list(scores))
    service = indicator_set.indicators.get(code="S")
    enter_scores(actor=actor, run=run, scores=[ScoreInput(supplier, service, Decimal(score))
                                               for supplier, score in scores.items()])
    return finalise_run(actor=actor, run=run)
