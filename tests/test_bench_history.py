"""A longer benchmark history (`seed_scale --years N`) holds the stock a hospital holds after one year.

What a lot left unused a year after its receipt leaves — written off if expired (SCRAP, reason
EXPIRED), else returned to its supplier (RETURN_TO_SUPPLIER, reason OVERSTOCK) — and the units held
at the end were received in the last year, so a three-year history ends with about the one-year
history's stock and findings, and its last year and last day carry about a year's and a day's
movements. `build` itself checks that the ledger folds to the balances (it raises otherwise).
"""
import datetime

import pytest
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone

from inventory.models import DeliveryLine, LotBalance, Movement, StockOrder, Unit, UnitStatus
from inventory.simulation.scale_data import SIZES, build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HELD = (UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED)


def _stock(info: dict) -> dict:
    end = datetime.date.fromisoformat(info["period_end"])
    last_day = timezone.make_aware(datetime.datetime.combine(end, datetime.time()))
    last_year = last_day - datetime.timedelta(days=364)
    on_hand = LotBalance.objects.filter(quantity__gt=0)
    return {
        "lot_balances": on_hand.count(),
        "lot_quantity": on_hand.aggregate(total=Sum("quantity"))["total"],
        "expired_lot_balances": on_hand.filter(expiry__lt=end).count(),
        "units_held": Unit.objects.filter(status__in=HELD).count(),
        "unit_groups": Unit.objects.filter(status__in=HELD).values("product", "location", "lot", "owner")
        .annotate(n=Count("id")).count(),
        "oldest_held": Unit.objects.filter(status__in=HELD).order_by("created_at").values_list("created_at", flat=True)[0],
        "last_year_movements": Movement.objects.filter(occurred_at__gte=last_year).count(),
        "last_day_movements": Movement.objects.filter(occurred_at__gte=last_day).count(),
        "last_day": last_day,
    }


def _near(longer: int, one_year: int, within: float) -> bool:
    return abs(longer - one_year) <= within * one_year


def test_a_three_year_history_ends_with_a_one_year_historys_stock():
    one = _stock(build(SIZES["small"], progress=lambda line: None))
    assert not Movement.objects.filter(unit=None, kind__in=[Movement.Kind.SCRAP, Movement.Kind.RETURN_TO_SUPPLIER]).exists()

    three = _stock(build(SIZES["small"].with_years(3), progress=lambda line: None))

    assert Movement.objects.count() > 2.9 * SIZES["small"].movements  # the ledger is three years long
    assert three["units_held"] == one["units_held"]
    assert three["oldest_held"] >= three["last_day"] - datetime.timedelta(days=365)
    for figure, within in [("lot_balances", 0.1), ("lot_quantity", 0.1), ("unit_groups", 0.15),
                           ("expired_lot_balances", 0.5), ("last_year_movements", 0.25), ("last_day_movements", 0.25)]:
        assert _near(three[figure], one[figure], within), (figure, three[figure], one[figure])

    # The lots' exits, as services/stock.py posts them: an order with its reason, the movement too.
    exits = Movement.objects.filter(unit=None, kind__in=[Movement.Kind.SCRAP, Movement.Kind.RETURN_TO_SUPPLIER])
    assert exits.filter(kind=Movement.Kind.SCRAP).exists() and exits.filter(kind=Movement.Kind.RETURN_TO_SUPPLIER).exists()
    orders = StockOrder.objects.filter(pk=OuterRef("document_id"))
    exits = exits.annotate(order_kind=Subquery(orders.values("kind")), order_reason=Subquery(orders.values("reason_code")),
                           order_supplier=Subquery(orders.values("supplier")))
    assert not exits.exclude(document_type=Movement.DocumentType.STOCK_ORDER).exists()
    assert not exits.exclude(order_kind=F("kind")).exists()
    assert set(exits.filter(kind=Movement.Kind.SCRAP).values_list("reason_code", "order_reason").distinct()) == {
        ("EXPIRED", "EXPIRED")}
    assert set(exits.filter(kind=Movement.Kind.RETURN_TO_SUPPLIER).values_list("reason_code", "order_reason")
               .distinct()) == {("OVERSTOCK", "OVERSTOCK")}
    # Written off once expired; returned to the supplier that delivered the lot, with shelf life left.
    scrapped = exits.filter(kind=Movement.Kind.SCRAP)
    expiry = LotBalance.objects.filter(product=OuterRef("product"), lot=OuterRef("lot")).values("expiry")[:1]
    assert not scrapped.annotate(expiry=Subquery(expiry)).filter(expiry__gte=F("occurred_at__date")).exists()
    returned = exits.filter(kind=Movement.Kind.RETURN_TO_SUPPLIER).annotate(expiry=Subquery(expiry))
    assert not returned.filter(expiry__lt=F("occurred_at__date")).exists()
    supplier = DeliveryLine.objects.filter(product=OuterRef("product"), lot=OuterRef("lot")).values("note__supplier")[:1]
    assert not returned.annotate(delivered_by=Subquery(supplier)).exclude(order_supplier=F("delivered_by")).exists()
    # Nothing of an exited lot is used or moved after it left.
    gone = exits.filter(product=OuterRef("product"), lot=OuterRef("lot")).order_by("occurred_at").values("occurred_at")[:1]
    lot_movements = Movement.objects.filter(unit=None).annotate(gone=Subquery(gone)).exclude(gone=None)
    assert not lot_movements.filter(occurred_at__gt=F("gone")).exclude(
        kind__in=[Movement.Kind.SCRAP, Movement.Kind.RETURN_TO_SUPPLIER]).exists()
