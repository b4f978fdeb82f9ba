"""Processing (加工): pack, kit and set definitions; assembling packs at a processing station; using a
pack on a patient member by member; breaking a pack up (拆包); the set-partner check.

A pack is a `Unit` of its definition's pack product (see inventory/models/processing.py): moving
it is moving a unit. Its members go into it with PACK_IN movements (units: IN_STOCK → IN_PACK,
leaving the station; lot quantities: out of the station's balance with their cost layers) and the
pack's own unit appears at the station with a PACK_MADE movement. Coming out (use or break-up) is
the reverse, PACK_OUT into the pack's place, then — for a use — the ordinary consumption of that
member at its own cost (零差率) with its own charge. When the last member is out, the pack's unit
leaves stock (PACK_EMPTIED → UNPACKED). So every quantity change is a movement and the 进销存
balances per product and location.

Lock order: units by id (the pack's and its members'), then lot balances by id, as everywhere.
"""
import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    Alert,
    Consumption,
    Hospital,
    Location,
    LotBalance,
    Movement,
    Pack,
    PackDefinition,
    PackDefinitionLine,
    PackMember,
    Product,
    SupplyAgreement,
    TrackingMode,
    Unit,
    UnitStatus,
    User,
)
from inventory.selectors.fefo import fefo_acceptable, propose_fefo
from inventory.selectors.units import resolve_scans
from inventory.services import alerts
from inventory.services.consumption import (
    ClinicalContext,
    clinical_fields,
    consume_unit,
    draws_by_price,
    queue_charge,
    refuse_bad_context,
    team_at_use,
)
from inventory.services.idempotency import run_once
from inventory.services.labels import internal_gtin, pack_serial
from inventory.services.ledger import LayerDraw, expiry_lock_problem, move_lot, move_unit, transition_problem

PACK_DOCUMENT = Movement.DocumentType.PACK


# --- definitions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    product: Product
    quantity: object
    is_optional: bool = False


def save_definition(
    *, user: User, hospital: Hospital, code: str, name: str, kind: str, lines: list[LineInput]
) -> PackDefinition:
    """Create a definition, or the next version of the one with this code (the earlier version stays
    with the packs made from it). Refused with every problem, nothing written: no lines, a quantity
    that is not a whole number ≥ 1, a product listed twice, another hospital's product, a kit that
    contains itself (directly or through other packs)."""
    problems = []
    if not lines:
        problems.append(Problem(Refusal.PACK_DEFINITION_EMPTY))
    seen = set()
    for line in lines:
        quantity = line.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            problems.append(Problem(Refusal.PACK_LINE_QUANTITY, {"product": line.product, "quantity": quantity}))
        if line.product.hospital_id != hospital.pk:
            problems.append(Problem(Refusal.NOT_FOUND, {"what": "product"}))
        if line.product.pk in seen:
            problems.append(Problem(Refusal.PACK_LINE_TWICE, {"product": line.product}))
        seen.add(line.product.pk)
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        current = (
            PackDefinition.objects.select_for_update().filter(hospital=hospital, code=code, is_current=True).first()
        )
        if current is not None:
            pack_product = current.pack_product
        else:
            if Product.objects.filter(hospital=hospital, internal_code__iexact=code).exists():
                raise Refused(Refusal.PACK_DEFINITION_CODE_TAKEN, code=code)
            pack_product = _pack_product(hospital, code, name, kind, lines[0].product)
        if cycle := _cycle(pack_product, [line.product for line in lines]):
            raise Refused(Refusal.PACK_DEFINITION_CYCLE, product=cycle, definition=code)
        version = (
            PackDefinition.objects.filter(hospital=hospital, code=code).aggregate(last=Max("version"))["last"] or 0
        ) + 1
        if current is not None:
            PackDefinition.objects.filter(pk=current.pk).update(is_current=False)
        try:
            with transaction.atomic():
                definition = PackDefinition.objects.create(
                    hospital=hospital, code=code, version=version, name=name, kind=kind, pack_product=pack_product,
                    created_by=user,
                )
        except IntegrityError as error:  # the same code saved concurrently
            raise Refused(Refusal.PACK_DEFINITION_CODE_TAKEN, code=code) from error
        PackDefinitionLine.objects.bulk_create([
            PackDefinitionLine(definition=definition, product=line.product, quantity=line.quantity,
                               is_optional=line.is_optional)
            for line in lines
        ])
        return definition


def _pack_product(hospital: Hospital, code: str, name: str, kind: str, first: Product) -> Product:
    """The catalog product packs of this definition code are units of, with an internal GTIN.

    It has no HIS charge code on purpose: a pack is never billed, its members are."""
    try:
        with transaction.atomic():
            product = Product.objects.create(
                hospital=hospital, internal_code=code, name=name, specification=PackDefinition.Kind(kind).label,
                category="加工包", manufacturer=first.manufacturer, udi_di=f"pending-{code}"[:64],
                unit_of_measure="包", is_high_value=False, tracking=TrackingMode.UNIT,
            )
    except IntegrityError as error:  # the same new code saved concurrently
        raise Refused(Refusal.PACK_DEFINITION_CODE_TAKEN, code=code) from error
    product.udi_di = internal_gtin(product.pk)
    product.save(update_fields=["udi_di"])
    return product


def _cycle(pack_product: Product, products: list[Product]) -> Product | None:
    """The line product through which the definition would contain its own pack product, or None."""
    children = defaultdict(set)
    for parent, child in PackDefinitionLine.objects.filter(
        definition__is_current=True, definition__hospital_id=pack_product.hospital_id
    ).values_list("definition__pack_product_id", "product_id"):
        children[parent].add(child)
    for product in products:
        stack, seen = [product.pk], set()
        while stack:
            current = stack.pop()
            if current == pack_product.pk:
                return product
            if current not in seen:
                seen.add(current)
                stack.extend(children.get(current, ()))
    return None


# --- assembly --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberScan:
    """One scan at the station: a unit's UDI, or a lot's label with the quantity taken of it."""

    code: str
    quantity: int = 1


def assemble_pack(
    *, actor: Actor, hospital: Hospital, definition: PackDefinition, station: Location, scans: list[MemberScan],
    idempotency_key: str,
) -> Pack:
    """Make one pack at `station` from the scanned members: every required line exactly, optional
    lines exactly or not at all, first expiry first out (a later-expiring unit or lot while an
    earlier one is at the station is refused, naming the one to take). The pack's expiry is its
    earliest member's, its cost the sum of its members'. All or nothing; a unit goes into at most
    one pack, however many stations race for it."""
    if definition.hospital_id != hospital.pk or station.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="resource")
    if station.kind != Location.Kind.PROCESSING_STATION:
        raise Refused(Refusal.NOT_A_PROCESSING_STATION, location=station)
    payload = {"definition": definition.pk, "station": station.pk,
               "scans": [[scan.code, scan.quantity] for scan in scans]}

    def perform() -> Pack:
        return _assemble(actor, hospital, definition, station, scans)

    pack, _ = run_once(hospital=hospital, key=idempotency_key, operation="assemble_pack", payload=payload,
                       perform=perform)
    return pack


def _assemble(actor: Actor, hospital: Hospital, definition: PackDefinition, station: Location,
              scans: list[MemberScan]) -> Pack:
    lines = {line.product_id: line for line in definition.lines.select_related("product")}
    unit_ids, lots, problems = _read_scans(hospital, definition, lines, scans)
    counted = Counter()
    units = list(
        Unit.objects.select_for_update(of=("self",)).select_related("product", "location").filter(pk__in=unit_ids)
        .order_by("pk")
    )
    for unit in units:
        counted[unit.product_id] += 1
        if unit.status != UnitStatus.IN_STOCK or unit.location_id != station.pk:
            problems.append(Problem(Refusal.MEMBER_NOT_AT_STATION, {
                "item": unit.serial, "station": station, "status": unit.get_status_display()}, unit.serial))
        elif problem := expiry_lock_problem(unit):
            problems.append(problem)
    balances = {}
    for (product_id, _lot), quantity in sorted(lots.items()):
        counted[product_id] += quantity
    for balance in LotBalance.objects.select_for_update(of=("self",)).filter(
        location=station, product_id__in={product for product, _ in lots}, lot__in={lot for _, lot in lots}
    ).order_by("pk"):
        balances[(balance.product_id, balance.lot)] = balance
    for (product_id, lot), quantity in sorted(lots.items()):
        balance = balances.get((product_id, lot))
        if balance is None or balance.quantity < quantity:
            problems.append(Problem(Refusal.INSUFFICIENT_STOCK, {
                "lot": lot, "location": station, "available": balance.quantity if balance else 0,
                "requested": quantity}, lot))
        elif balance.expiry and balance.expiry < timezone.localdate():
            problems.append(Problem(Refusal.LOT_EXPIRED_LOCKED, {"lot": lot, "expiry": balance.expiry}, lot))
    problems += _count_problems(lines, counted)
    if not problems:
        problems += _fefo_problems(hospital, station, lines, units, lots, balances)
    if problems:
        raise Refused(problems)
    return _write_pack(actor, hospital, definition, station, units, lots, balances)


def _read_scans(hospital, definition, lines, scans):
    """The unit ids and lot quantities the scans name, with the problems of the unreadable ones."""
    unit_ids, lots, problems, seen = [], Counter(), [], set()
    for scan, resolution in zip(scans, resolve_scans(hospital, [scan.code for scan in scans]), strict=True):
        if isinstance(resolution, Refused):
            problems += resolution.problems
            continue
        product = resolution.product
        if product is None:
            problems.append(resolution.problem)
            continue
        item = resolution.udi.serial or resolution.udi.lot or product.internal_code
        if product.pk not in lines:
            problems.append(Problem(Refusal.PACK_MEMBER_NOT_IN_DEFINITION, {
                "item": item, "product": product, "definition": f"{definition.code} v{definition.version}"}, item))
        elif resolution.unit is not None:
            if resolution.unit.pk in seen:
                problems.append(Problem(Refusal.PACK_MEMBER_SCANNED_TWICE, {"item": item}, item))
            seen.add(resolution.unit.pk)
            unit_ids.append(resolution.unit.pk)
        elif product.tracking == TrackingMode.LOT and resolution.udi.lot:
            if isinstance(scan.quantity, bool) or not isinstance(scan.quantity, int) or scan.quantity < 1:
                problems.append(Problem(Refusal.QUANTITY_INVALID, {}, item))
            else:
                lots[(product.pk, resolution.udi.lot)] += scan.quantity
        else:
            problems.append(resolution.problem or Problem(Refusal.LOT_MISSING, {}, item))
    return unit_ids, lots, problems


def _count_problems(lines: dict, counted: Counter) -> list[Problem]:
    problems = []
    for product_id, line in lines.items():
        scanned = counted.get(product_id, 0)
        if scanned == line.quantity or (line.is_optional and scanned == 0):
            continue
        refusal = Refusal.PACK_MEMBERS_SHORT if scanned < line.quantity else Refusal.PACK_MEMBERS_EXCESS
        problems.append(Problem(refusal, {"product": line.product, "expected": line.quantity, "scanned": scanned}))
    return problems


def _fefo_problems(hospital, station, lines, units, lots, balances) -> list[Problem]:
    """A scanned member expiring later than the last of the FEFO proposal for its product's quantity."""
    by_product = defaultdict(list)
    for unit in units:
        by_product[unit.product_id].append((unit.serial, unit.expiry))
    for product_id, lot in lots:
        by_product[product_id].append((lot, balances[(product_id, lot)].expiry))
    problems = []
    for product_id, items in by_product.items():
        line = lines[product_id]
        needed = sum(quantity for (product, _), quantity in lots.items() if product == product_id) or len(items)
        proposal = propose_fefo(hospital=hospital, location=station, product=line.product, quantity=needed)
        if not proposal.picks:
            continue
        last = proposal.picks[-1]
        for item, expiry in items:
            if not fefo_acceptable(expiry=expiry, proposed_expiry=last.expiry):
                first = proposal.picks[0]
                problems.append(Problem(Refusal.NOT_FEFO, {
                    "product": line.product, "lot": item, "proposed": first.serial or first.lot,
                    "expiry": first.expiry}, item))
    return problems


def _write_pack(actor, hospital, definition, station, units, lots, balances) -> Pack:
    now = timezone.now()
    pack = Pack.objects.create(hospital=hospital, definition=definition, station=station, assembled_by=actor.user,
                               assembled_at=now)
    document = (PACK_DOCUMENT, pack.pk)
    members = []
    for unit in units:
        movement = move_unit(unit=unit, kind=Movement.Kind.PACK_IN, to_status=UnitStatus.IN_PACK, to_location=None,
                             actor=actor, idempotency_key=f"{hospital.pk}:pack:{pack.pk}:in:u{unit.pk}",
                             document=document, occurred_at=now)
        members.append(PackMember(pack=pack, product_id=unit.product_id, unit=unit, lot=unit.lot, expiry=unit.expiry,
                                  unit_cost=unit.unit_cost, into_movement=movement))
    for (product_id, lot), quantity in sorted(lots.items()):
        balance = balances[(product_id, lot)]
        movement = move_lot(product=balance.product, lot=lot, quantity=quantity, source=balance, to_location=None,
                            kind=Movement.Kind.PACK_IN, actor=actor, document=document, occurred_at=now,
                            idempotency_key=f"{hospital.pk}:pack:{pack.pk}:in:b{balance.pk}")
        layers = [[row.receipt_id, row.quantity, str(row.unit_cost), row.is_gift] for row in movement.layers.all()]
        members.append(PackMember(
            pack=pack, product_id=product_id, lot=lot, expiry=balance.expiry, quantity=quantity,
            unit_cost=movement.layers.order_by("pk").first().unit_cost, layers=layers, into_movement=movement,
        ))
    try:
        with transaction.atomic():
            PackMember.objects.bulk_create(members)
    except IntegrityError as error:  # a unit already live in another pack (the status check makes this rare)
        raise Refused(Refusal.MEMBER_NOT_AT_STATION, item="?", station=station, status="IN_PACK") from error
    expiries = [member.expiry for member in members if member.expiry]
    pack_unit = Unit.objects.create(
        hospital=hospital, product=definition.pack_product, supplier=_pack_supplier(units, lots),
        di=definition.pack_product.udi_di, serial=pack_serial(pack.pk), expiry=min(expiries, default=None),
        unit_cost=sum((member_cost(member) for member in members), Decimal("0")), status=UnitStatus.ACCEPTED,
        location=None, udi_raw="", udi="",
    )
    pack_unit.udi = pack_unit.udi_raw = f"(01){pack_unit.di}(21){pack_unit.serial}"
    pack_unit.save(update_fields=["udi", "udi_raw"])
    move_unit(unit=pack_unit, kind=Movement.Kind.PACK_MADE, to_status=UnitStatus.IN_STOCK, to_location=station,
              actor=actor, idempotency_key=f"{hospital.pk}:pack:{pack.pk}:made", document=document, occurred_at=now)
    pack.unit = pack_unit
    pack.save(update_fields=["unit"])
    return pack


def member_cost(member: PackMember) -> Decimal:
    """What a member cost: a unit's cost, or the sum of the lot layers it was drawn from."""
    if member.layers:
        return sum((Decimal(cost) * quantity for _, quantity, cost, _ in member.layers), Decimal("0"))
    return member.unit_cost * member.quantity


def _pack_supplier(units: list[Unit], lots: Counter):
    """Unit.supplier is required: a pack is attributed to its first unit member's supplier, or to the
    supplier of an agreement of its first lot member's product (what it came from, for the trace)."""
    if units:
        return units[0].supplier
    product_ids = [product for product, _ in sorted(lots)]
    agreement = SupplyAgreement.objects.filter(product_id__in=product_ids).order_by("-is_active", "pk").first()
    if agreement is None:
        raise Refused(Refusal.NO_ACTIVE_AGREEMENT, product=product_ids[0] if product_ids else "?", supplier="?")
    return agreement.supplier


# --- use and break-up ------------------------------------------------------------------------------


def _locked_pack(pack: Pack) -> tuple[Unit, list[PackMember], dict[int, Unit]]:
    """Lock the pack's unit and its live members' units (ids in order), then read its live members."""
    member_unit_ids = list(pack.members.filter(state=PackMember.State.LIVE, unit__isnull=False)
                           .values_list("unit_id", flat=True))
    locked = {
        unit.pk: unit for unit in Unit.objects.select_for_update(of=("self",)).select_related("location", "product")
        .filter(pk__in=[pack.unit_id, *member_unit_ids]).order_by("pk")
    }
    members = list(PackMember.objects.select_for_update().filter(pack=pack, state=PackMember.State.LIVE)
                   .select_related("product").order_by("pk"))
    return locked[pack.unit_id], members, locked


def member_name(member: PackMember) -> str:
    label = f"SN {member.unit.serial}" if member.unit_id else f"批号 {member.lot}"
    return f"{member.product.name} {label}"


def _expired_member_problem(pack_unit: Unit, members: list[PackMember]) -> Problem | None:
    today = timezone.localdate()
    for member in members:
        if member.expiry and member.expiry < today:
            return Problem(Refusal.PACK_MEMBER_EXPIRED, {
                "pack": pack_unit.serial, "member": member_name(member), "expiry": member.expiry}, member.pk)
    return None


def _release(actor, member: PackMember, pack_unit: Unit, units: dict[int, Unit], key: str,
             now: datetime.datetime) -> Movement:
    """Move one member out of the pack into the pack's place (and, for a unit, the pack's status)."""
    document = (PACK_DOCUMENT, member.pack_id)
    if member.unit_id:
        status = UnitStatus.TAKEN if pack_unit.status == UnitStatus.TAKEN else UnitStatus.IN_STOCK
        return move_unit(unit=units[member.unit_id], kind=Movement.Kind.PACK_OUT, to_status=status,
                         to_location=pack_unit.location, actor=actor, idempotency_key=key, document=document,
                         occurred_at=now)
    return move_lot(
        product=member.product, lot=member.lot, quantity=member.quantity, source=None,
        to_location=pack_unit.location, kind=Movement.Kind.PACK_OUT, actor=actor, idempotency_key=key,
        document=document, occurred_at=now, layers=_layers(member),
        new_balance_defaults={"expiry": member.expiry},
    )


def _layers(member: PackMember) -> list[LayerDraw]:
    return [LayerDraw(receipt, quantity, Decimal(cost), gift) for receipt, quantity, cost, gift in member.layers]


def _empty_if_done(actor, pack: Pack, pack_unit: Unit, now: datetime.datetime) -> None:
    if pack.members.filter(state=PackMember.State.LIVE).exists():
        return
    move_unit(unit=pack_unit, kind=Movement.Kind.PACK_EMPTIED, to_status=UnitStatus.UNPACKED, to_location=None,
              actor=actor, idempotency_key=f"{pack.hospital_id}:pack:{pack.pk}:emptied",
              document=(PACK_DOCUMENT, pack.pk), occurred_at=now)
    pack.emptied_at = now
    pack.save(update_fields=["emptied_at"])


def break_pack(*, actor: Actor, hospital: Hospital, pack: Pack, idempotency_key: str) -> Pack:
    """拆包: return every member still in the pack to stock where the pack is, one PACK_OUT movement
    each, and take the pack's own unit out of stock. The pack must be on a shelf (not in a cabinet
    or taken); an expired pack may be broken up (that is how its good members are saved)."""
    if pack.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="resource")

    def perform() -> Pack:
        pack_unit, members, units = _locked_pack(pack)
        if pack_unit.status not in (UnitStatus.IN_STOCK, UnitStatus.EXPIRED):
            raise Refused(Refusal.PACK_NOT_IN_STOCK, pack=pack_unit.serial, status=pack_unit.get_status_display())
        now = timezone.now()
        for member in members:
            member.out_movement = _release(actor, member, pack_unit, units,
                                           f"{hospital.pk}:pack:{pack.pk}:out:{member.pk}", now)
            member.state = PackMember.State.RETURNED
            member.save(update_fields=["out_movement", "state"])
        _empty_if_done(actor, pack, pack_unit, now)
        return pack

    broken, _ = run_once(hospital=hospital, key=idempotency_key, operation="break_pack", payload={"pack": pack.pk},
                         perform=perform)
    return broken


def use_pack(
    *, actor: Actor, hospital: Hospital, pack: Pack, context: ClinicalContext, idempotency_key: str,
    member_ids: list[int] | None = None,
) -> Pack:
    """Use a whole pack (or the members named) on an encounter: each member used is consumed with its
    own charge at its own cost (零差率), once; the rest stays in the pack, in the department. An
    expired member locks the whole pack, named in the refusal."""
    refuse_bad_context(actor, hospital, context)
    if pack.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="resource")
    payload = {"pack": pack.pk, "members": sorted(member_ids) if member_ids is not None else None,
               **context.as_payload()}

    def perform() -> Pack:
        pack_unit, members, units = _locked_pack(pack)
        # A pack in a cabinet is taken out first (the cabinet sees it go), like any unit.
        problem = _expired_member_problem(pack_unit, members) or transition_problem(pack_unit, UnitStatus.CONSUMED)
        if problem is not None:
            raise Refused([problem])
        location = pack_unit.location
        if location is None or location.department_id != context.department.pk:
            raise Refused(Refusal.UNIT_NOT_IN_DEPARTMENT, unit=pack_unit.serial, location=location,
                          department=context.department)
        chosen = members
        if member_ids is not None:
            live = {member.pk for member in members}
            gone = [pk for pk in member_ids if pk not in live]
            if gone or not member_ids:
                raise Refused([Problem(Refusal.PACK_MEMBER_NOT_LIVE, {"member": pk, "pack": pack_unit.serial}, pk)
                               for pk in gone] or [Problem(Refusal.PACK_MEMBERS_SHORT, {
                                   "product": pack_unit.product, "expected": 1, "scanned": 0})])
            chosen = [member for member in members if member.pk in set(member_ids)]
        now = timezone.now()
        for member in chosen:
            key = f"{hospital.pk}:pack:{pack.pk}:out:{member.pk}"
            member.out_movement = _release(actor, member, pack_unit, units, key, now)
            if member.unit_id:
                member.consumption = consume_unit(actor=actor, hospital=hospital, unit=units[member.unit_id],
                                                  context=context, idempotency_key=f"{key}:use")
            else:
                member.consumption = _consume_member_lot(actor, hospital, member, location, context, now)
            member.state = PackMember.State.USED
            member.save(update_fields=["out_movement", "consumption", "state"])
        _empty_if_done(actor, pack, pack_unit, now)
        return pack

    used, _ = run_once(hospital=hospital, key=idempotency_key, operation="use_pack", payload=payload,
                       perform=perform)
    return used


def _consume_member_lot(actor, hospital, member: PackMember, location: Location, context: ClinicalContext,
                        now: datetime.datetime) -> Consumption:
    """Consume a lot member just put back at `location`, from the very layers it came with: one
    consumption and charge per price, as `consume_lot` does."""
    product = member.product
    if not product.his_charge_code:
        raise Refused(Refusal.NO_CHARGE_CODE, product=product)
    source = LotBalance.objects.select_for_update(of=("self",)).get(product=product, lot=member.lot, location=location)
    used_at = context.occurred_at or now
    team_id = team_at_use(hospital=hospital, context=context, used_at=used_at)
    first = None
    for draws in draws_by_price(_layers(member)):
        part = Consumption.objects.create(
            hospital=hospital, product=product, lot=member.lot, quantity=sum(draw.quantity for draw in draws),
            location=location, unit_price=draws[0].unit_cost, was_consignment=False, occurred_at=used_at,
            part_of=first, recorded_by=actor.user, recorded_by_device=actor.device,
            **clinical_fields(context, team_id=team_id),
        )
        move_lot(product=product, lot=member.lot, quantity=part.quantity, source=source, to_location=None,
                 layers=draws, kind=Movement.Kind.CONSUME, actor=actor, idempotency_key=f"{hospital.pk}:consume:{part.pk}",
                 document=(Movement.DocumentType.CONSUMPTION, part.pk), occurred_at=used_at)
        queue_charge(part, is_zero_cost=draws[0].is_gift or draws[0].unit_cost == 0)
        first = first or part
    return first


# --- sets -------------------------------------------------------------------------------------------


def set_partner_window() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.SPD_SET_PARTNER_WINDOW_HOURS)


@dataclass(frozen=True)
class SetGap:
    """A set component used on an encounter whose partners were not used on it within the window:
    `member` (a unit, or a lot quantity) used at `used_at` by `consumption`, `missing` its partners."""

    member: PackMember
    encounter: str
    used_at: datetime.datetime
    consumption_id: int
    location_id: int | None
    missing: list[PackMember]


def _member_key(member: PackMember) -> tuple:
    """What a use of `member` is recognised by: its unit, or for a lot quantity its product and lot."""
    return ("unit", member.unit_id) if member.unit_id else ("lot", member.product_id, member.lot)


def set_partner_gaps(
    *, hospital: Hospital, now: datetime.datetime, used_from: datetime.datetime | None = None,
    used_until: datetime.datetime | None = None,
) -> list[SetGap]:
    """Every use of a set's component (used between `used_from` and `used_until` if given) whose
    window (SPD_SET_PARTNER_WINDOW_HOURS) has passed by `now` while a partner was not used on the
    same encounter within the window before or after it.

    A unit component is used by any consumption of that unit (from the pack, or after 拆包 by the
    ordinary bedside use). A lot component is used by its own consumption from the pack: once a
    break-up has returned it to stock, its quantity is one with the rest of the lot and no use is
    its own. As a partner, a lot component counts as used by any use of its product and lot on the
    encounter (from the pack or from the shelf). Refunded uses do not count."""
    window = set_partner_window()
    members = list(
        PackMember.objects.filter(pack__hospital=hospital, pack__definition__kind=PackDefinition.Kind.SET)
        .select_related("pack__unit", "product", "unit", "consumption").order_by("pack_id", "pk")
    )
    uses = defaultdict(list)  # member key -> [(encounter, at, consumption id, location id)]
    unit_ids = [member.unit_id for member in members if member.unit_id]
    lots = {(member.product_id, member.lot) for member in members if not member.unit_id}
    live = Consumption.objects.filter(hospital=hospital, refunded_at__isnull=True)
    for unit_id, encounter, at, pk, location_id in live.filter(unit_id__in=unit_ids).values_list(
        "unit_id", "encounter", "occurred_at", "pk", "location_id"
    ):
        uses[("unit", unit_id)].append((encounter, at, pk, location_id))
    if lots:
        lot_filter = Q()
        for product_id, lot in lots:
            lot_filter |= Q(product_id=product_id, lot=lot)
        for product_id, lot, encounter, at, pk, location_id in live.filter(lot_filter, unit__isnull=True).values_list(
            "product_id", "lot", "encounter", "occurred_at", "pk", "location_id"
        ):
            uses[("lot", product_id, lot)].append((encounter, at, pk, location_id))
    by_pack = defaultdict(list)
    for member in members:
        by_pack[member.pack_id].append(member)
    gaps = []
    for pack_members in by_pack.values():
        for member in pack_members:
            for encounter, at, consumption_id, location_id in _own_uses(member, uses):
                if at + window > now or (used_from and at < used_from) or (used_until and at >= used_until):
                    continue
                missing = [
                    partner for partner in pack_members if partner is not member and not any(
                        used_encounter == encounter and abs(used_at - at) <= window
                        for used_encounter, used_at, _, _ in uses[_member_key(partner)])
                ]
                if missing:
                    gaps.append(SetGap(member, encounter, at, consumption_id, location_id, missing))
    return gaps


def _own_uses(member: PackMember, uses: dict) -> list[tuple]:
    if member.unit_id:
        return uses[_member_key(member)]
    own = member.consumption
    if own is None or own.refunded_at is not None:
        return []
    return [(own.encounter, own.occurred_at, own.pk, own.location_id)]


def scan_set_partners(*, hospital: Hospital, now: datetime.datetime | None = None) -> alerts.ScanResult:
    """Keep one SET_PARTNER_MISSING alert open per (set, encounter) where a component of a set was used
    and a partner was not used on the same encounter within SPD_SET_PARTNER_WINDOW_HOURS (an IOL
    without its injector), for unit and lot components alike (`set_partner_gaps`). Resolved
    automatically once the partner's use is recorded."""
    now = now or timezone.now()
    specs = [_partner_spec(hospital, gap) for gap in set_partner_gaps(hospital=hospital, now=now)]
    unique = {spec.subject_key: spec for spec in specs}
    return alerts.sync_alerts(kind=Alert.Kind.SET_PARTNER_MISSING, specs=unique.values(),
                              scope=Q(hospital=hospital), now=now)


def _partner_spec(hospital: Hospital, gap: SetGap) -> alerts.AlertSpec:
    member, missing = gap.member, gap.missing
    names = "、".join(member_name(partner) for partner in missing)
    subject = {"product_id": member.product_id, "location_id": gap.location_id}
    if member.unit_id:
        subject["unit_id"] = member.unit_id
    return alerts.AlertSpec(
        hospital.pk, f"set:{member.pack_id}:{gap.encounter}", Alert.Severity.WARNING,
        f"配套组件 {member_name(member)} 已用于就诊 {gap.encounter}，但配套的 {names} 未在同一就诊中使用",
        {"pack": member.pack_id, "encounter": gap.encounter, "used_member": member.pk, "used_unit": member.unit_id,
         "used_lot": member.lot, "missing_members": [partner.pk for partner in missing],
         "missing_units": [partner.unit_id for partner in missing if partner.unit_id]},
        subject,
    )
