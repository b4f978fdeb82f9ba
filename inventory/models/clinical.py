from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Consumption(models.Model):
    """Use of a unit (or a quantity of a lot) on a patient encounter (使用登记).

    Only the HIS encounter reference is kept: no patient name or identity number is ever stored.
    A refund (退费) does not delete it: it is marked refunded and reversed by new movements.

    A use of a lot quantity that spans cost layers of different purchase prices is recorded as one
    consumption per price — the first, and the others `part_of` it — so that each one, and the
    charge it bills, has one exact purchase price (零差率). They are refunded together.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="consumptions")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="consumptions")
    unit = models.ForeignKey(
        "inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="consumptions"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="consumptions",
        help_text=_("Where the unit or lot was taken from"),
    )
    encounter = models.CharField(_("HIS encounter (visit/admission) number"), max_length=64)
    surgery_id = models.CharField(_("surgery id"), max_length=64, blank=True)
    surgery_name = models.CharField(_("surgery / procedure"), max_length=200, blank=True)
    doctor = models.CharField(_("doctor (HIS code)"), max_length=64, blank=True)
    clinical_team = models.ForeignKey(
        "inventory.ClinicalTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="consumptions",
        verbose_name=_("clinical team (诊疗组)"),
        help_text=_("Given with the use, or the doctor's team on the day of use; empty: not grouped (未分组)"),
    )
    department = models.ForeignKey(
        "inventory.Department", on_delete=models.PROTECT, related_name="consumptions",
        verbose_name=_("ordering department"),
    )
    unit_price = models.DecimalField(_("unit price (purchase price, 零差率)"), max_digits=12, decimal_places=2)
    was_consignment = models.BooleanField(_("consignment at use (bought from the supplier)"), default=False)
    occurred_at = models.DateTimeField(_("used at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    part_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="other_parts",
        verbose_name=_("part of the use"),
        help_text=_("The first consumption of a lot use billed at more than one purchase price"),
    )
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    refund_reason = models.CharField(_("refund reason"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("consumption")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="consumption_quantity_positive"),
            models.UniqueConstraint(
                fields=["unit"], condition=Q(unit__isnull=False, refunded_at__isnull=True),
                name="one_live_consumption_per_unit",
            ),
        ]
        indexes = [models.Index(fields=["hospital", "occurred_at"]), models.Index(fields=["encounter"])]

    def __str__(self) -> str:
        return f"{self.product} × {self.quantity} → {self.encounter}"

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity

    def whole_use(self) -> list["Consumption"]:
        """The consumptions of this use: itself, or all its parts when billed at several prices."""
        first = self.part_of_id or self.pk
        return list(Consumption.objects.filter(Q(pk=first) | Q(part_of_id=first)).order_by("pk"))


class Charge(models.Model):
    """A line billed to the patient through the HIS: the consumption's charge, or its refund (signed).

    Unit price is the purchase price of that very unit or lot (零差率: zero markup). A charge for a
    gifted or zero-cost unit is flagged: billing it would be a 零差率 violation.
    """

    class Kind(models.TextChoices):
        CHARGE = "CHARGE", _("Charge")
        REFUND = "REFUND", _("Refund")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="charges")
    consumption = models.ForeignKey(Consumption, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    refund_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refund"
    )
    encounter = models.CharField(_("HIS encounter number"), max_length=64)
    his_charge_code = models.CharField(_("HIS charge code"), max_length=32)
    nhsa_code = models.CharField(_("医保耗材编码"), max_length=32, blank=True)
    quantity = models.IntegerField(_("quantity (negative for a refund)"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("amount (negative for a refund)"), max_digits=14, decimal_places=2)
    # The product's billing unit (约定计价单位) when it is not the base unit: quantity and unit price
    # are then per that unit (inventory.services.units_of_measure.in_billing_unit); "" = base unit.
    billing_unit = models.CharField(_("billing unit"), max_length=16, blank=True, default="")
    is_zero_cost = models.BooleanField(_("gift / zero-cost unit"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("charge")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="CHARGE", quantity__gt=0, refund_of__isnull=True)
                | Q(kind="REFUND", quantity__lt=0, refund_of__isnull=False),
                name="charge_sign_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.his_charge_code} {self.amount}"


class ChargeDelivery(models.Model):
    """The outbox row of one charge for the HIS (written in the charge's own transaction).

    The relay delivers it with the charge id as idempotency key, so a resend after a crash can never
    become a second charge at the HIS.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Waiting to be sent")
        DELIVERED = "DELIVERED", _("Accepted by the HIS")
        FAILED = "FAILED", _("Failing: retried with back-off")
        GAVE_UP = "GAVE_UP", _("Stopped retrying: needs a manual resend")

    charge = models.OneToOneField(Charge, on_delete=models.PROTECT, related_name="delivery")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_until = models.DateTimeField(_("claimed by a relay until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    first_failed_at = models.DateTimeField(_("failing since"), null=True, blank=True)
    his_reference = models.CharField(_("HIS reference"), max_length=64, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("HIS delivery")
        ordering = ["next_attempt_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status__in=["PENDING", "FAILED"]), name="his_outbox_due"
            )
        ]

    def __str__(self) -> str:
        return f"delivery of charge {self.charge_id}: {self.status}"
