"""Recalls (召回): open one, work it (quarantine or return by scan, patient follow-up), close it.

Opening a recall lists every affected item once (`RecallItem`) in set-based INSERT … SELECTs and
locks, from then on, the affected units and lots: `ledger.refuse_if_recalled` — the one check every
stock movement passes — refuses any take, issue, pick, pack or use of them with RECALL_LOCKED,
naming the recall. Opening locks the affected unit and lot balance rows (unit → lot balance, by
primary key) so a use in flight either commits before the recall lists it as used, or waits and is
refused.

The regulator's export (CSV, XLSX, PDF) carries the SHA-256 of its CSV, like the reconciliation
reports. Implant records (植入物登记) are read from the uses of unit-tracked high-value products:
they are never purged (a consumption is never deleted).
"""
import csv
import datetime
import hashlib
import io
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import (
    Alert,
    AllianceTransfer,
    AllianceTransferLine,
    Consumption,
    Hospital,
    Location,
    LotBalance,
    Product,
    Recall,
    RecallItem,
    Unit,
    UnitStatus,
    User,
)
from inventory.services import alerts
from inventory.services import stock as stock_service

# Where a unit is still in the hospital (not used, returned, scrapped or rejected).
IN_HOSPITAL = (UnitStatus.RECEIVED, UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET,
               UnitStatus.TAKEN, UnitStatus.EXPIRED, UnitStatus.IN_PACK)
RETURN_REASON = "RECALL"


def _matching(recall: Recall, queryset: QuerySet, *, serial_field: str | None) -> QuerySet:
    queryset = queryset.filter(product_id=recall.product_id)
    if recall.scope == Recall.Scope.LOT:
        queryset = queryset.filter(lot=recall.lot)
    elif recall.scope == Recall.Scope.SERIALS:
        queryset = queryset.filter(**{f"{serial_field}__in": recall.serials}) if serial_field else queryset.none()
    return queryset


def affected_units(recall: Recall) -> QuerySet:
    return _matching(recall, Unit.objects.filter(hospital_id=recall.hospital_id), serial_field="serial")


def affected_lot_balances(recall: Recall) -> QuerySet:
    return _matching(recall, LotBalance.objects.filter(hospital_id=recall.hospital_id), serial_field=None)


def affected_uses(recall: Recall) -> QuerySet:
    return _matching(recall, Consumption.objects.filter(hospital_id=recall.hospital_id, refunded_at__isnull=True),
                     serial_field="unit__serial")


def open_recall(
    *, hospital: Hospital, user: User, scope: str, reason: str, source: str, notice_date: datetime.date,
    product: Product | None = None, udi_di: str = "", lot: str = "", serials: list[str] = (),
    notice_reference: str = "",
) -> Recall:
    """Record a recall and list (and lock) everything it affects in this hospital — and, in a county
    alliance, in every member that received the recalled item by a transfer (`follow_into_members`)."""
    if scope == Recall.Scope.UDI_DI and product is None:
        product = Product.objects.filter(hospital=hospital, udi_di=udi_di.strip()).first()
        if product is None:
            raise Refused(Refusal.PRODUCT_UNKNOWN, di=udi_di, field="udi_di")
    if product is None or product.hospital_id != hospital.pk:
        raise Refused(Refusal.INVALID_REQUEST, detail="product: required", field="product")
    serials = sorted({serial.strip() for serial in serials if serial.strip()})
    if scope == Recall.Scope.LOT and not lot.strip():
        raise Refused(Refusal.INVALID_REQUEST, detail="lot: required for a lot recall", field="lot")
    if scope == Recall.Scope.SERIALS and not serials:
        raise Refused(Refusal.INVALID_REQUEST, detail="serials: required for a recall of serials", field="serials")
    with transaction.atomic():
        recall = _open(hospital=hospital, user=user, scope=scope, product=product,
                       lot=lot.strip() if scope == Recall.Scope.LOT else "",
                       serials=serials if scope == Recall.Scope.SERIALS else [], reason=reason, source=source,
                       notice_reference=notice_reference, notice_date=notice_date, origin=None)
        follow_into_members(recall)
    return recall


def _open(*, hospital: Hospital, user: User, scope: str, product: Product, lot: str, serials: list[str], reason: str,
          source: str, notice_reference: str, notice_date: datetime.date, origin: Recall | None) -> Recall:
    """Create the recall and list (and lock) what it affects in its hospital (inside the caller's transaction)."""
    recall = Recall.objects.create(
        hospital=hospital, scope=scope, product=product, lot=lot, serials=serials, reason=reason, source=source,
        notice_reference=notice_reference, notice_date=notice_date, opened_by=user, origin=origin,
    )
    # One INSERT … SELECT per kind, in this order (unit → lot balance → use); the first two lock
    # the rows they list (FOR UPDATE OF the unit / lot balance, in primary-key order): a use in
    # flight finishes first, or waits and is refused.
    now = timezone.now()
    stock = {"kind": RecallItem.Kind.STOCK, "follow_up": "", "consumption_id": None}
    _insert_items(recall, affected_units(recall).filter(status__in=IN_HOSPITAL).order_by("pk"),
                  now=now, unit_id=F("pk"), quantity=1, **stock)
    _insert_items(recall, affected_lot_balances(recall).filter(quantity__gt=0).order_by("pk"),
                  now=now, unit_id=None, quantity=F("quantity"), **stock)
    _insert_items(recall, affected_uses(recall).order_by("occurred_at", "pk"), now=now, lock=False,
                  kind=RecallItem.Kind.USED, unit_id=F("unit_id"), quantity=F("quantity"),
                  consumption_id=F("pk"), follow_up=RecallItem.FollowUp.PENDING, handling=False)
    return recall


# --- following a recall across the alliance ---------------------------------------------------------


def _received_lines(recall: Recall) -> QuerySet:
    """The lines of transfers `recall`'s hospital sent and another member received, of the recalled item."""
    lines = AllianceTransferLine.objects.filter(
        transfer__from_hospital_id=recall.hospital_id, transfer__status=AllianceTransfer.Status.RECEIVED,
        product_id=recall.product_id, received_quantity__gt=0)
    if recall.scope == Recall.Scope.LOT:
        lines = lines.filter(lot=recall.lot)
    elif recall.scope == Recall.Scope.SERIALS:
        lines = lines.filter(unit__serial__in=recall.serials)
    return lines


def follow_into_members(recall: Recall, _reached: set[int] | None = None) -> list[Recall]:
    """Open `recall` in each member hospital that received the recalled item from its hospital by an
    alliance transfer (and on, to members those received it from), in the same transaction.

    Each member's recall (`origin` = the recall it follows) is a recall of the member's own catalog
    entry for the item (the transfer line's `receiving_product`), same scope, lot, serials, reason
    and notice: it lists and locks the member's stock of it and names the patients it was used on
    there — in the member's books, seen by the member's staff (and by alliance accounts, who read
    every member). The opener sees the member's part as counts and locations only
    (`selectors.recall.followed_in_members`). A member that already has an open recall of the item
    is not opened twice."""
    if not recall.hospital.alliance:
        return []
    reached = _reached if _reached is not None else {recall.hospital_id}
    followed = []
    targets = (_received_lines(recall).exclude(transfer__to_hospital_id__in=reached)
               .values_list("transfer__to_hospital_id", "receiving_product_id").distinct().order_by(
                   "transfer__to_hospital_id", "receiving_product_id"))
    for hospital_id, product_id in targets:
        if hospital_id in reached:
            continue
        reached.add(hospital_id)
        product = Product.objects.get(pk=product_id)
        if _open_recall_covering(recall, product) is not None:
            continue
        mirror = _follow(recall, product)
        followed.append(mirror)
        followed += follow_into_members(mirror, reached)
    return followed


def _follow(recall: Recall, product: Product) -> Recall:
    """Open `recall` in the hospital of `product` (a member's own catalog entry for the item) and tell
    that member's staff: a RECALL_FOLLOWED alert (critical) on its alerts page and through its
    notification rules. The member's recall is opened by the person who opened `recall` — acting for
    the alliance, not one of the member's staff (`Recall.opened_for_alliance`; the pages and the API
    say so)."""
    mirror = _open(hospital=product.hospital, user=recall.opened_by, scope=recall.scope, product=product,
                   lot=recall.lot, serials=list(recall.serials), reason=recall.reason, source=recall.source,
                   notice_reference=recall.notice_reference, notice_date=recall.notice_date, origin=recall)
    counts = _counts(mirror)
    opener = recall.opened_by
    _alert_followed(
        mirror, message=f"Recall {mirror.label} opened for the alliance by {opener.username} of {recall.hospital.name}, "
                        f"following its recall R{recall.pk}: {counts['stock']} stock items, {counts['uses']} uses to follow up",
        details={"recall": mirror.pk, "origin": recall.pk, "origin_hospital": recall.hospital.name,
                 "opened_by": opener.get_full_name() or opener.username, **counts},
    )
    return mirror


def _counts(recall: Recall) -> dict[str, int]:
    """How many stock items and uses on patients `recall` lists."""
    return recall.items.aggregate(stock=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK)),
                                  uses=Count("pk", filter=Q(kind=RecallItem.Kind.USED)))


def _alert_followed(recall: Recall, *, message: str, details: dict) -> None:
    """The RECALL_FOLLOWED alert of `recall` (critical, for its hospital's SPD staff): raised, or — open
    already (also when acknowledged) — bumped with this wording, as the alerts service does for a
    subject raised again (one alert per recall, its occurrences counted; no second notification)."""
    alerts.raise_alert(hospital=recall.hospital, kind=Alert.Kind.RECALL_FOLLOWED, subject_key=followed_subject(recall),
                       severity=Alert.Severity.CRITICAL, product=recall.product, message=message, details=details)


def followed_subject(recall: Recall) -> str:
    return f"recall:{recall.pk}"


def _open_recall_covering(recall: Recall, product: Product) -> Recall | None:
    """An open recall of `product` that already covers what `recall` recalls."""
    for other in Recall.objects.filter(product=product, status=Recall.Status.OPEN).order_by("pk"):
        if other.scope in (Recall.Scope.PRODUCT, Recall.Scope.UDI_DI) or (
                other.scope == recall.scope == Recall.Scope.LOT and other.lot == recall.lot) or (
                other.scope == recall.scope == Recall.Scope.SERIALS and set(recall.serials) <= set(other.serials)):
            return other
    return None


def follow_receipt(transfer: AllianceTransfer) -> list[Recall]:
    """A transfer received while an open recall of its sender covers some of its stock (it was in
    transit when the recall opened): the receiver's part is opened now, or, if the receiver already
    has a recall of it open, the received units and lots are listed on that one and its
    RECALL_FOLLOWED alert says that more arrived (raised, or the open one bumped: one per recall)."""
    followed = []
    for recall in Recall.objects.filter(hospital_id=transfer.from_hospital_id, status=Recall.Status.OPEN,
                                        product_id__in=transfer.lines.values("product_id")).order_by("pk"):
        lines = list(_received_lines(recall).filter(transfer=transfer).select_related("receiving_product"))
        if not lines:
            continue
        product = lines[0].receiving_product
        existing = _open_recall_covering(recall, product)
        if existing is None:
            followed.append(_follow(recall, product))
            continue
        _list_received(existing, transfer, lines, product)
        counts, received = _counts(existing), sum(line.received_quantity for line in lines)
        _alert_followed(
            existing, message=f"Recall {existing.label}: {received} more received by alliance transfer "
                              f"{transfer.receipt_number} from {transfer.from_hospital.name} under its recall R{recall.pk}; "
                              f"{counts['stock']} stock items, {counts['uses']} uses to follow up",
            details={"recall": existing.pk, "origin": recall.pk, "origin_hospital": transfer.from_hospital.name,
                     "transfer": transfer.receipt_number, "received": received, **counts},
        )
    return followed


def _list_received(existing: Recall, transfer: AllianceTransfer, lines: list[AllianceTransferLine],
                   product: Product) -> None:
    """List the units and lots of `lines`, received by `transfer`, on `existing` (the receiver's open
    recall of `product`): a unit once, a lot at its balance at the destination."""
    now, stock = timezone.now(), {"kind": RecallItem.Kind.STOCK, "follow_up": "", "consumption_id": None}
    units = [line.unit_id for line in lines if line.unit_id]
    listed = set(existing.items.filter(unit_id__in=units).values_list("unit_id", flat=True))
    if new_units := set(units) - listed:  # (an empty pk__in cannot be compiled into the INSERT … SELECT)
        _insert_items(existing, Unit.objects.filter(pk__in=new_units).order_by("pk"), now=now,
                      unit_id=F("pk"), quantity=1, **stock)
    for line in lines:
        if line.unit_id:
            continue
        balance = LotBalance.objects.get(product=product, lot=line.lot, location=transfer.destination)
        item = existing.items.filter(kind=RecallItem.Kind.STOCK, unit__isnull=True, lot=line.lot,
                                     location=transfer.destination).first()
        if item is None:
            _insert_items(existing, LotBalance.objects.filter(pk=balance.pk), now=now, unit_id=None,
                          quantity=F("quantity"), **stock)
        else:
            RecallItem.objects.filter(pk=item.pk).update(quantity=balance.quantity)


# The columns `_insert_items` writes, in the order its SELECT lists them.
_ITEM_COLUMNS = ("recall_id", "kind", "unit_id", "lot", "quantity", "location_id", "consumption_id", "handling",
                 "follow_up", "note", "handled_at")


def _insert_items(recall: Recall, rows: QuerySet, *, now: datetime.datetime, lock: bool = True,
                  handling: bool = True, **values) -> None:
    """INSERT INTO recall items SELECT … FROM `rows` (units, lot balances or uses): one statement, no
    model instances. Stock at a quarantine location is listed as quarantined already (handled now)."""
    if rows.query.is_empty():  # e.g. the lot balances of a recall of serials: nothing to list
        return

    def value(expression, field):
        if expression is None:
            return Value(None, output_field=field)
        return expression if hasattr(expression, "resolve_expression") else Value(expression, output_field=field)

    # A subquery, not a join: FOR UPDATE cannot apply to an outer join's nullable side.
    in_quarantine = Q(location_id__in=Location.objects.filter(kind=Location.Kind.QUARANTINE).values("pk"))
    quarantined = RecallItem.Handling.QUARANTINED
    columns = {
        "recall_id": Value(recall.pk, output_field=IntegerField()),
        "kind": value(values["kind"], CharField()),
        "unit_id": value(values["unit_id"], IntegerField()),
        "lot": F("lot"),
        "quantity": value(values["quantity"], IntegerField()),
        "location_id": F("location_id"),
        "consumption_id": value(values["consumption_id"], IntegerField()),
        "handling": (Case(When(in_quarantine, then=Value(quarantined)), default=Value(RecallItem.Handling.PENDING),
                          output_field=CharField()) if handling
                     else Value(RecallItem.Handling.PENDING, output_field=CharField())),
        "follow_up": value(values["follow_up"], CharField()),
        "note": Value("", output_field=CharField()),
        "handled_at": (Case(When(in_quarantine, then=Value(now)), default=Value(None),
                            output_field=DateTimeField()) if handling
                       else Value(None, output_field=DateTimeField())),
    }
    names = [f"item_{column}" for column in _ITEM_COLUMNS]
    select = rows.annotate(**{f"item_{column}": columns[column] for column in _ITEM_COLUMNS}).values(*names)
    if lock:
        select = select.select_for_update(of=("self",))
    sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(RecallItem._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(_ITEM_COLUMNS)}) {sql}", params)


def _refuse_if_closed(recall: Recall) -> None:
    if recall.status != Recall.Status.OPEN:
        raise Refused(Refusal.RECALL_CLOSED, recall=recall.label)


def handle_scan(
    *, recall: Recall, user: User, action: str, idempotency_key: str, code: str = "", item: RecallItem | None = None,
    to_location: Location | None = None, note: str = "",
) -> RecallItem:
    """Quarantine (`action` "quarantine", into `to_location`) or return to its supplier ("return") the
    affected stock item designated by a scanned code (a unit) or by `item` (a lot balance)."""
    from inventory.selectors.units import resolve_scan

    _refuse_if_closed(recall)
    hospital = recall.hospital
    if item is None:
        resolution = resolve_scan(hospital, code)
        unit = resolution.unit
        item = (recall.items.filter(kind=RecallItem.Kind.STOCK, unit=unit).first() if unit is not None else None)
        if item is None:
            raise Refused(Refusal.RECALL_SCAN_NOT_AFFECTED, item=code, recall=recall.label, field="code")
    if item.recall_id != recall.pk or item.kind != RecallItem.Kind.STOCK:
        raise Refused(Refusal.RECALL_SCAN_NOT_AFFECTED, item=str(item.pk), recall=recall.label, field="item")
    if item.handling == RecallItem.Handling.RETURNED or (
            item.handling != RecallItem.Handling.PENDING and action == "quarantine"):
        return item  # done already: a second scan changes nothing
    actor = Actor(user=user)
    key = f"recall:{recall.pk}:{item.pk}:{action}:{idempotency_key}"
    with transaction.atomic():
        locked = RecallItem.objects.select_for_update().get(pk=item.pk)
        lots, units = [], []
        if locked.unit_id:
            units = [Unit.objects.get(pk=locked.unit_id)]
            supplier = units[0].supplier
        else:
            balance = LotBalance.objects.filter(product_id=recall.product_id, lot=locked.lot,
                                                location_id=locked.location_id).first()
            quantity = balance.quantity if balance else 0
            if quantity == 0:
                raise Refused(Refusal.INSUFFICIENT_STOCK, lot=locked.lot, location=locked.location, available=0,
                              requested=locked.quantity)
            lots = [stock_service.LotQuantity(product=recall.product, lot=locked.lot, quantity=quantity,
                                              from_location=locked.location)]
            supplier = _lot_supplier(recall.product, locked.lot)
        if action == "quarantine":
            if to_location is None or to_location.kind != Location.Kind.QUARANTINE or to_location.hospital_id != hospital.pk:
                raise Refused(Refusal.INVALID_REQUEST, detail="to_location: a quarantine location", field="to_location")
            stock_service.transfer_stock(actor=actor, hospital=hospital, to_location=to_location, units=units,
                                         lots=lots, idempotency_key=key, note=f"recall {recall.label}")
            locked.handling = RecallItem.Handling.QUARANTINED
            locked.location = to_location
        elif action == "return":
            if supplier is None:
                raise Refused(Refusal.INVALID_REQUEST, detail="no supplier delivered this lot", field="item")
            stock_service.return_to_supplier(actor=actor, hospital=hospital, supplier=supplier, units=units, lots=lots,
                                             reason_code=RETURN_REASON, idempotency_key=key,
                                             note=f"recall {recall.label}")
            locked.handling = RecallItem.Handling.RETURNED
            locked.location = None
        else:
            raise Refused(Refusal.INVALID_REQUEST, detail="action: quarantine or return", field="action")
        locked.handled_at, locked.handled_by = timezone.now(), user
        if note:
            locked.note = note
        locked.save()
    return locked


def _lot_supplier(product: Product, lot: str):
    """The supplier that delivered this lot (its first receipt), else the product's agreement's."""
    from inventory.models import DeliveryNote, Movement, SupplyAgreement
    receipt = (Movement.objects.filter(product=product, lot=lot, kind=Movement.Kind.RECEIPT,
                                       document_type=Movement.DocumentType.DELIVERY_NOTE).order_by("pk").first())
    if receipt is not None:
        note = DeliveryNote.objects.select_related("supplier").filter(pk=receipt.document_id).first()
        if note is not None:
            return note.supplier
    agreement = SupplyAgreement.objects.filter(product=product).select_related("supplier").order_by("pk").first()
    return agreement.supplier if agreement else None


def record_follow_up(*, recall: Recall, item: RecallItem, user: User, follow_up: str, note: str) -> RecallItem:
    """Mark a used item's patient follow-up as notified or not needed, with a note."""
    _refuse_if_closed(recall)
    if item.recall_id != recall.pk or item.kind != RecallItem.Kind.USED:
        raise Refused(Refusal.INVALID_REQUEST, detail="item: a used item of this recall", field="item")
    if follow_up not in (RecallItem.FollowUp.NOTIFIED, RecallItem.FollowUp.NOT_NEEDED):
        raise Refused(Refusal.INVALID_REQUEST, detail="follow_up: NOTIFIED or NOT_NEEDED", field="follow_up")
    with transaction.atomic():
        locked = RecallItem.objects.select_for_update().get(pk=item.pk)
        locked.follow_up, locked.note, locked.handled_at, locked.handled_by = follow_up, note, timezone.now(), user
        locked.save()
    return locked


def refresh(recall: Recall) -> None:
    """Note what left the hospital by other ways since the recall opened (scrapped, returned, quarantined)."""
    if recall.status != Recall.Status.OPEN:
        return
    pending = recall.items.filter(kind=RecallItem.Kind.STOCK, handling=RecallItem.Handling.PENDING)
    now = timezone.now()
    pending.filter(unit__status=UnitStatus.RETURNED_TO_SUPPLIER).update(
        handling=RecallItem.Handling.RETURNED, handled_at=now)
    pending.filter(unit__isnull=False).exclude(unit__status__in=IN_HOSPITAL).update(
        handling=RecallItem.Handling.GONE, handled_at=now)
    pending.filter(unit__isnull=False).exclude(unit__hospital_id=recall.hospital_id).update(
        handling=RecallItem.Handling.GONE, handled_at=now)  # received by another member (its part follows it)
    pending.filter(unit__location__kind=Location.Kind.QUARANTINE).update(
        handling=RecallItem.Handling.QUARANTINED, handled_at=now)
    still_there = LotBalance.objects.filter(product_id=recall.product_id, lot=OuterRef("lot"),
                                            location_id=OuterRef("location_id"), quantity__gt=0)
    pending.filter(unit__isnull=True).exclude(Exists(still_there)).update(
        handling=RecallItem.Handling.GONE, handled_at=now)


@dataclass(frozen=True)
class Progress:
    in_stock: int
    located: int
    returned: int
    used: int
    notified: int

    @property
    def handled(self) -> int:
        return self.located

    @property
    def closable(self) -> bool:
        return self.located == self.in_stock


def progress(recall: Recall) -> Progress:
    counts = recall.items.aggregate(
        in_stock=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK)),
        located=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK) & ~Q(handling=RecallItem.Handling.PENDING)),
        returned=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK, handling=RecallItem.Handling.RETURNED)),
        used=Count("pk", filter=Q(kind=RecallItem.Kind.USED)),
        notified=Count("pk", filter=Q(kind=RecallItem.Kind.USED) & ~Q(follow_up=RecallItem.FollowUp.PENDING)),
    )
    return Progress(**counts)


def close_recall(*, recall: Recall, user: User, note: str = "") -> Recall:
    """Close a recall once every in-stock item is quarantined, returned or gone (409 otherwise)."""
    _refuse_if_closed(recall)
    refresh(recall)
    with transaction.atomic():
        locked = Recall.objects.select_for_update().get(pk=recall.pk)
        _refuse_if_closed(locked)
        pending = locked.items.filter(kind=RecallItem.Kind.STOCK, handling=RecallItem.Handling.PENDING).count()
        if pending:
            raise Refused(Refusal.RECALL_NOT_CLOSABLE, recall=locked.label, count=pending)
        locked.status, locked.closed_at, locked.closed_by, locked.closing_note = (
            Recall.Status.CLOSED, timezone.now(), user, note)
        locked.save()
        # A followed recall's alert, or one raised when stock arrived under a recall of the hospital's own.
        alerts.auto_resolve(hospital=locked.hospital, kind=Alert.Kind.RECALL_FOLLOWED,
                            subject_keys=[followed_subject(locked)], now=locked.closed_at)
    return locked


def used_summary(recall: Recall) -> dict:
    return recall.items.filter(kind=RecallItem.Kind.USED).aggregate(
        patients=Count("consumption__encounter", distinct=True), quantity=Sum("quantity"))


# --- the regulator's export ------------------------------------------------------------------------

EXPORT_HEADER = ["item", "kind", "product", "UDI-DI", "lot", "serial", "quantity", "location now", "handling",
                 "encounter", "surgery", "doctor", "department", "used at", "follow-up", "note", "handled at"]


def export_rows(recall: Recall) -> list[list]:
    """Every item of the recall as the regulator's export lists it: one query (`values()`, no model
    instances), the item with where it is now and, for a use, its encounter, surgery, doctor, department."""
    product = recall.product
    items = recall.items.order_by("kind", "pk").values_list(
        "pk", "kind", "lot", "unit__serial", "quantity", "location__name", "handling", "consumption_id",
        "consumption__encounter", "consumption__surgery_id", "consumption__surgery_name", "consumption__doctor",
        "consumption__department__name", "consumption__occurred_at", "follow_up", "note", "handled_at",
    )
    rows = []
    for (pk, kind, lot, serial, quantity, location, handling, use, encounter, surgery_id, surgery_name, doctor,
         department, occurred_at, follow_up, note, handled_at) in items:
        rows.append([
            pk, kind, product.name, product.udi_di, lot, serial or "", quantity, location or "",
            handling if kind == RecallItem.Kind.STOCK else "", encounter if use else "",
            (f"{surgery_id} {surgery_name}".strip() if use else ""), doctor if use else "",
            department if use else "", occurred_at.isoformat() if use else "", follow_up,
            note, handled_at.isoformat() if handled_at else "",
        ])
    return rows


def export_facts(recall: Recall) -> list[tuple[str, str]]:
    p = progress(recall)
    return [
        ("recall", recall.label), ("hospital", recall.hospital.name), ("scope", recall.scope),
        ("product", f"{recall.product.internal_code} {recall.product.name}"), ("UDI-DI", recall.product.udi_di),
        ("lot", recall.lot), ("serials", " ".join(recall.serials)), ("reason", recall.reason),
        ("source", f"{recall.source} {recall.notice_reference}".strip()), ("notice date", str(recall.notice_date)),
        ("status", recall.status), ("opened at", recall.opened_at.isoformat()),
        ("closed at", recall.closed_at.isoformat() if recall.closed_at else ""),
        ("located", f"{p.located} of {p.in_stock}"), ("returned", f"{p.returned} of {p.in_stock}"),
        ("notified", f"{p.notified} of {p.used}"),
    ]


def export_csv(recall: Recall) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for label, value in export_facts(recall):
        writer.writerow(["#", label, value])
    writer.writerow(EXPORT_HEADER)
    writer.writerows(export_rows(recall))
    return buffer.getvalue().encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_xlsx(recall: Recall) -> bytes:
    from inventory.spreadsheets import reproducible_xlsx, workbook
    digest = sha256(export_csv(recall))
    rows = [["#", label, value] for label, value in export_facts(recall)] + [["#", "CSV SHA-256", digest]]
    return reproducible_xlsx(workbook(EXPORT_HEADER, [*rows, *export_rows(recall)], "recall"), recall.opened_at)


def export_pdf(recall: Recall) -> bytes:
    digest = sha256(export_csv(recall))
    columns = [1, 5, 6, 7, 9, 10, 11, 12, 13, 14]
    rows = [[str(row[i])[:40] for i in columns] for row in export_rows(recall)]
    return table_pdf(title=f"召回报告 Recall {recall.label}", facts=export_facts(recall),
                     header=[EXPORT_HEADER[i] for i in columns], rows=rows, footer=f"CSV SHA-256 {digest}")


def table_pdf(*, title: str, facts: list[tuple[str, str]], header: list[str], rows: list[list[str]],
              footer: str = "") -> bytes:
    """A landscape A4 document: title, facts, a table (CJK font as the other documents)."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from inventory.services.documents_pdf import _font

    font = _font()
    style = ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK")

    def cell(value: object) -> Paragraph:
        return Paragraph(str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), style)

    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1, leftMargin=10 * mm, rightMargin=10 * mm,
                            topMargin=10 * mm, bottomMargin=12 * mm, title=title, author="SPD", creator="SPD")
    facts_table = Table([[cell(label), cell(value)] for label, value in facts], colWidths=[40 * mm, 230 * mm])
    facts_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    width = 277 / max(len(header), 1)
    table = Table([[cell(h) for h in header]] + [[cell(v) for v in row] for row in rows],
                  colWidths=[width * mm] * len(header), repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, "#888888"), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story = [Paragraph(title, ParagraphStyle("t", fontName=font, fontSize=14, leading=18)), Spacer(1, 4 * mm),
             facts_table, Spacer(1, 4 * mm), table]
    if footer:
        story += [Spacer(1, 4 * mm), cell(footer)]
    pdf.build(story)
    return buffer.getvalue()


# --- implant records (植入物登记) ---------------------------------------------------------------------

IMPLANT_HEADER = ["encounter", "used at", "product", "specification", "UDI", "UDI-DI", "lot", "serial",
                  "manufacturer", "registration certificate", "surgeon", "surgery", "department"]


def implant_uses(hospital: Hospital) -> QuerySet:
    """Uses of unit-tracked high-value products (implants and other 高值 devices), never purged."""
    return (Consumption.objects.filter(hospital=hospital, unit__isnull=False, refunded_at__isnull=True,
                                       product__is_high_value=True)
            .select_related("unit", "product__manufacturer", "product__registration_certificate", "department")
            .order_by("encounter", "occurred_at", "pk"))


def implant_rows(uses: QuerySet) -> list[list]:
    rows = []
    for use in uses:
        product, certificate = use.product, use.product.registration_certificate
        rows.append([
            use.encounter, timezone.localtime(use.occurred_at).strftime("%Y-%m-%d %H:%M"), product.name,
            product.specification, use.unit.udi, product.udi_di, use.unit.lot, use.unit.serial,
            product.manufacturer.name, certificate.number if certificate else "", use.doctor,
            f"{use.surgery_id} {use.surgery_name}".strip(), use.department.name,
        ])
    return rows


def implant_pdf(hospital: Hospital, encounter: str, uses: QuerySet) -> bytes:
    rows = implant_rows(uses)
    return table_pdf(title=f"植入物登记 Implant record · {encounter}",
                     facts=[("hospital 医院", hospital.name), ("encounter 就诊号", encounter),
                            ("items 件数", str(len(rows)))],
                     header=IMPLANT_HEADER[1:], rows=[[str(v) for v in row[1:]] for row in rows],
                     footer="医生签名 Surgeon: ____________    护士签名 Nurse: ____________")
