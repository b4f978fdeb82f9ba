from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UnitStatus(models.TextChoices):
    RECEIVED = "RECEIVED", _("Received")
    ACCEPTED = "ACCEPTED", _("Accepted")
    REJECTED = "REJECTED", _("Rejected")
    IN_STOCK = "IN_STOCK", _("In stock")
    IN_CABINET = "IN_CABINET", _("In smart cabinet")
    TAKEN = "TAKEN", _("Taken from cabinet")
    CONSUMED = "CONSUMED", _("Consumed")
    RETURNED_TO_SUPPLIER = "RETURNED_TO_SUPPLIER", _("Returned to supplier")
    SCRAPPED = "SCRAPPED", _("Scrapped")
    EXPIRED = "EXPIRED", _("Expired (locked)")
    IN_PACK = "IN_PACK", _("In a pack (已组包)")
    UNPACKED = "UNPACKED", _("Pack emptied (包已拆空)")


# A unit in one of these statuses is physically at its location (a TAKEN unit is still counted at
# the cabinet it was taken from until it is used or put back; an EXPIRED one is locked, not gone).
IN_STOCK_STATUSES = (
    UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED,
)


# The unit status machine (DESIGN.md §3). A move between two locations keeps IN_STOCK or
# IN_CABINET, hence the self-transitions.
UNIT_TRANSITIONS: dict[str, frozenset[str]] = {
    UnitStatus.RECEIVED: frozenset({UnitStatus.ACCEPTED, UnitStatus.REJECTED}),
    UnitStatus.ACCEPTED: frozenset(
        {
            UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.RETURNED_TO_SUPPLIER, UnitStatus.SCRAPPED,
            UnitStatus.EXPIRED,
        }
    ),
    UnitStatus.IN_STOCK: frozenset(
        {
            UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.CONSUMED, UnitStatus.RETURNED_TO_SUPPLIER,
            UnitStatus.SCRAPPED, UnitStatus.EXPIRED,
        }
    ),
    UnitStatus.IN_CABINET: frozenset(
        {
            UnitStatus.IN_CABINET, UnitStatus.IN_STOCK, UnitStatus.TAKEN, UnitStatus.RETURNED_TO_SUPPLIER,
            UnitStatus.SCRAPPED, UnitStatus.EXPIRED,
        }
    ),
    UnitStatus.TAKEN: frozenset({UnitStatus.IN_CABINET, UnitStatus.IN_STOCK, UnitStatus.CONSUMED, UnitStatus.EXPIRED}),
    UnitStatus.CONSUMED: frozenset({UnitStatus.IN_STOCK}),
    UnitStatus.EXPIRED: frozenset({UnitStatus.RETURNED_TO_SUPPLIER, UnitStatus.SCRAPPED}),
    UnitStatus.REJECTED: frozenset(),
    UnitStatus.RETURNED_TO_SUPPLIER: frozenset(),
    UnitStatus.SCRAPPED: frozenset(),
}
# Processing (inventory/services/processing.py): a member goes into a pack from stock and comes back
# out into the pack's place and status; a pack's own unit ends UNPACKED once its last member is out.
UNIT_TRANSITIONS[UnitStatus.IN_STOCK] |= {UnitStatus.IN_PACK, UnitStatus.UNPACKED}
UNIT_TRANSITIONS[UnitStatus.IN_CABINET] |= {UnitStatus.UNPACKED}
UNIT_TRANSITIONS[UnitStatus.TAKEN] |= {UnitStatus.UNPACKED}
UNIT_TRANSITIONS[UnitStatus.EXPIRED] |= {UnitStatus.UNPACKED}
UNIT_TRANSITIONS[UnitStatus.IN_PACK] = frozenset({UnitStatus.IN_STOCK, UnitStatus.TAKEN})
UNIT_TRANSITIONS[UnitStatus.UNPACKED] = frozenset()


class Owner(models.TextChoices):
    HOSPITAL = "HOSPITAL", _("Hospital")
    SUPPLIER = "SUPPLIER", _("Supplier (consignment 寄售)")


class Unit(models.Model):
    """One physical high-value item (一物一码). Its location and status change only with a Movement."""

    # hospital, product and location have no index of their own: (hospital, status), (product, lot)
    # and (location, status) lead with them. Every index is one more entry written per move.
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="units", db_index=False)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="units", db_index=False)
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="units")
    delivery_line = models.OneToOneField(
        "inventory.DeliveryLine", null=True, blank=True, on_delete=models.PROTECT, related_name="unit"
    )
    udi_raw = models.CharField(_("UDI as scanned"), max_length=300)
    udi = models.CharField(_("UDI (normalised)"), max_length=300)
    di = models.CharField(_("UDI-DI"), max_length=64)
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    serial = models.CharField(_("serial"), max_length=64)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    production_date = models.DateField(_("production date"), null=True, blank=True)
    epc = models.CharField(_("RFID EPC"), max_length=64, null=True, blank=True, unique=True)
    owner = models.CharField(_("owner"), max_length=16, choices=Owner.choices, default=Owner.HOSPITAL)
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2)
    is_gift = models.BooleanField(_("gift (赠送)"), default=False)
    status = models.CharField(_("status"), max_length=24, choices=UnitStatus.choices)
    status_since = models.DateTimeField(_("in this status since"), default=timezone.now)
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="units", db_index=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("unit")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["di", "serial"], name="unit_serial_unique_per_di"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="unit_cost_not_negative"),
        ]
        indexes = [
            models.Index(fields=["hospital", "status"]),
            models.Index(fields=["location", "status"]),
            models.Index(fields=["expiry"]),
            models.Index(fields=["product", "lot"]),
            # The stock held now, per place: what the reconciliation compares with the ledger, read
            # in the stock's size, not the history's (five years: 960,000 units, 200,000 in stock).
            models.Index(fields=["hospital", "product", "location"], name="unit_in_stock_by_place",
                         condition=Q(location__isnull=False, status__in=IN_STOCK_STATUSES)),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} SN {self.serial}"


class LotBalance(models.Model):
    """Quantity of one lot of a lot-tracked product at one location. Changes only with a Movement.

    What that quantity cost is held by its cost layers (`LotCostLayer`, one per receipt): their
    quantities always add up to `quantity`. `unit_cost` is the cost of the layer the next use or
    move draws first (first in, first out), kept for lists and reports.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="lot_balances")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="lot_balances")
    lot = models.CharField(_("lot"), max_length=64)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="lot_balances")
    owner = models.CharField(_("owner"), max_length=16, choices=Owner.choices, default=Owner.HOSPITAL)
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2)
    quantity = models.IntegerField(_("quantity"))

    class Meta:
        verbose_name = _("lot balance")
        ordering = ["product", "expiry", "lot"]
        constraints = [
            models.UniqueConstraint(fields=["product", "lot", "location"], name="one_balance_per_lot_and_location"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="lot_quantity_not_negative"),
        ]
        indexes = [
            # The lots held now (a place's empty balances stay, one per lot it ever held): see Unit's.
            models.Index(fields=["hospital", "product", "location"], include=["quantity"],
                         name="lot_balance_held_by_place", condition=~Q(quantity=0)),
        ]

    def __str__(self) -> str:
        return f"{self.product} lot {self.lot} @ {self.location}: {self.quantity}"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The ledger is append-only: movements cannot be updated.")

    def delete(self):
        raise TypeError("The ledger is append-only: movements cannot be deleted.")


class Movement(models.Model):
    """The ledger (台账): one row per change of quantity, location, status or owner.

    Append-only: never updated or deleted (this model refuses it, and on PostgreSQL a trigger does
    too); a mistake is corrected by a reversing movement. Balances (Unit.location/status,
    LotBalance.quantity) are changed in the same transaction as the row that explains them.
    """

    class Kind(models.TextChoices):
        RECEIPT = "RECEIPT", _("Receipt (入库)")
        PUTAWAY = "PUTAWAY", _("Put away (上架)")
        TRANSFER = "TRANSFER", _("Transfer (移库)")
        CABINET_TAKE = "CABINET_TAKE", _("Taken from cabinet")
        CABINET_RETURN = "CABINET_RETURN", _("Returned to cabinet")
        CONSUME = "CONSUME", _("Consumed (使用)")
        UNCONSUME = "UNCONSUME", _("Consumption refunded (退费)")
        RETURN_TO_SUPPLIER = "RETURN_TO_SUPPLIER", _("Returned to supplier (退货)")
        SCRAP = "SCRAP", _("Scrapped (报损)")
        EXPIRE = "EXPIRE", _("Expired and locked")
        ADJUSTMENT = "ADJUSTMENT", _("Stocktake adjustment (盘点调整)")
        OWNER_CHANGE = "OWNER_CHANGE", _("Change of owner (寄售转自有)")
        QUARANTINE_RELEASE = "QUARANTINE_RELEASE", _("Released from quarantine (解除隔离)")
        DEPARTMENT_EXPENSE = "DEPARTMENT_EXPENSE", _("Expensed to the department (科室领用即消耗)")
        PACK_IN = "PACK_IN", _("Into a pack (组包)")
        PACK_OUT = "PACK_OUT", _("Out of a pack (拆包)")
        PACK_MADE = "PACK_MADE", _("Pack assembled (加工成包)")
        PACK_EMPTIED = "PACK_EMPTIED", _("Pack emptied (包已拆空)")
        # Between member hospitals of an alliance (services/transfers.py): the sender's books record
        # the stock out, the receiver's in, in one transaction at receipt.
        ALLIANCE_OUT = "ALLIANCE_OUT", _("Transferred to another member (调出)")
        ALLIANCE_IN = "ALLIANCE_IN", _("Transferred from another member (调入)")

    KINDS_REQUIRING_REASON = frozenset(
        {Kind.RETURN_TO_SUPPLIER, Kind.SCRAP, Kind.UNCONSUME, Kind.ADJUSTMENT, Kind.QUARANTINE_RELEASE}
    )

    class DocumentType(models.TextChoices):
        DELIVERY_NOTE = "DELIVERY_NOTE", _("Delivery note")
        STOCK_ORDER = "STOCK_ORDER", _("Stock order")
        CABINET_SESSION = "CABINET_SESSION", _("Cabinet session")
        CONSUMPTION = "CONSUMPTION", _("Consumption")
        ALERT = "ALERT", _("Alert (expiry lock)")
        PACK = "PACK", _("Pack (加工包)")
        STOCKTAKE = "STOCKTAKE", _("Stocktake (盘点)")
        ALLIANCE_TRANSFER = "ALLIANCE_TRANSFER", _("Alliance transfer (调拨单)")

    # hospital and product have no index of their own: (hospital, occurred_at) and (product,
    # occurred_at) lead with them. The ledger takes an entry in each index per movement.
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="movements",
                                 db_index=False)
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="movements",
                                db_index=False)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="movements"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    from_location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="movements_out"
    )
    to_location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="movements_in"
    )
    from_status = models.CharField(_("status before"), max_length=24, choices=UnitStatus.choices, blank=True)
    to_status = models.CharField(_("status after"), max_length=24, choices=UnitStatus.choices, blank=True)
    from_owner = models.CharField(_("owner before"), max_length=16, choices=Owner.choices, blank=True)
    to_owner = models.CharField(_("owner after"), max_length=16, choices=Owner.choices, blank=True)
    actor_user = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="movements"
    )
    actor_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="movements"
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    reason_code = models.CharField(_("reason code"), max_length=32, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    document_type = models.CharField(_("source document type"), max_length=24, choices=DocumentType.choices)
    document_id = models.BigIntegerField(_("source document id"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("movement")
        ordering = ["id"]
        db_table = "inventory_movement"
        # Related-object access goes through the append-only manager too.
        base_manager_name = "objects"
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_user__isnull=False, actor_device__isnull=True)
                | Q(actor_user__isnull=True, actor_device__isnull=False),
                name="movement_has_one_actor",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="movement_quantity_positive"),
            models.CheckConstraint(
                condition=~Q(kind__in=["RETURN_TO_SUPPLIER", "SCRAP", "UNCONSUME", "ADJUSTMENT", "QUARANTINE_RELEASE"])
                | ~Q(reason_code=""),
                name="movement_reason_where_required",
            ),
            models.CheckConstraint(
                condition=Q(unit__isnull=False, quantity=1) | Q(unit__isnull=True, lot__gt=""),
                name="movement_moves_a_unit_or_a_lot",
            ),
        ]
        indexes = [
            models.Index(fields=["hospital", "occurred_at"]),
            models.Index(fields=["product", "occurred_at"]),
            models.Index(fields=["document_type", "document_id"]),
            # The changes of owner, few among the movements: the monthly close's fold finds a unit's
            # owner at each movement from them (inventory.selectors.periods.ledger_fold).
            models.Index(fields=["hospital", "occurred_at"], condition=Q(kind="OWNER_CHANGE"),
                         name="movement_owner_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise TypeError("The ledger is append-only: a saved movement cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The ledger is append-only: movements cannot be deleted.")


class LotCostLayer(models.Model):
    """The part of a lot balance that came in with one receipt, at that receipt's cost (成本层).

    A lot received twice at two prices is two layers, so that a use is billed at what was really
    paid for what it took (零差率). Uses, transfers, returns and scraps draw layers oldest receipt
    first (FIFO) unless they name the layer (a refund puts back what its use took); a transfer
    carries the layers it draws to the destination. Written only by `inventory.services.ledger`,
    under the lock of its balance; each change is explained by the `LotMovementLayer` rows of a
    movement. `receipt` is the RECEIPT movement that brought the quantity in; an opening layer
    (`receipt` empty) holds stock that was on hand before cost layers existed, at the cost then
    recorded on its balance.
    """

    balance = models.ForeignKey(LotBalance, on_delete=models.PROTECT, related_name="cost_layers")
    receipt = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("receipt"),
    )
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2)
    is_gift = models.BooleanField(_("gift (赠送)"), default=False)
    quantity = models.IntegerField(_("quantity"))

    class Meta:
        verbose_name = _("lot cost layer")
        ordering = ["balance", "receipt"]
        constraints = [
            models.UniqueConstraint(fields=["balance", "receipt"], name="one_layer_per_balance_and_receipt"),
            models.UniqueConstraint(
                fields=["balance"], condition=Q(receipt__isnull=True), name="one_opening_layer_per_balance"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="layer_quantity_not_negative"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="layer_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.balance} · receipt {self.receipt_id or 'opening'}: {self.quantity} × {self.unit_cost}"


class LotMovementLayer(models.Model):
    """How much of each cost layer a lot movement moved (append-only, like the movement itself).

    The quantities of one movement's rows add up to the movement's quantity; folding them (added
    at `to_location`, taken at `from_location`) gives every layer's quantity.
    """

    movement = models.ForeignKey("inventory.Movement", on_delete=models.PROTECT, related_name="layers")
    receipt = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("receipt of the layer"),
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2)
    is_gift = models.BooleanField(_("gift (赠送)"), default=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("movement cost layer")
        ordering = ["movement", "receipt"]
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["movement", "receipt"], name="one_row_per_movement_and_layer"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="movement_layer_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"movement {self.movement_id} · receipt {self.receipt_id or 'opening'}: {self.quantity}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise TypeError("The ledger is append-only: a saved movement layer cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The ledger is append-only: movement layers cannot be deleted.")


class TagBinding(models.Model):
    """The history of RFID tags bound to units (Unit.epc is the current binding).

    Cabinets often write vendor-specific EPCs, so this table — not the EPC's content — says
    which unit a tag is on.
    """

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="tag_bindings")
    epc = models.CharField(_("RFID EPC"), max_length=64)
    bound_at = models.DateTimeField(_("bound at"), default=timezone.now)
    bound_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bound_by_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unbound_at = models.DateTimeField(_("unbound at"), null=True, blank=True)
    unbound_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unbind_reason = models.CharField(_("unbind reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("tag binding")
        ordering = ["bound_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["epc"], condition=Q(unbound_at__isnull=True), name="one_live_binding_per_epc"),
            models.UniqueConstraint(fields=["unit"], condition=Q(unbound_at__isnull=True), name="one_live_tag_per_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.epc} → {self.unit_id}"


class ParLevel(models.Model):
    """The stock a location should hold of a product (基数); below `minimum` an alert is raised."""

    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="par_levels")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="par_levels")
    minimum = models.PositiveIntegerField(_("minimum quantity"))
    target = models.PositiveIntegerField(_("replenish up to"), null=True, blank=True)
    maximum = models.PositiveIntegerField(
        _("maximum quantity"), null=True, blank=True, help_text=_("Empty: no upper limit")
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    updated_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("par level")
        constraints = [
            models.UniqueConstraint(fields=["location", "product"], name="one_par_level_per_location_product"),
            models.CheckConstraint(
                condition=Q(target__isnull=True) | Q(target__gte=F("minimum")), name="par_target_not_below_minimum"
            ),
            models.CheckConstraint(
                condition=Q(maximum__isnull=True) | (Q(maximum__gte=F("minimum")) & (Q(target__isnull=True) | Q(maximum__gte=F("target")))),
                name="par_maximum_not_below_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} @ {self.location} ≥ {self.minimum}"

    @property
    def replenish_to(self) -> int:
        """The quantity replenishment fills up to: the target, or the minimum when no target is set."""
        return self.minimum if self.target is None else self.target
