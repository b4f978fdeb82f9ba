"""Central purchasing for a county alliance (集中采购): the centre orders for several members at once.

A central order is an ordinary purchase order in the lead hospital's books — one supplier, the
lead's catalog and agreements, every rule of `services.purchasing` (agreement in force, platform
reference or an authorised emergency reason, 医保 code, suspensions) — plus, per order line, how
much is for which member (`CentralOrderAllocation`). It is delivered to and accepted at the
regional warehouse (a central-warehouse location of the lead hospital) by the ordinary receiving
flow naming the order, and goes on to each member by an alliance transfer of kind DISTRIBUTION
(`distribute_central_order`: FEFO from the regional warehouse, up to what is still open for the
member), received by the member's warehouse as any transfer. What arrives short is open again.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    AllianceTransfer,
    AllianceTransferLine,
    CentralOrder,
    CentralOrderAllocation,
    Hospital,
    Location,
    Product,
    Supplier,
    SupplyAgreement,
    Unit,
    User,
)
from inventory.selectors.fefo import propose_fefo
from inventory.services.idempotency import run_once
from inventory.services.purchasing import OrderLineInput, create_purchase_order
from inventory.services.transfers import (
    TransferLot,
    can_act_for_alliance,
    create_transfer,
    receiving_product,
)


@dataclass(frozen=True)
class CentralLineInput:
    """One product of the lead hospital's catalog, and how many of it each member gets. Without
    `agreement`, the supplier's agreement in force today (the cheapest)."""

    product: Product
    quantities: dict[Hospital, int] = field(default_factory=dict)
    agreement: SupplyAgreement | None = None
    platform_reference: str = ""
    emergency_reason: str = ""
    nhsa_exemption_reason: str = ""


def lead_hospital(alliance: str) -> Hospital | None:
    """The alliance's lead hospital (牵头医院), its centre."""
    if not alliance:
        return None
    return Hospital.objects.filter(alliance=alliance, is_lead=True).order_by("pk").first()


def regional_warehouses(alliance: str):
    """The central-warehouse locations of the lead hospital: where central orders are received."""
    return Location.objects.filter(hospital__alliance=alliance, hospital__is_lead=True, is_active=True,
                                   kind=Location.Kind.CENTRAL_WAREHOUSE).order_by("code")


def require_alliance_actor(user: User, alliance: str) -> None:
    """Refused unless `user` acts for the alliance (NOT_ALLOWED) and for this one (NOT_FOUND)."""
    if not can_act_for_alliance(user):
        raise Refused(Refusal.NOT_ALLOWED, action=_("act for the county alliance"))
    if user.hospital_id is not None and user.hospital.alliance != alliance:
        raise Refused(Refusal.NOT_FOUND, what="central order")


def place_central_order(
    *, user: User, supplier: Supplier, regional_warehouse: Location, lines: list[CentralLineInput],
    promised_date: datetime.date, note: str = "",
) -> CentralOrder:
    """Order centrally for several members: one purchase order of the lead hospital to `supplier`
    (each line the sum of the members' quantities, checked by the ordering rules), delivered to
    `regional_warehouse`, with each member's share recorded. Every member must be of the alliance
    (not the lead itself) and have the product in its own catalog. All problems listed; nothing
    written on refusal."""
    centre = regional_warehouse.hospital
    require_alliance_actor(user, centre.alliance)
    if not centre.is_lead or not centre.alliance or regional_warehouse.kind != Location.Kind.CENTRAL_WAREHOUSE \
            or not regional_warehouse.is_active:
        raise Refused(Refusal.ALLIANCE_LOCATION_INVALID, location=regional_warehouse, role="区域仓库")
    if not lines:
        raise Refused(Refusal.ORDER_EMPTY)
    problems: list[Problem] = []
    member_products: dict[tuple[int, int], Product] = {}
    for line_no, line in enumerate(lines, start=1):
        if line.product.hospital_id != centre.pk:
            raise Refused(Refusal.NOT_FOUND, what="product")
        if not line.quantities:
            problems.append(_invalid(_("line %(line)s names no member") % {"line": line_no}))
        for member, quantity in line.quantities.items():
            if member.alliance != centre.alliance or member.pk == centre.pk:
                raise Refused(Refusal.ALLIANCE_NOT_MEMBER, hospital=member)
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                problems.append(_invalid(_("line %(line)s: the quantity for %(member)s must be a whole number of "
                                           "at least 1") % {"line": line_no, "member": member}))
            target = receiving_product(line.product, member)
            if target is None:
                problems.append(Problem(Refusal.ALLIANCE_PRODUCT_NOT_IN_CATALOG,
                                        {"hospital": member, "product": line.product}, line_no))
            else:
                member_products[(line_no, member.pk)] = target
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        order = create_purchase_order(
            actor=Actor(user=user), hospital=centre, supplier=supplier, promised_date=promised_date,
            lines=[OrderLineInput(product=line.product, quantity=sum(line.quantities.values()), agreement=line.agreement,
                                  platform_reference=line.platform_reference, emergency_reason=line.emergency_reason,
                                  nhsa_exemption_reason=line.nhsa_exemption_reason) for line in lines],
        )
        central = CentralOrder.objects.create(alliance=centre.alliance, purchase_order=order,
                                              regional_warehouse=regional_warehouse, note=note[:500], created_by=user)
        order_lines = {line.line_no: line for line in order.lines.all()}
        CentralOrderAllocation.objects.bulk_create([
            CentralOrderAllocation(central_order=central, order_line=order_lines[line_no], member=member,
                                   member_product=member_products[(line_no, member.pk)], quantity=quantity)
            for line_no, line in enumerate(lines, start=1)
            for member, quantity in sorted(line.quantities.items(), key=lambda item: item[0].pk)
        ])
    return central


def _invalid(reason: str) -> Problem:
    return Problem(Refusal.CENTRAL_ORDER_INVALID, {"reason": reason})


def member_receiving_location(member: Hospital) -> Location | None:
    """Where a member receives from the centre by default: its first active central warehouse."""
    return Location.objects.filter(hospital=member, kind=Location.Kind.CENTRAL_WAREHOUSE, is_active=True).exclude(
        code="ALLIANCE-TRANSIT").order_by("code").first()


def distribute_central_order(
    *, user: User, central_order: CentralOrder, member: Hospital, idempotency_key: str,
    destination: Location | None = None,
) -> AllianceTransfer:
    """Send a member what is open of its share of a central order and in stock at the regional
    warehouse, first expiry first: one alliance transfer of kind DISTRIBUTION (approved: the
    member's share is its request), to dispatch and receive as any transfer. Partial when stock is
    short; CENTRAL_ORDER_NOTHING_TO_DISTRIBUTE when nothing can go."""
    require_alliance_actor(user, central_order.alliance)
    destination = destination or member_receiving_location(member)
    if destination is None:
        raise Refused(Refusal.NOT_FOUND, what="location")
    warehouse = central_order.regional_warehouse

    def perform() -> AllianceTransfer:
        allocations = list(CentralOrderAllocation.objects.select_for_update().select_related(
            "order_line__product").filter(central_order=central_order, member=member).order_by("pk"))
        on_transfer = set(AllianceTransferLine.objects.filter(
            unit__location=warehouse, transfer__status__in=AllianceTransfer.OPEN_STATUSES,
        ).values_list("unit_id", flat=True))
        units: list[Unit] = []
        unit_allocations: dict[int, CentralOrderAllocation] = {}
        lots: list[TransferLot] = []
        taken: dict[int, int] = defaultdict(int)
        for allocation in allocations:
            if allocation.open_quantity < 1:
                continue
            proposal = propose_fefo(hospital=warehouse.hospital, location=warehouse,
                                    product=allocation.order_line.product,
                                    quantity=allocation.open_quantity + len(on_transfer))
            wanted = allocation.open_quantity
            for pick in proposal.picks:
                if wanted < 1:
                    break
                if pick.unit_id is not None:
                    if pick.unit_id in unit_allocations or pick.unit_id in on_transfer:
                        continue
                    units.append(Unit.objects.get(pk=pick.unit_id))
                    unit_allocations[pick.unit_id] = allocation
                    taken[allocation.pk] += 1
                    wanted -= 1
                else:
                    quantity = min(pick.quantity, wanted)
                    lots.append(TransferLot(allocation.order_line.product, pick.lot, quantity, allocation))
                    taken[allocation.pk] += quantity
                    wanted -= quantity
        if not units and not lots:
            raise Refused(Refusal.CENTRAL_ORDER_NOTHING_TO_DISTRIBUTE, number=central_order.purchase_order.number,
                          hospital=member, location=warehouse)
        transfer = create_transfer(
            user=user, source_location=warehouse, to_hospital=member, destination=destination,
            idempotency_key=f"{idempotency_key}:transfer"[:128], units=units, lots=lots,
            kind=AllianceTransfer.Kind.DISTRIBUTION, reason=central_order.purchase_order.number,
            central_order=central_order, unit_allocations=unit_allocations,
        )
        for allocation_id, quantity in sorted(taken.items()):
            CentralOrderAllocation.objects.filter(pk=allocation_id).update(
                distributed_quantity=F("distributed_quantity") + quantity)
        return transfer

    transfer, _performed = run_once(
        hospital=warehouse.hospital, key=idempotency_key, operation="central_order:distribute",
        payload={"order": central_order.pk, "member": member.pk, "destination": destination.pk}, perform=perform,
    )
    return transfer
