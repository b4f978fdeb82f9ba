"""Price changes (调价): the one way a purchase price changes.

A supply agreement's price is never edited in place (the API answers 409 PRICE_EDIT_REFUSED, the
admin shows the price read-only): a change is a new dated agreement, with a reason and an
approver. The old agreement ends the day before the new price starts; both stay, so what every
delivery was checked against, and every charge billed at, remains known. The change raises a
PRICE_CHANGED alert — route it to the people who bill (收费/物价) with a notification rule of that
kind — and shows in the master-data history (both agreements are tracked) and on the product's
price timeline (`selectors.prices.price_timeline`).
"""
import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Alert, PriceChange, Role, SupplyAgreement, User

APPROVER_ROLES = (Role.ADMIN, Role.SPD_OPERATOR)


def change_price(
    *, actor: Actor, agreement: SupplyAgreement, new_price: Decimal, effective_from: datetime.date, reason: str,
    approved_by: User,
) -> PriceChange:
    """Replace `agreement` from `effective_from` by a new one at `new_price`; returns the change.

    Guarantees: the old agreement ends on the day before, the new one runs to the old end with the
    same supplier, platform reference and VBP contract; no day has two prices and none has none.
    Refused, with every problem, when the date is not after the old start, after its end, or in the
    past; the approver is not an administrator or SPD operator of the hospital; the reason is empty;
    or the price is the same.
    """
    reason = reason.strip()
    problems = _change_problems(agreement, new_price, effective_from, reason, approved_by)
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        old = SupplyAgreement.objects.select_for_update().get(pk=agreement.pk)
        if not old.is_active or old.valid_to < effective_from or old.valid_from >= effective_from:
            raise Refused(Refusal.AGREEMENT_NOT_CURRENT)
        return replace_agreement(
            old, new_price=new_price, effective_from=effective_from, reason=reason, approved_by=approved_by,
            recorded_by=actor.user,
        )


def replace_agreement(
    old: SupplyAgreement, *, new_price: Decimal, effective_from: datetime.date, reason: str, approved_by: User,
    recorded_by: User, alliance_agreement_id: int | None = None,
) -> PriceChange:
    """The change itself, on a locked agreement in force on `effective_from` (the caller checked the
    rules): the new dated agreement, the old one ended the day before, the PriceChange and its alert.
    An alliance price change (services.alliance_catalog) passes the alliance agreement the new one
    comes from; otherwise the new agreement keeps the old one's."""
    new = SupplyAgreement.objects.create(
        hospital_id=old.hospital_id, supplier_id=old.supplier_id, product_id=old.product_id, unit_price=new_price,
        valid_from=effective_from, valid_to=old.valid_to, platform_reference=old.platform_reference,
        vbp_contract=old.vbp_contract, is_active=True,
        alliance_agreement_id=alliance_agreement_id or old.alliance_agreement_id,
    )
    old.valid_to = effective_from - datetime.timedelta(days=1)
    old.save(update_fields=["valid_to"])
    change = PriceChange.objects.create(
        hospital_id=old.hospital_id, product_id=old.product_id, supplier_id=old.supplier_id, previous=old,
        agreement=new, old_price=old.unit_price, new_price=new_price, effective_from=effective_from,
        reason=reason, approved_by=approved_by, recorded_by=recorded_by,
    )
    _alert(change)
    return change


def _change_problems(
    agreement: SupplyAgreement, new_price: Decimal, effective_from: datetime.date, reason: str, approver: User
) -> list[Problem]:
    problems = []
    today = timezone.localdate()
    if effective_from <= agreement.valid_from or effective_from > agreement.valid_to or effective_from < today:
        problems.append(Problem(
            Refusal.PRICE_CHANGE_DATE_INVALID, {"start": agreement.valid_from, "end": agreement.valid_to}
        ))
    if approver.hospital_id != agreement.hospital_id or not approver.has_role(*APPROVER_ROLES) or not approver.is_active:
        problems.append(Problem(Refusal.PRICE_CHANGE_APPROVER_INVALID))
    if not reason:
        problems.append(Problem(Refusal.PRICE_CHANGE_REASON_MISSING))
    if new_price == agreement.unit_price:
        problems.append(Problem(Refusal.PRICE_UNCHANGED, {"price": new_price}))
    return problems


def _alert(change: PriceChange) -> None:
    from inventory.services.alerts import raise_alert

    raise_alert(
        hospital=change.hospital, kind=Alert.Kind.PRICE_CHANGED, subject_key=f"price-change:{change.pk}",
        severity=Alert.Severity.WARNING, product=change.product,
        message=f"{change.product} ({change.supplier}): {change.old_price} → {change.new_price} "
                f"from {change.effective_from:%Y-%m-%d}. {change.reason}"[:500],
        details={
            "price_change": change.pk, "supplier": change.supplier_id, "old_price": str(change.old_price),
            "new_price": str(change.new_price), "effective_from": change.effective_from.isoformat(),
            "approved_by": change.approved_by_id,
        },
    )
