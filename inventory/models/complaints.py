"""Written complaints about a supplier or a product (书面投诉), and the suspensions they lead to.

A complaint is recorded with its evidence (text, and optionally a scanned file) and later decided:
UPHELD or DISMISSED, by whom, when and why. More than `SPD_COMPLAINT_SUSPENSION_THRESHOLD` upheld
complaints about the same supplier (or product) received within `SPD_COMPLAINT_PERIOD_DAYS`
suspend it at that hospital (`services.complaints`): no new purchase order and no acceptance until
an SPD operator lifts the suspension with a reason.
"""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Complaint(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "PENDING", pgettext_lazy("decision", "Pending")
        UPHELD = "UPHELD", _("Upheld")
        DISMISSED = "DISMISSED", pgettext_lazy("decision", "Dismissed")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="complaints",
                                 verbose_name=_("hospital"))
    supplier = models.ForeignKey("inventory.Supplier", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="complaints", verbose_name=_("supplier"))
    product = models.ForeignKey("inventory.Product", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="complaints", verbose_name=_("product"))
    received_on = models.DateField(_("received on"))
    complainant = models.CharField(_("complainant"), max_length=200)
    subject = models.CharField(_("subject"), max_length=200)
    evidence = models.TextField(_("evidence"))
    evidence_file = models.FileField(_("evidence file"), upload_to="complaints/%Y/%m/", blank=True, default="")
    recorded_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    outcome_reason = models.TextField(_("reason for the outcome"), blank=True, default="")
    decided_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("complaint (书面投诉)")
        ordering = ["-received_on", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(supplier__isnull=False) | Q(product__isnull=False),
                                   name="complaint_about_supplier_or_product"),
            models.CheckConstraint(
                condition=Q(outcome="PENDING", decided_at=None) | (~Q(outcome="PENDING") & Q(decided_at__isnull=False)),
                name="complaint_decided_when_not_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.received_on} {self.subject}"


class Suspension(models.Model):
    """A supplier or product suspended at one hospital after too many upheld complaints; lifted by a person."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="suspensions",
                                 verbose_name=_("hospital"))
    supplier = models.ForeignKey("inventory.Supplier", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="suspensions", verbose_name=_("supplier"))
    product = models.ForeignKey("inventory.Product", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="suspensions", verbose_name=_("product"))
    complaints = models.ManyToManyField(Complaint, related_name="suspensions", verbose_name=_("upheld complaints"))
    started_at = models.DateTimeField(_("suspended at"), auto_now_add=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("lifted by"))
    lift_reason = models.TextField(_("reason for lifting"), blank=True, default="")

    class Meta:
        verbose_name = _("suspension (暂停供货)")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(supplier__isnull=False) & Q(product=None)) | (Q(supplier=None) & Q(product__isnull=False)),
                name="suspension_of_supplier_xor_product",
            ),
            models.UniqueConstraint(fields=["hospital", "supplier"], condition=Q(lifted_at=None, supplier__isnull=False),
                                    name="one_active_suspension_per_supplier"),
            models.UniqueConstraint(fields=["hospital", "product"], condition=Q(lifted_at=None, product__isnull=False),
                                    name="one_active_suspension_per_product"),
            models.CheckConstraint(
                condition=Q(lifted_at=None) | ~Q(lift_reason=""), name="suspension_lifted_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return str(self.subject)

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None

    @property
    def subject(self) -> object:
        return self.supplier or self.product
