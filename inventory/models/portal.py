"""The supplier portal's documents: advance shipping notices (ASN, 电子送货单).

A supplier's user builds an ASN against one of the purchase orders addressed to them: one line per
unit carrying its full UDI, or a lot and quantity. Lines that cannot be delivered (unreadable UDI,
unknown product, duplicate serial, serial already in stock…) are refused with their reason and not
kept; the rest stay a DRAFT the supplier can complete. Submitted, it becomes the hospital's delivery
note awaiting acceptance (services.portal.submit_asn).
"""
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AdvanceShippingNotice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("Draft")
        SUBMITTED = "SUBMITTED", _("Submitted")

    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="shipping_notices")
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="shipping_notices")
    purchase_order = models.ForeignKey(
        "inventory.PurchaseOrder", on_delete=models.PROTECT, related_name="shipping_notices",
        verbose_name=_("purchase order"),
    )
    number = models.CharField(_("delivery note number"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    delivery_note = models.OneToOneField(
        "inventory.DeliveryNote", null=True, blank=True, on_delete=models.PROTECT, related_name="shipping_notice"
    )

    class Meta:
        verbose_name = _("advance shipping notice (电子送货单)")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "hospital", "number"], name="asn_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} {self.number}"


class AsnLine(models.Model):
    asn = models.ForeignKey(AdvanceShippingNotice, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    raw_udi = models.CharField(_("UDI"), max_length=300, blank=True)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    serial = models.CharField(_("serial"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)

    class Meta:
        verbose_name = _("shipping notice line")
        ordering = ["asn", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["asn", "line_no"], name="asn_line_no_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="asn_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.asn} #{self.line_no}"
