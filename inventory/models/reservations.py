from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StockReservation(models.Model):
    """Stock promised to a document that will move it (a pick list line, a pack being assembled).

    Reserving changes no quantity, so it is not a movement: the ledger is untouched until the stock
    actually moves. While a reservation is active the FEFO proposal (`inventory/selectors/fefo.py`)
    does not offer that unit, or that part of the lot, to anyone else. A unit can be actively
    reserved once (a partial UNIQUE index); a lot's active reservations never exceed its balance —
    kept by the reserving service under the balance's row lock. Stock reserved for an alliance
    transfer is also refused to every other movement by the ledger (`ledger.refuse_if_reserved`).
    """

    class Holder(models.TextChoices):
        PICK_LIST_LINE = "PICK_LIST_LINE", _("Pick list line (拣货单)")
        ALLIANCE_TRANSFER_LINE = "ALLIANCE_TRANSFER_LINE", _("Alliance transfer line (医共体调拨单)")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="reservations")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="reservations")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="reservations")
    unit = models.ForeignKey(
        "inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="reservations"
    )
    lot_balance = models.ForeignKey(
        "inventory.LotBalance", null=True, blank=True, on_delete=models.PROTECT, related_name="reservations"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    holder_type = models.CharField(_("held for"), max_length=24, choices=Holder.choices)
    holder_id = models.BigIntegerField(_("holder id"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("reserved at"), default=timezone.now)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("stock reservation")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit__isnull=False, lot_balance__isnull=True, quantity=1)
                | Q(unit__isnull=True, lot_balance__isnull=False),
                name="reservation_of_a_unit_or_a_lot",
            ),
            models.UniqueConstraint(
                fields=["unit"], condition=Q(is_active=True, unit__isnull=False), name="unit_reserved_once",
            ),
        ]
        indexes = [
            models.Index(fields=["holder_type", "holder_id"]),
            models.Index(fields=["lot_balance"], condition=Q(is_active=True), name="active_lot_reservations"),
        ]

    def __str__(self) -> str:
        what = f"unit {self.unit_id}" if self.unit_id else f"lot {self.lot} × {self.quantity}"
        return f"{what} for {self.holder_type} {self.holder_id}"
