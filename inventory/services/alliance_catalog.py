"""The county alliance catalog (医共体统一目录): keeping entries, adopting them, and letting changes flow.

- The alliance's stewards (`alliance.keeps_alliance_catalog`) keep entries and the alliance's supply
  agreements. A member adopts entries (`adopt_entries`): each becomes one of its products linked to
  the entry — a new product under the member's own internal code and HIS charge code, or the
  member's existing product of the same UDI-DI — with a member agreement per current alliance
  agreement.
- A change of an entry's name, specification, classes, 医保 code, manufacturer or registration
  certificate (`update_entry`) is written to every linked product in the same transaction; the
  history triggers record one change row per product (models.history), stamped with who did it.
- An alliance price change (`change_alliance_price`) follows the price-change rules of
  services.prices (dated, after today, with a reason and an approver) and makes the same dated
  change, with the same reason, to every member agreement made from the alliance agreement.

Lock order: the alliance agreement, then member agreements by primary key.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.actors import Actor
from inventory.alliance import keeps_alliance_catalog
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    AllianceAgreement,
    AllianceEntry,
    AlliancePriceChange,
    Certificate,
    Hospital,
    Manufacturer,
    Product,
    Role,
    Supplier,
    SupplyAgreement,
    User,
)
from inventory.services.prices import replace_agreement

# What an entry decides for every member product linked to it; the rest (codes, storage, consignment,
# shelf-life and return rules) stays the member's.
FLOWING_FIELDS = ("name", "specification", "category", "nhsa_code", "manufacturer", "registration_certificate")
ENTRY_FIELDS = (*FLOWING_FIELDS, "udi_di", "unit_of_measure", "is_high_value", "tracking", "is_active")
# Who adopts entries for a member hospital: the people who edit its catalog (api.permissions).
ADOPTERS = (Role.ADMIN, Role.SPD_OPERATOR)


def _require_keeper(user: User) -> None:
    if not keeps_alliance_catalog(user):
        raise Refused(Refusal.ALLIANCE_CATALOG_KEEPERS_ONLY)


def create_entry(
    *, actor: Actor, code: str, name: str, udi_di: str, manufacturer: Manufacturer, tracking: str,
    specification: str = "", category: str = "", nhsa_code: str = "", unit_of_measure: str = "个",
    is_high_value: bool = False, registration_certificate: Certificate | None = None,
) -> AllianceEntry:
    """A new entry of the actor's alliance, kept by the actor's hospital. Refused for anyone but the
    alliance's stewards, and when the alliance has the code or the UDI-DI already."""
    user = actor.user
    _require_keeper(user)
    alliance = user.hospital.alliance
    if AllianceEntry.objects.filter(Q(code=code) | Q(udi_di=udi_di), alliance=alliance).exists():
        raise Refused(Refusal.ALLIANCE_ENTRY_EXISTS, code=code, di=udi_di)
    try:
        with transaction.atomic():
            return AllianceEntry.objects.create(
                alliance=alliance, keeper=user.hospital, code=code, name=name, udi_di=udi_di,
                manufacturer=manufacturer, tracking=tracking, specification=specification, category=category,
                nhsa_code=nhsa_code, unit_of_measure=unit_of_measure, is_high_value=is_high_value,
                registration_certificate=registration_certificate,
            )
    except IntegrityError as error:  # the same entry created at the same moment
        raise Refused(Refusal.ALLIANCE_ENTRY_EXISTS, code=code, di=udi_di) from error


def update_entry(*, actor: Actor, entry: AllianceEntry, changes: dict[str, Any]) -> int:
    """Change the entry and, in the same transaction, every member product linked to it; returns how
    many member products changed. Only `ENTRY_FIELDS` change; the UDI-DI only while no member has
    adopted the entry (members received and scanned under it)."""
    _require_keeper(actor.user)
    changes = {name: value for name, value in changes.items() if name in ENTRY_FIELDS}
    with transaction.atomic():
        locked = AllianceEntry.objects.select_for_update().get(pk=entry.pk)
        if "udi_di" in changes and changes["udi_di"] != locked.udi_di:
            if locked.member_products.exists():
                raise Refused(Refusal.ALLIANCE_DI_FIXED)
            if AllianceEntry.objects.filter(alliance=locked.alliance, udi_di=changes["udi_di"]).exclude(
                pk=locked.pk
            ).exists():
                raise Refused(Refusal.ALLIANCE_ENTRY_EXISTS, code=locked.code, di=changes["udi_di"])
        changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
        if not changed:
            return 0
        for name, value in changed.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(changed))
        flowing = {name: value for name, value in changed.items() if name in FLOWING_FIELDS}
        if not flowing:
            return 0
        # One UPDATE; the row triggers keep one history row per member product.
        return Product.objects.filter(alliance_entry=locked).update(**flowing)


def add_agreement(
    *, actor: Actor, entry: AllianceEntry, supplier: Supplier, unit_price: Decimal, valid_from: datetime.date,
    valid_to: datetime.date, platform_reference: str = "", vbp_contract: str = "",
) -> AllianceAgreement:
    """A supply agreement of the alliance for the entry, and the same agreement for every member that
    adopted the entry (members adopting later get it when they adopt)."""
    _require_keeper(actor.user)
    if valid_to < valid_from:
        raise Refused(Refusal.INVALID_REQUEST, detail="valid_to is before valid_from")
    with transaction.atomic():
        agreement = AllianceAgreement.objects.create(
            entry=entry, supplier=supplier, unit_price=unit_price, valid_from=valid_from, valid_to=valid_to,
            platform_reference=platform_reference, vbp_contract=vbp_contract,
        )
        SupplyAgreement.objects.bulk_create(
            _member_agreement(agreement, product) for product in entry.member_products.order_by("pk")
        )
    return agreement


def _member_agreement(agreement: AllianceAgreement, product: Product) -> SupplyAgreement:
    return SupplyAgreement(
        hospital_id=product.hospital_id, supplier_id=agreement.supplier_id, product=product,
        unit_price=agreement.unit_price, valid_from=agreement.valid_from, valid_to=agreement.valid_to,
        platform_reference=agreement.platform_reference, vbp_contract=agreement.vbp_contract,
        is_active=agreement.is_active, alliance_agreement=agreement,
    )


def change_alliance_price(
    *, actor: Actor, agreement: AllianceAgreement, new_price: Decimal, effective_from: datetime.date, reason: str,
    approved_by: User,
) -> AlliancePriceChange:
    """Replace the alliance agreement from `effective_from` at `new_price`, and every member agreement
    made from it that is in force on that day, each as a price change of its own (dated, with this
    reason and approver, a PRICE_CHANGED alert in the member). Refused, with every problem, as a
    hospital's price change is (services.prices); the approver must be one of the alliance's stewards."""
    _require_keeper(actor.user)
    reason = reason.strip()
    problems = _change_problems(agreement, new_price, effective_from, reason, approved_by)
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        old = AllianceAgreement.objects.select_for_update().get(pk=agreement.pk)
        if not old.is_active or old.valid_to < effective_from or old.valid_from >= effective_from:
            raise Refused(Refusal.AGREEMENT_NOT_CURRENT)
        new = AllianceAgreement.objects.create(
            entry_id=old.entry_id, supplier_id=old.supplier_id, unit_price=new_price, valid_from=effective_from,
            valid_to=old.valid_to, platform_reference=old.platform_reference, vbp_contract=old.vbp_contract,
        )
        old.valid_to = effective_from - datetime.timedelta(days=1)
        old.save(update_fields=["valid_to"])
        members = list(
            SupplyAgreement.objects.select_for_update().filter(
                alliance_agreement=old, is_active=True, valid_from__lt=effective_from, valid_to__gte=effective_from,
            ).order_by("pk")
        )
        for member in members:
            replace_agreement(
                member, new_price=new_price, effective_from=effective_from, reason=reason, approved_by=approved_by,
                recorded_by=actor.user, alliance_agreement_id=new.pk,
            )
        return AlliancePriceChange.objects.create(
            entry_id=old.entry_id, previous=old, agreement=new, old_price=old.unit_price, new_price=new_price,
            effective_from=effective_from, reason=reason, approved_by=approved_by, recorded_by=actor.user,
            members_changed=len(members),
        )


def _change_problems(
    agreement: AllianceAgreement, new_price: Decimal, effective_from: datetime.date, reason: str, approver: User
) -> list[Problem]:
    problems = []
    today = timezone.localdate()
    if effective_from <= agreement.valid_from or effective_from > agreement.valid_to or effective_from < today:
        problems.append(Problem(
            Refusal.PRICE_CHANGE_DATE_INVALID, {"start": agreement.valid_from, "end": agreement.valid_to}
        ))
    if (not approver.is_active or not keeps_alliance_catalog(approver)
            or approver.hospital is None or approver.hospital.alliance != agreement.entry.alliance):
        problems.append(Problem(Refusal.ALLIANCE_APPROVER_INVALID))
    if not reason:
        problems.append(Problem(Refusal.PRICE_CHANGE_REASON_MISSING))
    if new_price == agreement.unit_price:
        problems.append(Problem(Refusal.PRICE_UNCHANGED, {"price": new_price}))
    return problems


# --- adoption by a member --------------------------------------------------------------------------

@dataclass(frozen=True)
class Adoption:
    adopted: int  # new member products
    linked: int  # the member's existing products of the same UDI-DI, now linked
    already: int  # adopted before: nothing to do
    agreements: int  # member agreements made from the alliance's


def adopt_entries(
    *, actor: Actor, hospital: Hospital, entries: list[AllianceEntry], codes: dict[int, dict[str, str]] | None = None,
) -> Adoption:
    """Adopt `entries` into `hospital`'s catalog, all or nothing.

    Each entry becomes a product of the hospital linked to it: the hospital's existing product of the
    same UDI-DI if it has one (its codes kept, its names and classes now the entry's), else a new
    product under `codes[entry.pk]["internal_code"]` (default: the alliance code) and
    `codes[entry.pk]["his_charge_code"]`. Every current alliance agreement of the entry becomes a
    member agreement, unless the member already has an agreement in force with that supplier.
    Refused, with every problem, for an actor who does not edit this hospital's catalog, an entry of
    another alliance, an internal code taken, or a product already linked to another entry."""
    user = actor.user
    if user is None or user.hospital_id != hospital.pk or not user.has_role(*ADOPTERS):
        raise Refused(Refusal.NOT_ALLOWED, action="adopt alliance catalog entries for this hospital")
    if not entries:
        raise Refused(Refusal.ALLIANCE_NOTHING_CHOSEN)
    codes = codes or {}
    today = timezone.localdate()
    with transaction.atomic():
        existing = {
            product.udi_di: product for product in Product.objects.select_for_update().filter(
                hospital=hospital, udi_di__in=[entry.udi_di for entry in entries]
            ).order_by("pk")
        }
        taken = set(Product.objects.filter(hospital=hospital).values_list("internal_code", flat=True))
        problems: list[Problem] = []
        new_products: list[Product] = []
        to_link: list[tuple[AllianceEntry, Product]] = []
        already = 0
        for entry in entries:
            if not hospital.alliance or entry.alliance != hospital.alliance:
                problems.append(Problem(Refusal.ALLIANCE_ADOPTER_NOT_MEMBER, {"hospital": hospital, "alliance": entry.alliance}))
                continue
            product = existing.get(entry.udi_di)
            if product is not None:
                if product.alliance_entry_id == entry.pk:
                    already += 1
                elif product.alliance_entry_id is not None:
                    problems.append(Problem(
                        Refusal.ALLIANCE_PRODUCT_LINKED_ELSEWHERE, {"product": product, "entry": product.alliance_entry}
                    ))
                else:
                    to_link.append((entry, product))
                continue
            own = codes.get(entry.pk, {})
            internal_code = (own.get("internal_code") or entry.code).strip()
            if internal_code in taken:
                problems.append(Problem(Refusal.ALLIANCE_CODE_TAKEN, {"code": internal_code}))
                continue
            taken.add(internal_code)
            new_products.append(Product(
                hospital=hospital, internal_code=internal_code, his_charge_code=(own.get("his_charge_code") or "").strip(),
                alliance_entry=entry, udi_di=entry.udi_di, unit_of_measure=entry.unit_of_measure,
                is_high_value=entry.is_high_value, tracking=entry.tracking, **_flowing_values(entry),
            ))
        if problems:
            raise Refused(problems)
        Product.objects.bulk_create(new_products, batch_size=1000)
        for entry, product in to_link:
            for name, value in _flowing_values(entry).items():
                setattr(product, name, value)
            product.alliance_entry = entry
            product.save(update_fields=["alliance_entry", *FLOWING_FIELDS])
        adopted_products = new_products + [product for _, product in to_link]
        agreements = _member_agreements_for(adopted_products, hospital, today)
        SupplyAgreement.objects.bulk_create(agreements, batch_size=1000)
    return Adoption(len(new_products), len(to_link), already, len(agreements))


def _flowing_values(entry: AllianceEntry) -> dict[str, Any]:
    """What the entry decides for its member products, by column (no query for the related rows)."""
    return {Product._meta.get_field(name).attname: getattr(entry, AllianceEntry._meta.get_field(name).attname)
            for name in FLOWING_FIELDS}


def _member_agreements_for(products: list[Product], hospital: Hospital, today: datetime.date) -> list[SupplyAgreement]:
    """The member agreements the adopted products get: one per alliance agreement not yet over,
    except where the member already buys the product from that supplier under an agreement in force."""
    by_entry = {product.alliance_entry_id: product for product in products}
    if not by_entry:
        return []
    own = set(
        SupplyAgreement.objects.filter(
            hospital=hospital, product__in=[product.pk for product in products], is_active=True, valid_to__gte=today,
        ).values_list("product_id", "supplier_id")
    )
    return [
        _member_agreement(agreement, by_entry[agreement.entry_id])
        for agreement in AllianceAgreement.objects.filter(
            entry_id__in=by_entry, is_active=True, valid_to__gte=today
        ).order_by("entry_id", "valid_from", "pk")
        if (by_entry[agreement.entry_id].pk, agreement.supplier_id) not in own
    ]


def kept_field_problem(product: Product, attrs: dict[str, Any]) -> Problem | None:
    """Why a member may not make this change to its product (None: it may): an adopted product's
    name, specification, classes, 医保 code, manufacturer and certificate follow the alliance entry."""
    if product.alliance_entry_id is None:
        return None
    for name in FLOWING_FIELDS:
        if name in attrs and attrs[name] != getattr(product, name):
            return Problem(Refusal.ALLIANCE_FIELD_KEPT_BY_ALLIANCE, {"field": Product._meta.get_field(name).verbose_name})
    return None
