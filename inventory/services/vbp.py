"""VBP (带量采购) progress and alerts, from the ledger's consumptions.

Progress of a contract, per hospital and for the alliance (all its hospitals together): the volume
used so far (CONSUME movements of the contract's products minus UNCONSUME refunds, from the start
date to today or the end) against the agreed volume (reported demand × ratio), and the share of
the period elapsed. `scan_vbp` keeps three kinds of alerts open exactly while their condition holds:

- VBP_LAGGING: the share used lags the share of time elapsed by more than the contract's threshold;
- VBP_SUBSTITUTE_USED: a product on the contract's substitute list was used in the period;
- VBP_RENEWAL: the period ends within the contract's notice days (renew, or record an extension).
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Alert, Hospital, Movement, VbpContract, VbpExtension
from inventory.services.alerts import AlertSpec, ScanResult, sync_alerts

HUNDRED = Decimal("100")


@dataclass(frozen=True)
class VbpProgress:
    contract: VbpContract
    hospital: Hospital | None  # None: the alliance, every hospital of the contract
    agreed: int
    used: int
    start: datetime.date
    end: datetime.date
    today: datetime.date

    @property
    def used_pct(self) -> Decimal:
        return (Decimal(self.used) * HUNDRED / self.agreed).quantize(Decimal("0.1")) if self.agreed else Decimal("0")

    @property
    def elapsed_pct(self) -> Decimal:
        days = (self.end - self.start).days + 1
        elapsed = min(max((self.today - self.start).days + 1, 0), days)
        return (Decimal(elapsed) * HUNDRED / days).quantize(Decimal("0.1"))

    @property
    def lag(self) -> Decimal:
        """Percentage points by which use lags the time elapsed (negative: ahead)."""
        return self.elapsed_pct - self.used_pct

    @property
    def is_lagging(self) -> bool:
        return self.lag > self.contract.lag_threshold


def _used(product_filter: Q, hospital_ids: list[int], start: datetime.date, until: datetime.date) -> dict[int, int]:
    """Net quantity used per hospital (consumed minus refunded) of the products in the period."""
    rows = Movement.objects.filter(
        product_filter, hospital_id__in=hospital_ids, kind__in=(Movement.Kind.CONSUME, Movement.Kind.UNCONSUME),
        occurred_at__date__gte=start, occurred_at__date__lte=until,
    ).values("hospital_id").annotate(
        consumed=Sum("quantity", filter=Q(kind=Movement.Kind.CONSUME)),
        refunded=Sum("quantity", filter=Q(kind=Movement.Kind.UNCONSUME)),
    )
    return {row["hospital_id"]: (row["consumed"] or 0) - (row["refunded"] or 0) for row in rows}


def contract_progress(contract: VbpContract, *, today: datetime.date | None = None) -> list[VbpProgress]:
    """Progress per hospital of the contract, then for the alliance (the last row, hospital None)."""
    today = today or timezone.localdate()
    end = contract.end_date()
    allocations = list(contract.allocations.select_related("hospital", "contract").order_by("hospital__code"))
    used = _used(
        Q(product__in=contract.products.all()), [a.hospital_id for a in allocations], contract.start_date,
        min(today, end),
    )
    rows = [
        VbpProgress(contract, a.hospital, a.agreed_volume, used.get(a.hospital_id, 0), contract.start_date, end, today)
        for a in allocations
    ]
    rows.append(VbpProgress(
        contract, None, sum(row.agreed for row in rows), sum(row.used for row in rows), contract.start_date, end, today
    ))
    return rows


def extend_contract(*, actor: Actor, contract: VbpContract, new_end_date: datetime.date, reason: str) -> VbpExtension:
    """Record an extension (顺延): a later end date with a reason; the contract itself is not edited."""
    reason = reason.strip()
    with transaction.atomic():
        locked = VbpContract.objects.select_for_update().get(pk=contract.pk)
        if not reason:
            raise Refused(Refusal.INVALID_REQUEST, detail="reason")
        if new_end_date <= locked.end_date():
            raise Refused(Refusal.VBP_EXTENSION_NOT_LATER, end=locked.end_date())
        return VbpExtension.objects.create(
            contract=locked, new_end_date=new_end_date, reason=reason, recorded_by=actor.user
        )


def scan_vbp(*, today: datetime.date | None = None, now: datetime.datetime | None = None) -> ScanResult:
    """Open exactly the VBP alerts whose condition holds today, for every contract in its period."""
    today = today or timezone.localdate()
    lagging, substitutes, renewals = [], [], []
    for contract in VbpContract.objects.prefetch_related("allocations", "substitutes"):
        end = contract.end_date()
        if not contract.start_date <= today <= end:
            continue
        key = f"vbp:{contract.pk}"
        hospital_ids = [allocation.hospital_id for allocation in contract.allocations.all()]
        for row in contract_progress(contract, today=today):
            if row.hospital is not None and row.is_lagging:
                lagging.append(AlertSpec(
                    row.hospital.pk, key, Alert.Severity.WARNING,
                    f"VBP {contract.number}: {row.used_pct}% of the agreed {row.agreed} used, "
                    f"{row.elapsed_pct}% of the period elapsed",
                    {"contract": contract.pk, "used": row.used, "agreed": row.agreed, "used_pct": str(row.used_pct),
                     "elapsed_pct": str(row.elapsed_pct)},
                ))
        substitute_ids = [product.pk for product in contract.substitutes.all()]
        if substitute_ids:
            for product_id, hospital_id, quantity in Movement.objects.filter(
                product_id__in=substitute_ids, hospital_id__in=hospital_ids, kind=Movement.Kind.CONSUME,
                occurred_at__date__gte=contract.start_date, occurred_at__date__lte=today,
            ).values_list("product_id", "hospital_id").annotate(quantity=Sum("quantity")):
                substitutes.append(AlertSpec(
                    hospital_id, f"{key}:substitute:{product_id}", Alert.Severity.WARNING,
                    f"VBP {contract.number}: {quantity} of a non-VBP substitute used instead of the contract's products",
                    {"contract": contract.pk, "quantity": quantity}, {"product_id": product_id},
                ))
        if (end - today).days <= contract.renewal_notice_days:
            renewals += [
                AlertSpec(hospital_id, key, Alert.Severity.INFO,
                          f"VBP {contract.number} ends on {end:%Y-%m-%d}: renew it or record an extension",
                          {"contract": contract.pk, "end": end.isoformat()})
                for hospital_id in hospital_ids
            ]
    scope = Q(subject_key__startswith="vbp:")
    return (
        sync_alerts(kind=Alert.Kind.VBP_LAGGING, specs=lagging, scope=scope, now=now)
        + sync_alerts(kind=Alert.Kind.VBP_SUBSTITUTE_USED, specs=substitutes, scope=scope, now=now)
        + sync_alerts(kind=Alert.Kind.VBP_RENEWAL, specs=renewals, scope=scope, now=now)
    )
