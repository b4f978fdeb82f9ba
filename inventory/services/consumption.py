"""Use on a patient (使用) and its refund (退费): exactly once, at zero markup, billed through the outbox.

A consumption writes, in one transaction: the movements (an owner change first for a consignment
unit, then CONSUME), the Consumption, its Charge and the Charge's outbox row for the HIS. A refund
writes the reversing movements, a negative Charge and its outbox row; nothing is ever deleted.
Lock order: unit, then lot balances by id.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Case, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    Charge,
    ChargeDelivery,
    ClinicalTeam,
    ClinicalTeamMember,
    ClosedPeriod,
    Consumption,
    Department,
    Hospital,
    IdempotencyRecord,
    Location,
    LotBalance,
    LotMovementLayer,
    Movement,
    Owner,
    PackagingUnit,
    Product,
    SupplierSettlement,
    TrackingMode,
    Unit,
    UnitStatus,
)
from inventory.selectors.scope import departments_of
from inventory.services.compiled_sql import FirstInstanceCache, sentinel_date, sentinel_int, sentinel_text
from inventory.services.dated_entry import lot_history_problem, refuse_bad_moment, unit_history_problems
from inventory.services.idempotency import Claim, run_once
from inventory.services.ledger import (
    LayerDraw,
    change_unit_owner,
    could_refuse_unit_move_sql,
    fifo_draw,
    move_lot,
    move_unit,
    owner_change,
    transition_problem,
    unit_movement,
)
from inventory.services.period_close import refuse_closed_period
from inventory.services.sql_rows import assignments, mark_saved, row_values
from inventory.services.units_of_measure import BilledQuantity, UnitOfMeasure, billing_unit_of, in_billing_unit
from inventory.validators import is_his_reference, personal_id_problems, refuse_personal_ids


@dataclass(frozen=True)
class ClinicalContext:
    """Where and for whom an item is used. Only HIS references: never a patient's name or id."""

    encounter: str
    department: Department
    surgery_id: str = ""
    surgery_name: str = ""
    doctor: str = ""
    occurred_at: datetime.datetime | None = None
    # The clinical team (诊疗组) when the caller names it; else the doctor's team on the day of use.
    clinical_team: ClinicalTeam | None = None

    def as_payload(self) -> dict:
        payload = {
            "encounter": self.encounter, "department": self.department.pk, "surgery_id": self.surgery_id,
            "surgery_name": self.surgery_name, "doctor": self.doctor, "occurred_at": self.occurred_at,
        }
        if self.clinical_team is not None:  # absent otherwise: the payloads recorded before teams stay equal
            payload["clinical_team"] = self.clinical_team.pk
        return payload


def consume_unit(*, actor: Actor, hospital: Hospital, unit: Unit, context: ClinicalContext, idempotency_key: str) -> Consumption:
    """Use one high-value unit on an encounter; the unit must be taken or in stock in that department."""
    refuse_bad_context(actor, hospital, context)
    if unit.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="unit")
    payload = {"unit": unit.pk, **context.as_payload()}
    # A paper record's moment is checked here; now, with the unit's lock (`closed_through`).
    moment = refuse_bad_moment(hospital_id=hospital.pk, occurred_at=context.occurred_at) if context.occurred_at else None

    def perform(claim: Claim) -> Consumption:
        team_day = timezone.localdate(context.occurred_at or timezone.now())
        locked = _lock_unit(unit.pk, hospital, context=context, team_day=team_day)
        if moment is None and locked.closed_through is not None and timezone.now() < locked.closed_through:
            refuse_closed_period(hospital_id=hospital.pk, moment=timezone.now())
        _refuse_unusable_unit(locked, context.department)
        if context.occurred_at is not None and (problems := unit_history_problems([locked], moment)):
            raise Refused(problems)
        product = locked.product
        if not product.his_charge_code:
            raise Refused(Refusal.NO_CHARGE_CODE, product=product)
        used_at = context.occurred_at or timezone.now()
        team_id = (locked.doctor_team_id if timezone.localdate(used_at) == team_day  # read with the lock
                   else team_at_use(hospital=hospital, context=context, used_at=used_at))
        consumption = Consumption(
            hospital=hospital, product=product, unit=locked, lot=locked.lot, quantity=1, location=locked.location,
            unit_price=locked.unit_cost, was_consignment=locked.owner == Owner.SUPPLIER, occurred_at=used_at,
            recorded_by=actor.user, recorded_by_device=actor.device, **clinical_fields(context, team_id=team_id),
        )
        if written := _write_use_at_once(consumption, locked, actor=actor, claim=claim):
            return written
        consumption.save(force_insert=True)
        document = (Movement.DocumentType.CONSUMPTION, consumption.pk)
        key = f"{hospital.pk}:consume:{consumption.pk}"
        if locked.owner == Owner.SUPPLIER:
            change_unit_owner(unit=locked, to_owner=Owner.HOSPITAL, actor=actor, idempotency_key=f"{key}:owner",
                              document=document, occurred_at=used_at, note="consignment unit used: bought now")
        move_unit(unit=locked, kind=Movement.Kind.CONSUME, to_status=UnitStatus.CONSUMED, to_location=None,
                  actor=actor, idempotency_key=key, document=document, occurred_at=used_at)
        charge = queue_charge(consumption, is_zero_cost=locked.is_gift or locked.unit_cost == 0,
                              billing=locked.billing_unit)
        return with_written_parts(consumption, charges=[charge])

    # The record after the work: the unit's lock serialises two uses of the same key (the second
    # finds it used, then the first's record), and one statement records key and outcome.
    consumption, _ = run_once(hospital=hospital, key=idempotency_key, operation="consume_unit", payload=payload,
                              perform_with_claim=perform)
    return consumption


def _write_use_at_once(consumption: Consumption, locked: Unit, *, actor: Actor, claim: Claim) -> Consumption | None:
    """A unit's use written in one statement, one round trip: the consumption, the owner change of a
    consignment unit, the CONSUME movement, the unit, the charge, its outbox row and the idempotency
    record — the rows `consume_unit` otherwise writes one by one, built by the same functions —,
    written only when none of the movement's checks could refuse it (`could_refuse_unit_move`: a
    closed month, a count's freeze, an alliance hold, an open recall of the product; the condition
    `move_units` inserts under). None, having written nothing, when one could or when the charge
    would be refused: the caller then writes them one by one, and the ledger's functions decide
    and word the refusal, in their order."""
    if connection.vendor != "postgresql":  # a statement that writes in its WITH is PostgreSQL's
        return None
    try:
        billed = in_billing_unit(product=consumption.product, base_quantity=1, base_unit_price=locked.unit_cost,
                                 billing=locked.billing_unit)
    except Refused:
        return None
    hospital_id, used_at = consumption.hospital_id, consumption.occurred_at
    document = (Movement.DocumentType.CONSUMPTION, None)
    key_prefix = f"{hospital_id}:consume:"
    consumption_id = ("used.id", [])
    movements = []
    after_use = {"status": UnitStatus.CONSUMED, "location": None, "status_since": used_at}
    if locked.owner == Owner.SUPPLIER:
        movements.append((owner_change(locked, to_owner=Owner.HOSPITAL, actor=actor, idempotency_key="",
                                       document=document, occurred_at=used_at, note="consignment unit used: bought now"),
                          ":owner"))
        after_use["owner"] = Owner.HOSPITAL
    movements.append((unit_movement(locked, kind=Movement.Kind.CONSUME, to_status=UnitStatus.CONSUMED,
                                    to_location=None, actor=actor, idempotency_key="", document=document,
                                    occurred_at=used_at), ""))
    charge = _charge(consumption, billed, is_zero_cost=locked.is_gift or locked.unit_cost == 0)
    delivery = ChargeDelivery()
    record = claim.record(Consumption._meta.label)

    guard_sql, guard_params = could_refuse_unit_move_sql(
        kind=Movement.Kind.CONSUME, unit=locked, to_location=None, document=document, moment=used_at,
    )
    columns, values, params = row_values(consumption)
    sql = [f"WITH used AS (INSERT INTO {_table(Consumption)} ({', '.join(columns)}) SELECT {', '.join(values)} "
           f"WHERE NOT EXISTS ({guard_sql}) RETURNING id)"]
    params += guard_params
    rows = []
    for position, (movement, key_suffix) in enumerate(movements):
        columns, values, row_params = row_values(movement, computed={
            "document_id": consumption_id, "idempotency_key": ("CAST(%s AS text) || used.id || CAST(%s AS text)", [key_prefix, key_suffix]),
        })
        rows.append(f"SELECT {position}, {', '.join(values)} FROM used")
        params += row_params
    aliases = ", ".join(f"m{index}" for index in range(len(columns)))
    sql.append(f"moved AS (INSERT INTO {_table(Movement)} ({', '.join(columns)}) SELECT {aliases} "
               f"FROM ({' UNION ALL '.join(rows)}) AS row(position, {aliases}) ORDER BY position)")
    sets, set_params = assignments(Unit, after_use)
    sql.append(f"changed AS (UPDATE {_table(Unit)} SET {sets} WHERE id = %s AND EXISTS (SELECT 1 FROM used))")
    params += [*set_params, locked.pk]
    columns, values, row_params = row_values(charge, computed={"consumption_id": consumption_id})
    sql.append(f"charged AS (INSERT INTO {_table(Charge)} ({', '.join(columns)}) SELECT {', '.join(values)} "
               "FROM used RETURNING id)")
    params += row_params
    columns, values, row_params = row_values(delivery, computed={"charge_id": ("charged.id", [])})
    sql.append(f"queued AS (INSERT INTO {_table(ChargeDelivery)} ({', '.join(columns)}) SELECT {', '.join(values)} "
               "FROM charged RETURNING id)")
    params += row_params
    columns, values, row_params = row_values(record, computed={"result_id": consumption_id})
    sql.append(f"recorded AS (INSERT INTO {_table(IdempotencyRecord)} ({', '.join(columns)}) "
               f"SELECT {', '.join(values)} FROM used)")
    params += row_params
    with connection.cursor() as cursor:
        cursor.execute(",\n".join(sql) + "\nSELECT used.id, charged.id, queued.id FROM used, charged, queued", params)
        written = cursor.fetchone()
    if written is None:
        return None
    for name, value in after_use.items():
        setattr(locked, name, value)
    mark_saved(consumption, written[0])
    mark_saved(charge, written[1])
    charge.consumption = consumption
    mark_saved(delivery, written[2])
    delivery.charge = charge
    charge.delivery = delivery
    claim.recorded = True
    return with_written_parts(consumption, charges=[charge])


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _lock_unit(pk: int, hospital: Hospital, *, context: ClinicalContext, team_day: datetime.date) -> Unit:
    """The unit locked for its use, with its product, location, the product's billing unit
    (`billing_unit`), the end of the hospital's closed months (`closed_through`) and the first of
    the doctor's teams on `team_day` (`doctor_team_id`: see `team_at_use`) read in the same
    statement; NOT_FOUND when it is not one of the hospital's units. The statement is compiled
    once per shape (whether there is a doctor's team to look up)."""
    looks_up_team = _looks_up_team(context)
    values = {"pk": pk, "hospital_id": hospital.pk, "doctor": context.doctor, "day": team_day,
              "department_id": context.department.pk}
    locked = _UNIT_LOCKS.first(looks_up_team, values)
    if locked is None:
        raise Refused(Refusal.NOT_FOUND, what="unit")
    locked.billing_unit = billing_unit_of(locked.product, name=locked.billing_name, factor=locked.billing_factor)
    return locked


def _unit_lock(looks_up_team: bool, values: dict) -> QuerySet[Unit]:
    billing = PackagingUnit.objects.filter(product=OuterRef("product_id"), is_billing_unit=True)
    closed = ClosedPeriod.objects.filter(hospital_id=values["hospital_id"]).order_by("-ends_at").values("ends_at")[:1]
    teams = (_teams_of_doctor(hospital_id=values["hospital_id"], doctor=values["doctor"], day=values["day"],
                              department_id=values["department_id"]) if looks_up_team else None)
    return (
        Unit.objects.select_for_update(of=("self",)).select_related("product", "location__department")
        .annotate(billing_name=Subquery(billing.values("name")[:1]), billing_factor=Subquery(billing.values("factor")[:1]),
                  closed_through=Subquery(closed),
                  doctor_team_id=Subquery(teams[:1]) if teams is not None else Value(None, IntegerField()))
        .filter(pk=values["pk"], hospital_id=values["hospital_id"])
    )


def _unit_lock_sentinels(looks_up_team: bool) -> dict:
    return {"pk": sentinel_int(), "hospital_id": sentinel_int(), "doctor": sentinel_text(), "day": sentinel_date(),
            "department_id": sentinel_int()}


_UNIT_LOCKS = FirstInstanceCache(_unit_lock, _unit_lock_sentinels)


def with_written_parts(consumption: Consumption, *, charges: list[Charge], other_parts: list[Consumption] = ()) -> Consumption:
    """`consumption` knowing the charges and other parts it was just written with, as a prefetch would:
    the API answers a new use without reading back what it wrote."""
    known = {}
    for name, rows in (("charges", charges), ("other_parts", list(other_parts))):
        queryset = getattr(consumption, name).all()
        queryset._result_cache, queryset._prefetch_done = rows, True  # as prefetch_related_objects leaves it
        known[name] = queryset
    consumption._prefetched_objects_cache = known
    return consumption


def consume_lot(
    *, actor: Actor, hospital: Hospital, product: Product, lot: str, quantity: int, context: ClinicalContext,
    idempotency_key: str, location: Location | None = None,
) -> Consumption:
    """Use a quantity of one lot of a lot-tracked product, from a store of the ordering department.

    The quantity is taken from the lot's cost layers oldest receipt first and billed at what each
    layer cost (零差率). When they cost different prices (or some is a gift), the use is one
    consumption per price, each with its own charge: the first is returned, the others are its
    `other_parts`. One charge line per price keeps every line's unit price an exact purchase price,
    which the HIS and the reconciliation compare line by line; their amounts add up to the exact
    cost of the use. A gift layer is charged at zero and its charge flagged `is_zero_cost`.
    """
    refuse_bad_context(actor, hospital, context)
    if product.hospital_id != hospital.pk or (location is not None and location.hospital_id != hospital.pk):
        raise Refused(Refusal.NOT_FOUND, what="product or location")
    if product.tracking != TrackingMode.LOT or quantity < 1 or not lot:
        raise Refused(Refusal.LOT_USE_INCOMPLETE)
    if product.expensed_on_issue:
        raise Refused(Refusal.EXPENSED_NOT_BILLED, product=product)
    if not product.his_charge_code:
        raise Refused(Refusal.NO_CHARGE_CODE, product=product)
    payload = {"product": product.pk, "lot": lot, "quantity": quantity,
               "location": location.pk if location else None, **context.as_payload()}

    moment = refuse_bad_moment(hospital_id=hospital.pk, occurred_at=context.occurred_at)

    def perform() -> Consumption:
        source = _lot_source(product, lot, quantity, context.department, location)
        if context.occurred_at is not None and (
            problem := lot_history_problem(product, lot, source.location, quantity, moment)
        ):
            raise Refused([problem])
        used_at = context.occurred_at or timezone.now()
        team_id = team_at_use(hospital=hospital, context=context, used_at=used_at)
        first = None
        for draws in draws_by_price(fifo_draw(source, quantity)):
            part = Consumption.objects.create(
                hospital=hospital, product=product, lot=lot, quantity=sum(draw.quantity for draw in draws),
                location=source.location, unit_price=draws[0].unit_cost, was_consignment=source.owner == Owner.SUPPLIER,
                occurred_at=used_at, part_of=first, recorded_by=actor.user, recorded_by_device=actor.device,
                **clinical_fields(context, team_id=team_id),
            )
            move_lot(product=product, lot=lot, quantity=part.quantity, source=source, to_location=None, layers=draws,
                     kind=Movement.Kind.CONSUME, actor=actor, idempotency_key=f"{hospital.pk}:consume:{part.pk}",
                     document=(Movement.DocumentType.CONSUMPTION, part.pk), occurred_at=used_at)
            queue_charge(part, is_zero_cost=draws[0].is_gift or draws[0].unit_cost == 0)
            first = first or part
        return first

    consumption, _ = run_once(hospital=hospital, key=idempotency_key, operation="consume_lot", payload=payload,
                              perform=perform)
    return consumption


def refund_consumption(
    *, actor: Actor, consumption: Consumption, reason_code: str, to_quarantine: bool, idempotency_key: str
) -> Consumption:
    """Reverse a consumption (退费): the item goes back to stock (or quarantine) and a refund charge
    is queued for the HIS. A consignment unit goes back to the supplier's ownership. A lot quantity
    goes back into the very cost layers its use took it from; a use billed at several prices is
    refunded whole, whichever of its parts is named."""
    if not reason_code:
        raise Refused(Refusal.REASON_REQUIRED)
    refuse_personal_ids(reason_code=reason_code)
    hospital = consumption.hospital
    payload = {"consumption": consumption.pk, "reason": reason_code, "quarantine": to_quarantine}

    def perform() -> Consumption:
        unit = Unit.objects.select_for_update().get(pk=consumption.unit_id) if consumption.unit_id else None
        first_pk = consumption.part_of_id or consumption.pk
        parts = list(Consumption.objects.select_for_update().filter(Q(pk=first_pk) | Q(part_of_id=first_pk)).order_by("pk"))
        if any(part.refunded_at is not None for part in parts):
            raise Refused(Refusal.ALREADY_REFUNDED, consumption=consumption.pk)
        if SupplierSettlement.objects.filter(
            lines__consumption__in=parts, status=SupplierSettlement.Status.CONFIRMED
        ).exists():
            raise Refused(Refusal.CONSUMPTION_SETTLED, consumption=consumption.pk)
        destination = _refund_destination(parts[0], to_quarantine)
        now = timezone.now()
        for part in parts:
            _refund_part(actor, part, unit, destination, reason_code, now)
        return next(part for part in parts if part.pk == consumption.pk)

    refunded, _ = run_once(hospital=hospital, key=idempotency_key, operation="refund_consumption", payload=payload,
                           perform=perform)
    return refunded


def _refund_part(
    actor: Actor, part: Consumption, unit: Unit | None, destination: Location, reason_code: str,
    now: datetime.datetime,
) -> None:
    hospital_id = part.hospital_id
    document = (Movement.DocumentType.CONSUMPTION, part.pk)
    key = f"{hospital_id}:refund:{part.pk}"
    if unit is not None:
        move_unit(unit=unit, kind=Movement.Kind.UNCONSUME, to_status=UnitStatus.IN_STOCK, to_location=destination,
                  actor=actor, idempotency_key=key, document=document, occurred_at=now, reason_code=reason_code)
        if part.was_consignment:
            change_unit_owner(unit=unit, to_owner=Owner.SUPPLIER, actor=actor, idempotency_key=f"{key}:owner",
                              document=document, occurred_at=now, note="refunded before settlement")
    else:
        used = LotMovementLayer.objects.filter(
            movement__document_type=Movement.DocumentType.CONSUMPTION, movement__document_id=part.pk,
            movement__kind=Movement.Kind.CONSUME,
        ).order_by("pk")
        layers = [LayerDraw(row.receipt_id, row.quantity, row.unit_cost, row.is_gift) for row in used]
        # A use recorded before cost layers existed took from what is now the opening layer.
        layers = layers or [LayerDraw(None, part.quantity, part.unit_price)]
        template = LotBalance.objects.filter(product_id=part.product_id, lot=part.lot).first()
        move_lot(product=part.product, lot=part.lot, quantity=part.quantity, source=None,
                 to_location=destination, kind=Movement.Kind.UNCONSUME, actor=actor, idempotency_key=key,
                 document=document, occurred_at=now, reason_code=reason_code, layers=layers,
                 new_balance_defaults={
                     "expiry": template.expiry if template else None,
                     "owner": Owner.SUPPLIER if part.was_consignment else Owner.HOSPITAL,
                 })
    part.refunded_at, part.refund_reason = now, reason_code
    part.save(update_fields=["refunded_at", "refund_reason"])
    original = part.charges.get(kind=Charge.Kind.CHARGE)
    refund = Charge.objects.create(
        hospital_id=hospital_id, consumption=part, kind=Charge.Kind.REFUND, refund_of=original,
        encounter=original.encounter, his_charge_code=original.his_charge_code, nhsa_code=original.nhsa_code,
        quantity=-original.quantity, unit_price=original.unit_price, amount=-original.amount,
        billing_unit=original.billing_unit, is_zero_cost=original.is_zero_cost,
    )
    ChargeDelivery.objects.create(charge=refund)


def draws_by_price(draws: list[LayerDraw]) -> list[list[LayerDraw]]:
    """The layers drawn for one use, grouped by (purchase price, gift), in the order first drawn: a use
    spanning cost layers is recorded as one consumption and one charge per group (零差率)."""
    groups: dict[tuple[Decimal, bool], list[LayerDraw]] = {}
    for draw in draws:
        groups.setdefault((draw.unit_cost, draw.is_gift), []).append(draw)
    return list(groups.values())


def refuse_bad_context(actor: Actor, hospital: Hospital, context: ClinicalContext) -> None:
    """Refuse a clinical context no use may be recorded against: a personal identity number in any
    field, an encounter that is not a HIS reference, another hospital's department (all problems at
    once), or a department the person does not work for (NOT_YOUR_DEPARTMENT). Every path that
    consumes stock on a patient (units, lots, packs) checks the context with this first."""
    problems = personal_id_problems(
        encounter=context.encounter, doctor=context.doctor, surgery_id=context.surgery_id,
        surgery_name=context.surgery_name,
    )
    if not is_his_reference(context.encounter):
        problems.append(Problem(Refusal.INVALID_ENCOUNTER))
    if context.department.hospital_id != hospital.pk:
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "department"}))
    if context.clinical_team is not None and context.clinical_team.hospital_id != hospital.pk:
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "clinical team"}))
    if problems:
        raise Refused(problems)
    user = actor.user
    if user is not None:
        departments = departments_of(user)
        if departments is not None and context.department.pk not in departments:
            raise Refused(Refusal.NOT_YOUR_DEPARTMENT, department=context.department)


def _refuse_unusable_unit(unit: Unit, department: Department) -> None:
    if unit.status == UnitStatus.CONSUMED:
        first = unit.consumptions.filter(refunded_at__isnull=True).first()
        raise Refused(
            Refusal.ALREADY_CONSUMED, unit=unit.serial, encounter=first.encounter if first else "?",
            at=first.occurred_at.isoformat() if first else "?", consumption=first.pk if first else "?",
        )
    if unit.status == UnitStatus.EXPIRED or (unit.expiry and unit.expiry < timezone.localdate()):
        raise Refused(Refusal.UNIT_EXPIRED_LOCKED, unit=unit.serial, expiry=unit.expiry)
    location = unit.location
    if location is not None and location.kind == Location.Kind.QUARANTINE:
        raise Refused(Refusal.UNIT_QUARANTINED, unit=unit.serial, location=location)
    if problem := transition_problem(unit, UnitStatus.CONSUMED):
        raise Refused([problem])
    if location is None or location.department_id != department.pk:
        raise Refused(Refusal.UNIT_NOT_IN_DEPARTMENT, unit=unit.serial, location=location, department=department)


def _lot_source(
    product: Product, lot: str, quantity: int, department: Department, location: Location | None
) -> LotBalance:
    candidates = LotBalance.objects.select_for_update(of=("self",)).select_related("location").filter(
        product=product, lot=lot, location__department=department, quantity__gt=0
    ).exclude(location__kind=Location.Kind.QUARANTINE).order_by("pk")
    if location is not None:
        candidates = candidates.filter(location=location)
    balances = list(candidates)
    for balance in balances:
        if balance.expiry and balance.expiry < timezone.localdate():
            raise Refused(Refusal.LOT_EXPIRED_LOCKED, lot=lot, expiry=balance.expiry)
        if balance.quantity >= quantity:
            return balance
    available = max((balance.quantity for balance in balances), default=0)
    raise Refused(Refusal.INSUFFICIENT_STOCK, lot=lot, location=location or department, available=available,
                  requested=quantity)


def _refund_destination(consumption: Consumption, to_quarantine: bool) -> Location:
    hospital_locations = Location.objects.filter(hospital_id=consumption.hospital_id, is_active=True)
    if to_quarantine:
        kind, found = Location.Kind.QUARANTINE, hospital_locations.filter(kind=Location.Kind.QUARANTINE).first()
    elif consumption.location.kind != Location.Kind.SMART_CABINET:
        return consumption.location
    else:
        # A refunded unit cannot go straight back into a cabinet: the cabinet's own inventory must see it.
        kind, found = Location.Kind.DEPARTMENT_STORE, hospital_locations.filter(
            kind=Location.Kind.DEPARTMENT_STORE, department_id=consumption.location.department_id
        ).first()
    if found is None:
        raise Refused(Refusal.NO_LOCATION_FOR_REFUND, kind=Location.Kind(kind).label)
    return found


def clinical_fields(context: ClinicalContext, *, team_id: int | None = None) -> dict:
    """The context's fields as `Consumption` keyword arguments (encounter, department, surgery, doctor,
    clinical team: the context's own, else `team_id` as `team_at_use` found it)."""
    return {
        "encounter": context.encounter, "department": context.department, "surgery_id": context.surgery_id,
        "surgery_name": context.surgery_name, "doctor": context.doctor,
        "clinical_team_id": context.clinical_team.pk if context.clinical_team is not None else team_id,
    }


def team_at_use(*, hospital: Hospital, context: ClinicalContext, used_at: datetime.datetime) -> int | None:
    """The clinical team (诊疗组) a use is recorded under: the one the caller named, else the team the
    doctor belonged to on the (local) day of use — preferring a team of the ordering department —,
    else none (未分组). At most one query, none when the team is named or no doctor is."""
    teams = _doctor_teams(hospital=hospital, context=context, day=timezone.localdate(used_at))
    if teams is None:
        return context.clinical_team.pk if context.clinical_team is not None else None
    return teams.values_list("team_id", flat=True).first()


def _doctor_teams(*, hospital: Hospital, context: ClinicalContext, day: datetime.date) -> QuerySet | None:
    """The doctor's teams on `day`, the one `team_at_use` takes first; None when there is nothing to
    look up (the caller named the team, or no doctor is named)."""
    if not _looks_up_team(context):
        return None
    return _teams_of_doctor(hospital_id=hospital.pk, doctor=context.doctor, day=day, department_id=context.department.pk)


def _looks_up_team(context: ClinicalContext) -> bool:
    return context.clinical_team is None and bool(context.doctor)


def _teams_of_doctor(*, hospital_id: int, doctor: str, day: datetime.date, department_id: int) -> QuerySet:
    return (
        ClinicalTeamMember.objects.filter(team__hospital_id=hospital_id, doctor=doctor, since__lte=day)
        .filter(Q(until__isnull=True) | Q(until__gte=day))
        .order_by(Case(When(team__department_id=department_id, then=0), default=1), "-since", "pk")
        .values("team_id")
    )


def queue_charge(consumption: Consumption, *, is_zero_cost: bool, billing: UnitOfMeasure | None = None) -> Charge:
    """The charge at the purchase price of that very unit or lot (零差率), and its outbox row.

    It is in the product's billing unit (约定计价单位; `billing` when the caller read it already): a use
    that is not a whole number of them is refused (NOT_WHOLE_BILLING_UNITS), and the amount is the
    use's exact cost either way."""
    billed = in_billing_unit(product=consumption.product, base_quantity=consumption.quantity,
                             base_unit_price=consumption.unit_price, billing=billing)
    charge = _charge(consumption, billed, is_zero_cost=is_zero_cost)
    charge.save(force_insert=True)
    charge.delivery = ChargeDelivery.objects.create(charge=charge)
    return charge


def _charge(consumption: Consumption, billed: BilledQuantity, *, is_zero_cost: bool) -> Charge:
    """The charge of `consumption`, billed as `billed`, not yet saved."""
    product = consumption.product
    return Charge(
        hospital_id=consumption.hospital_id, consumption=consumption, kind=Charge.Kind.CHARGE,
        encounter=consumption.encounter, his_charge_code=product.his_charge_code, nhsa_code=product.nhsa_code,
        quantity=billed.quantity, unit_price=billed.unit_price, amount=billed.amount,
        billing_unit=billed.unit if billed.factor != 1 else "", is_zero_cost=is_zero_cost,
    )

