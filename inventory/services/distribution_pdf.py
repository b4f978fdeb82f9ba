"""The printed pick list (拣货单) and delivery slip (配送单), with signature lines, as PDF.

Both are drawn by `documents_pdf.render_order_pdf`, like the other stock documents. The pick list
shows, line by line, what FEFO proposes (still to pick) and what was picked, with expiry and the
receiving location; the delivery slip is the dispatch's TRANSFER order under the delivery's number,
with the department and, once received, what it accepted.
"""
import dataclasses
from decimal import Decimal

from django.utils import timezone, translation

from inventory.models import Delivery, LotBalance, PickList, StockReservation, Unit
from inventory.services.documents_pdf import OrderDocument, order_document, render_order_pdf

PICK_LIST_SIGNATURES = ("拣货人", "复核人", "配送人")
DELIVERY_SIGNATURES = ("发货人", "配送人", "科室签收人")


def _person(user) -> str:
    if user is None:
        return ""
    return f"{user.last_name}{user.first_name}".strip() or user.username


def pick_list_document(pick_list: PickList) -> OrderDocument:
    lines = list(pick_list.lines.select_related("product", "destination").order_by("pk"))
    reservations = StockReservation.objects.filter(
        holder_type=StockReservation.Holder.PICK_LIST_LINE, holder_id__in=[line.pk for line in lines], is_active=True,
    ).select_related("unit")
    by_line: dict[int, list] = {}
    for reservation in reservations:
        by_line.setdefault(reservation.holder_id, []).append(reservation)
    costs = dict(LotBalance.objects.filter(location=pick_list.source_location).values_list("pk", "unit_cost"))
    unit_costs = dict(Unit.objects.filter(reservations__holder_id__in=[line.pk for line in lines]).values_list("pk", "unit_cost"))
    rows, quantity, value = [], 0, Decimal("0")
    for line in lines:
        picked = list(line.picked_items.select_related("unit").order_by("pk"))
        picked_units = {item.unit_id for item in picked if item.unit_id}
        picked_lots: dict[int, int] = {}
        for item in picked:
            if item.lot_balance_id:
                picked_lots[item.lot_balance_id] = picked_lots.get(item.lot_balance_id, 0) + item.quantity
        entries = []
        for item in picked:
            cost = item.unit.unit_cost if item.unit_id else costs.get(item.lot_balance_id, Decimal("0"))
            what = f"SN {item.unit.serial}" if item.unit_id else f"批号 {item.lot}"
            entries.append((what, item.expiry, item.quantity, cost, "✓已拣" + ("（替代）" if item.deviates else "")))
        for reservation in by_line.get(line.pk, []):
            if reservation.unit_id:
                if reservation.unit_id in picked_units:
                    continue
                open_quantity, cost = 1, unit_costs.get(reservation.unit_id, Decimal("0"))
                what = f"SN {reservation.unit.serial}"
            else:
                open_quantity = reservation.quantity - picked_lots.get(reservation.lot_balance_id, 0)
                cost, what = costs.get(reservation.lot_balance_id, Decimal("0")), f"批号 {reservation.lot}"
            if open_quantity > 0:
                entries.append((what, reservation.expiry, open_quantity, cost, "待拣"))
        for what, expiry, amount, cost, state in entries:
            quantity += amount
            value += cost * amount
            rows.append([
                str(len(rows) + 1), line.product.internal_code, line.product.name, line.product.specification,
                f"{what} 效期 {expiry or '—'} {state} → {line.destination.name}", str(amount), f"¥{cost:,.2f}",
                f"¥{cost * amount:,.2f}", pick_list.source_location.name,
            ])
        missing = line.quantity - sum(entry[2] for entry in entries)
        if missing > 0 and line.is_open:
            rows.append([
                str(len(rows) + 1), line.product.internal_code, line.product.name, line.product.specification,
                f"库存不足，缺 {missing} → {line.destination.name}", "0", "", "", pick_list.source_location.name,
            ])
    return OrderDocument(
        kind="PICK_LIST", title="拣货单", hospital=pick_list.hospital.name, number=pick_list.number,
        when=f"{timezone.localtime(pick_list.created_at):%Y-%m-%d %H:%M}", by=_person(pick_list.created_by),
        facts=[("拣货库位", pick_list.source_location.name), ("状态", str(pick_list.get_status_display())),
               ("规则", "近效期先出（FEFO）")],
        lines=rows, quantity=quantity, value=value, signatures=PICK_LIST_SIGNATURES,
    )


def pick_list_pdf(pick_list: PickList) -> bytes:
    with translation.override("zh-hans"):
        return render_order_pdf(pick_list_document(pick_list))


def delivery_document(delivery: Delivery) -> OrderDocument:
    base = order_document(delivery.dispatch_order)
    facts = [
        ("拣货单", delivery.pick_list.number), ("领用科室", delivery.department.name),
        ("送达库位", delivery.destination.name), ("在途库位", delivery.in_transit_location.name),
    ]
    if delivery.zero_stock:
        facts.append(("模式", "零库存：发出即签收"))
    if delivery.received_at is not None:
        facts.append(("签收", f"{_person(delivery.received_by)} {timezone.localtime(delivery.received_at):%Y-%m-%d %H:%M}"))
        for item in delivery.items.exclude(discrepancy_quantity=0).select_related("product"):
            facts.append(("差异", f"{item.product.name} {item.lot} {item.get_discrepancy_display()} "
                                  f"{item.discrepancy_quantity}：{item.reason}（{item.get_action_display()}）"))
    return dataclasses.replace(
        base, kind="DELIVERY", title="配送单", number=delivery.number, by=_person(delivery.dispatched_by), facts=facts,
        signatures=DELIVERY_SIGNATURES,
    )


def delivery_pdf(delivery: Delivery) -> bytes:
    with translation.override("zh-hans"):
        return render_order_pdf(delivery_document(delivery))
