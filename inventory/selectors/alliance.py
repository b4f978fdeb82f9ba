"""Reads of the county alliance (医共体): its catalog as a member or the alliance sees it, and the
alliance dashboard — stock and near-expiry across members, the transfer suggestions, use per member
and VBP progress.

Who sees what: the alliance catalog (entries and the alliance's agreements) is shared by every
member; which members adopted an entry, under which codes and at which member price, only the
alliance's staff see (a member sees its own link). The dashboard is the alliance staff's: it
covers `alliance.alliance_hospitals_for(user)`. Every figure is a few grouped queries over all the
members at once, never a query per member.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from inventory.alliance import alliance_hospitals_for, alliance_of, is_alliance_user, keeps_alliance_catalog
from inventory.models import (
    AllianceEntry,
    Consumption,
    Hospital,
    Location,
    LotCostLayer,
    Movement,
    Owner,
    Product,
    SupplyAgreement,
    Unit,
    User,
    VbpContract,
)
from inventory.selectors.stock import HELD
from inventory.services.vbp import VbpProgress, contract_progress

MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")
# Stock that can be sent to another member: not in quarantine, not on its way somewhere.
NOT_TRANSFERABLE = (Location.Kind.QUARANTINE, Location.Kind.IN_TRANSIT)


def _cents(value: Decimal | None) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


# --- catalog -------------------------------------------------------------------------------------

def sees_alliance_members(user: User) -> bool:
    """Whether the user sees which members adopted an entry and at what price: alliance staff and the
    catalog's keepers."""
    return is_alliance_user(user) or keeps_alliance_catalog(user)


def catalog_entries(user: User, *, text: str = "", category: str = "", adopted: bool | None = None) -> QuerySet:
    """The entries of the user's alliance (none when their hospital is in none), matching `text` (code
    or UDI-DI prefix, or part of the name) and `category`, with `adopted_here` (by the user's
    hospital) and, for those who see members, `member_count`."""
    alliance = alliance_of(user)
    if not alliance:
        return AllianceEntry.objects.none()
    entries = AllianceEntry.objects.filter(alliance=alliance).select_related("manufacturer").annotate(
        adopted_here=Exists(Product.objects.filter(alliance_entry=OuterRef("pk"), hospital_id=user.hospital_id)),
    )
    if sees_alliance_members(user):
        entries = entries.annotate(member_count=Count("member_products", distinct=True))
    if text := text.strip():
        entries = entries.filter(
            Q(code__istartswith=text) | Q(udi_di__startswith=text) | Q(name__icontains=text)
        )
    if category := category.strip():
        entries = entries.filter(category=category)
    if adopted is not None:
        entries = entries.filter(adopted_here=adopted)
    return entries.order_by("code")


def catalog_categories(user: User) -> list[str]:
    alliance = alliance_of(user)
    return list(
        AllianceEntry.objects.filter(alliance=alliance).exclude(category="").order_by("category")
        .values_list("category", flat=True).distinct()
    ) if alliance else []


@dataclass(frozen=True)
class MemberLink:
    hospital: Hospital
    product: Product
    prices: list[SupplyAgreement]  # the member's agreements in force today for this product


def entry_members(user: User, entry: AllianceEntry, today: datetime.date | None = None) -> list[MemberLink]:
    """The members' products linked to the entry, with their agreements in force today: all members
    for alliance staff and keepers, the user's own hospital otherwise."""
    today = today or timezone.localdate()
    products = entry.member_products.select_related("hospital").order_by("hospital__code")
    if not sees_alliance_members(user):
        products = products.filter(hospital_id=user.hospital_id)
    products = list(products)
    prices: dict[int, list[SupplyAgreement]] = defaultdict(list)
    for agreement in SupplyAgreement.objects.filter(
        product__in=products, is_active=True, valid_from__lte=today, valid_to__gte=today
    ).select_related("supplier").order_by("supplier__name", "pk"):
        prices[agreement.product_id].append(agreement)
    return [MemberLink(product.hospital, product, prices[product.pk]) for product in products]


# --- dashboard -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberStock:
    hospital: Hospital
    units: int
    lot_quantity: int
    value: Decimal  # at cost, the hospital's own and consignment
    near_expiry_quantity: int  # units + lot quantity expiring from today within the window
    near_expiry_value: Decimal
    expired_quantity: int
    used_quantity: int  # net of refunds, in the use window
    used_amount: Decimal  # billed at purchase price (零差率), not refunded


@dataclass(frozen=True)
class TransferSuggestion:
    entry_id: int
    entry_code: str
    entry_name: str
    from_hospital: Hospital
    lot: str
    expiry: datetime.date
    available: int  # near-expiry quantity in the sending member
    to_hospital: Hospital
    receiver_use: int  # what the receiving member used in the use window
    receiver_stock: int  # what the receiving member holds of the entry
    quantity: int  # suggested


@dataclass(frozen=True)
class AllianceDashboard:
    today: datetime.date
    expiry_days: int
    use_days: int
    members: list[MemberStock]
    suggestions: list[TransferSuggestion]
    vbp: list[list[VbpProgress]] = field(default_factory=list)  # per contract: members, then the alliance

    @property
    def totals(self) -> dict[str, Decimal | int]:
        names = ("units", "lot_quantity", "value", "near_expiry_quantity", "near_expiry_value", "expired_quantity",
                 "used_quantity", "used_amount")
        return {name: sum((getattr(member, name) for member in self.members), 0) for name in names}


def alliance_dashboard(
    user: User, *, expiry_days: int = 90, use_days: int = 90, today: datetime.date | None = None
) -> AllianceDashboard:
    today = today or timezone.localdate()
    hospital_ids = alliance_hospitals_for(user)
    hospitals = {hospital.pk: hospital for hospital in Hospital.objects.filter(pk__in=hospital_ids)}
    horizon = today + datetime.timedelta(days=expiry_days)
    since = today - datetime.timedelta(days=use_days - 1)
    stock = _stock_by_member(hospital_ids, today, horizon)
    used = _use_by_member(hospital_ids, since, today)
    members = [
        MemberStock(
            hospitals[pk], stock[pk]["units"], stock[pk]["lot_quantity"], _cents(stock[pk]["value"]),
            stock[pk]["near_quantity"], _cents(stock[pk]["near_value"]), stock[pk]["expired"],
            used[pk]["quantity"], _cents(used[pk]["amount"]),
        )
        for pk in sorted(hospitals, key=lambda pk: hospitals[pk].code)
    ]
    suggestions = transfer_suggestions(hospitals, today=today, horizon=horizon, since=since, use_days=use_days)
    return AllianceDashboard(today, expiry_days, use_days, members, suggestions, vbp_progress(user, today=today))


def _stock_by_member(hospital_ids: list[int], today: datetime.date, horizon: datetime.date) -> dict[int, dict]:
    near = Q(expiry__gte=today, expiry__lte=horizon)
    figures: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for row in Unit.objects.filter(hospital_id__in=hospital_ids, status__in=HELD).order_by().values("hospital_id").annotate(
        n=Count("pk"), value=Sum("unit_cost", output_field=MONEY),
        near_n=Count("pk", filter=near), near_value=Sum("unit_cost", filter=near, output_field=MONEY),
        expired=Count("pk", filter=Q(expiry__lt=today)),
    ):
        target = figures[row["hospital_id"]]
        target["units"] += row["n"]
        target["value"] += _cents(row["value"])
        target["near_quantity"] += row["near_n"]
        target["near_value"] += _cents(row["near_value"])
        target["expired"] += row["expired"]
    layer_value = ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)
    near_layer = Q(balance__expiry__gte=today, balance__expiry__lte=horizon)
    for row in LotCostLayer.objects.filter(
        balance__hospital_id__in=hospital_ids, quantity__gt=0
    ).order_by().values(hospital_id=F("balance__hospital_id")).annotate(
        n=Sum("quantity"), value=Sum(layer_value, output_field=MONEY),
        near_n=Sum("quantity", filter=near_layer), near_value=Sum(layer_value, filter=near_layer, output_field=MONEY),
        expired=Sum("quantity", filter=Q(balance__expiry__lt=today)),
    ):
        target = figures[row["hospital_id"]]
        target["lot_quantity"] += row["n"] or 0
        target["value"] += _cents(row["value"])
        target["near_quantity"] += row["near_n"] or 0
        target["near_value"] += _cents(row["near_value"])
        target["expired"] += row["expired"] or 0
    return figures


def _use_by_member(hospital_ids: list[int], since: datetime.date, until: datetime.date) -> dict[int, dict]:
    figures: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for row in _net_use(Movement.objects.filter(hospital_id__in=hospital_ids), since, until, "hospital_id"):
        figures[row["hospital_id"]]["quantity"] = (row["consumed"] or 0) - (row["refunded"] or 0)
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    for row in Consumption.objects.filter(
        hospital_id__in=hospital_ids, refunded_at__isnull=True,
        occurred_at__date__gte=since, occurred_at__date__lte=until,
    ).order_by().values("hospital_id").annotate(amount=Sum(amount, output_field=MONEY)):
        figures[row["hospital_id"]]["amount"] = _cents(row["amount"])
    return figures


def _net_use(
    movements: QuerySet, since: datetime.date, until: datetime.date, *group: str, **named: F
) -> QuerySet:
    """Uses on patients minus refunds of them, per `group` (and `named` expressions), on the local days
    since…until."""
    return movements.filter(
        kind__in=(Movement.Kind.CONSUME, Movement.Kind.UNCONSUME),
        occurred_at__date__gte=since, occurred_at__date__lte=until,
    ).order_by().values(*group, **named).annotate(
        consumed=Sum("quantity", filter=Q(kind=Movement.Kind.CONSUME)),
        refunded=Sum("quantity", filter=Q(kind=Movement.Kind.UNCONSUME)),
    )


def transfer_suggestions(
    hospitals: dict[int, Hospital], *, today: datetime.date, horizon: datetime.date, since: datetime.date,
    use_days: int,
) -> list[TransferSuggestion]:
    """Near-expiry stock of one member that another member is likely to use before it expires.

    For each lot of an adopted product (the hospital's own stock, not quarantined or in transit)
    expiring from today to `horizon`, soonest first: the other members that used the same alliance
    entry in the use window, ordered by their remaining need. A member's need is what it would use
    before the lot expires at its recent pace (use × days left ÷ use window, rounded down) less
    what it holds of the entry; each suggestion takes as much as the lot has and the member needs,
    and what it takes is no longer needed by the next lot.
    """
    ids = list(hospitals)
    held = Q(hospital_id__in=ids, owner=Owner.HOSPITAL, product__alliance_entry__isnull=False) & ~Q(
        location__kind__in=NOT_TRANSFERABLE
    )
    near: dict[tuple[int, int, str, datetime.date], int] = defaultdict(int)
    holdings: dict[tuple[int, int], int] = defaultdict(int)
    key_fields = ("hospital_id", "entry_id", "lot", "expiry")
    units = Unit.objects.filter(held, status__in=HELD).order_by().values(
        "hospital_id", "lot", "expiry", entry_id=F("product__alliance_entry_id")
    ).annotate(n=Count("pk"))
    lots = LotCostLayer.objects.filter(
        balance__hospital_id__in=ids, balance__owner=Owner.HOSPITAL, balance__product__alliance_entry__isnull=False,
        quantity__gt=0,
    ).exclude(balance__location__kind__in=NOT_TRANSFERABLE).order_by().values(
        hospital_id=F("balance__hospital_id"), entry_id=F("balance__product__alliance_entry_id"),
        lot=F("balance__lot"), expiry=F("balance__expiry"),
    ).annotate(n=Sum("quantity"))
    for row in [*units, *lots]:
        holdings[(row["hospital_id"], row["entry_id"])] += row["n"]
        if row["expiry"] is not None and today <= row["expiry"] <= horizon:
            near[tuple(row[name] for name in key_fields)] += row["n"]
    if not near:
        return []
    entry_ids = {key[1] for key in near}
    use: dict[int, dict[int, int]] = defaultdict(dict)  # entry → member → net use
    for row in _net_use(
        Movement.objects.filter(hospital_id__in=ids, product__alliance_entry_id__in=entry_ids),
        since, today, "hospital_id", entry_id=F("product__alliance_entry_id"),
    ):
        net = (row["consumed"] or 0) - (row["refunded"] or 0)
        if net > 0:
            use[row["entry_id"]][row["hospital_id"]] = net
    entries = {entry.pk: entry for entry in AllianceEntry.objects.filter(pk__in=entry_ids)}
    taken: dict[tuple[int, int], int] = defaultdict(int)  # (member, entry) → suggested to it so far
    suggestions = []
    for (sender, entry_id, lot, expiry), available in sorted(
        near.items(), key=lambda item: (item[0][3], hospitals[item[0][0]].code, entries[item[0][1]].code, item[0][2])
    ):
        days_left = (expiry - today).days
        needs = []
        for receiver, used in use[entry_id].items():
            if receiver == sender:
                continue
            need = used * days_left // use_days - holdings[(receiver, entry_id)] - taken[(receiver, entry_id)]
            if need > 0:
                needs.append((need, receiver, used))
        needs.sort(key=lambda item: (-item[0], hospitals[item[1]].code))
        for need, receiver, used in needs:
            if available <= 0:
                break
            quantity = min(available, need)
            available -= quantity
            taken[(receiver, entry_id)] += quantity
            entry = entries[entry_id]
            suggestions.append(TransferSuggestion(
                entry_id, entry.code, entry.name, hospitals[sender], lot, expiry, near[(sender, entry_id, lot, expiry)],
                hospitals[receiver], used, holdings[(receiver, entry_id)], quantity,
            ))
    return suggestions


def vbp_progress(user: User, *, today: datetime.date | None = None) -> list[list[VbpProgress]]:
    """Progress of every VBP contract with an allocation in the user's alliance hospitals: the rows of
    those members, then the alliance's own (all the contract's hospitals together)."""
    hospital_ids = set(alliance_hospitals_for(user))
    contracts = VbpContract.objects.filter(allocations__hospital_id__in=hospital_ids).distinct().order_by(
        "-start_date", "number"
    )
    progress = []
    for contract in contracts:
        rows = contract_progress(contract, today=today)
        progress.append([row for row in rows if row.hospital is None or row.hospital.pk in hospital_ids])
    return progress
