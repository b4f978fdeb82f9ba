"""Processing (加工, the P of SPD): pack, kit and set definitions, the packs made from them, and the
labels printed for packs and for items without a usable UDI (院内码).

A pack IS a unit: assembling one creates a `Unit` of the definition's pack product (an internal
GTIN, see `inventory.services.labels`) at the processing station, so transfers, cabinets and the
trace treat it like any other unit. Its members leave stock into the pack (status IN_PACK, no
location) and come back out one by one when the pack is used or broken up (拆包); `PackMember` keeps
the lineage both ways.

Definitions are versioned instead of edited: a change is a new `PackDefinition` row with the next
version, and a pack keeps the version it was made from. The old version stays readable for ever,
which is the definition's history (no pghistory tracking is needed for rows that never change).
"""
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PackDefinition(models.Model):
    """One version of a pack (定数包), kit (手术包/组套) or set (配套组件) definition of one hospital."""

    class Kind(models.TextChoices):
        PACK = "PACK", _("Fixed-quantity pack (定数包)")
        KIT = "KIT", _("Procedure kit (手术包)")
        SET = "SET", _("Component set (配套组件)")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="pack_definitions")
    code = models.CharField(_("code"), max_length=32)
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    pack_product = models.ForeignKey(
        "inventory.Product", on_delete=models.PROTECT, related_name="pack_definitions",
        verbose_name=_("pack product"),
    )
    is_current = models.BooleanField(_("current version"), default=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("pack definition")
        ordering = ["hospital", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "code", "version"], name="pack_definition_version_unique"),
            models.UniqueConstraint(
                fields=["hospital", "code"], condition=Q(is_current=True), name="one_current_pack_definition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} {self.name}"


class PackDefinitionLine(models.Model):
    """A product and its quantity in a definition; an optional line may be left out of a pack."""

    definition = models.ForeignKey(PackDefinition, on_delete=models.PROTECT, related_name="lines")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    is_optional = models.BooleanField(_("optional"), default=False)

    class Meta:
        verbose_name = _("pack definition line")
        ordering = ["definition", "id"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "product"], name="one_line_per_product_in_definition"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="pack_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product} × {self.quantity}"


class Pack(models.Model):
    """A pack made from one version of a definition. Its identity, place and status are its `unit`'s."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="packs")
    definition = models.ForeignKey(PackDefinition, on_delete=models.PROTECT, related_name="packs")
    unit = models.OneToOneField(
        "inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="pack"
    )
    station = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    assembled_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    assembled_at = models.DateTimeField(_("assembled at"), default=timezone.now)
    emptied_at = models.DateTimeField(_("emptied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("pack")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.definition.name} {self.unit.serial if self.unit_id else self.pk}"


class PackMember(models.Model):
    """One member of a pack: a unit, or a quantity of one lot with the cost layers it came from.

    LIVE while inside the pack, USED once consumed on a patient, RETURNED once broken out into
    stock. A unit is LIVE in at most one pack (partial UNIQUE), whatever the races.
    """

    class State(models.TextChoices):
        LIVE = "LIVE", _("In the pack")
        USED = "USED", _("Used on a patient")
        RETURNED = "RETURNED", _("Returned to stock (拆包)")

    pack = models.ForeignKey(Pack, on_delete=models.PROTECT, related_name="members")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(
        "inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="pack_memberships"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2)
    # [[receipt movement id or null, quantity, unit cost, is gift], ...] for a lot member.
    layers = models.JSONField(_("cost layers"), default=list, blank=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.LIVE)
    into_movement = models.ForeignKey("inventory.Movement", on_delete=models.PROTECT, related_name="+")
    out_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    consumption = models.ForeignKey(
        "inventory.Consumption", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("pack member")
        ordering = ["pack", "id"]
        constraints = [
            models.UniqueConstraint(fields=["unit"], condition=Q(state="LIVE"), name="unit_live_in_one_pack"),
            models.CheckConstraint(
                condition=Q(unit__isnull=False, quantity=1) | Q(unit__isnull=True, lot__gt=""),
                name="pack_member_is_unit_or_lot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.unit.serial if self.unit_id else self.lot} × {self.quantity}"


class LabelPrint(models.Model):
    """One printing of a label (pack label or 院内码): who, when, what, and whether it was a reprint."""

    class Symbology(models.TextChoices):
        DATAMATRIX = "DATAMATRIX", _("GS1 DataMatrix")
        GS1_128 = "GS1_128", _("GS1-128")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot_balance = models.ForeignKey(
        "inventory.LotBalance", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content = models.CharField(_("encoded GS1 data"), max_length=200)
    symbology = models.CharField(_("symbology"), max_length=12, choices=Symbology.choices)
    copies = models.PositiveIntegerField(_("copies"), default=1)
    is_reprint = models.BooleanField(_("reprint"), default=False)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    printed_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    printed_at = models.DateTimeField(_("printed at"), default=timezone.now)

    class Meta:
        verbose_name = _("label print")
        ordering = ["-printed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit__isnull=False, lot_balance__isnull=True)
                | Q(unit__isnull=True, lot_balance__isnull=False),
                name="label_for_a_unit_or_a_lot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content} ({self.get_symbology_display()})"
