from django.db import models
from django.utils.translation import gettext_lazy as _


class Hospital(models.Model):
    """A hospital; several of them may form one county alliance (医共体) in one instance."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    alliance = models.CharField(_("county alliance (医共体)"), max_length=200, blank=True)
    is_lead = models.BooleanField(_("lead hospital"), default=False)

    class Meta:
        verbose_name = _("hospital")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    class Kind(models.TextChoices):
        CLINICAL = "CLINICAL", _("Clinical department")
        OPERATING_THEATRE = "OPERATING_THEATRE", _("Operating theatre / cath lab")
        WAREHOUSE = "WAREHOUSE", _("Warehouse")
        ADMINISTRATIVE = "ADMINISTRATIVE", _("Administrative")

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="departments")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices, default=Kind.CLINICAL)
    requisitions_need_approval = models.BooleanField(
        _("requisitions need approval"), default=False,
        help_text=_("A submitted requisition waits for approval before the warehouse picks it."),
    )
    zero_stock = models.BooleanField(
        _("zero-stock mode (零库存)"), default=False,
        help_text=_("Dispatch to this department is its receipt, in one step."),
    )
    expense_at_count = models.BooleanField(
        _("expense non-chargeable items at the periodic count"), default=False,
        help_text=_(
            "Off: items expensed on issue are expensed when they arrive in this department. "
            "On: they stay in its stores until a department count expenses what was used (二级库管理)."
        ),
    )

    class Meta:
        verbose_name = _("department")
        ordering = ["hospital", "code"]
        constraints = [models.UniqueConstraint(fields=["hospital", "code"], name="department_code_per_hospital")]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """A place stock can be: central warehouse (中心库), department store (二级库), smart cabinet…"""

    class Kind(models.TextChoices):
        CENTRAL_WAREHOUSE = "CENTRAL_WAREHOUSE", _("Central warehouse (中心库)")
        DEPARTMENT_STORE = "DEPARTMENT_STORE", _("Department store (二级库)")
        SMART_CABINET = "SMART_CABINET", _("Smart cabinet (智能柜)")
        OPERATING_ROOM = "OPERATING_ROOM", _("Operating room")
        QUARANTINE = "QUARANTINE", _("Quarantine")
        IN_TRANSIT = "IN_TRANSIT", _("In transit")
        PROCESSING_STATION = "PROCESSING_STATION", _("Processing station (加工间)")

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="locations")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="locations"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    return_deadline_hours = models.PositiveIntegerField(
        _("return deadline for taken units (hours)"), default=24,
        help_text=_("A unit taken from here and neither used nor returned by then is overdue (定时回库)."),
    )

    class Meta:
        verbose_name = _("location")
        ordering = ["hospital", "code"]
        constraints = [models.UniqueConstraint(fields=["hospital", "code"], name="location_code_per_hospital")]

    def __str__(self) -> str:
        return self.name

    # The location where an alliance transfer's stock waits between dispatch and receipt
    # (services/transfers.py): its stock moves only by that transfer's receipt or return.
    ALLIANCE_TRANSIT_CODE = "ALLIANCE-TRANSIT"

    @property
    def is_alliance_transit(self) -> bool:
        return self.kind == self.Kind.IN_TRANSIT and self.code == self.ALLIANCE_TRANSIT_CODE

    @property
    def holds_units_as(self) -> str:
        """The status a unit has while it sits here."""
        from inventory.models.stock import UnitStatus

        return UnitStatus.IN_CABINET if self.kind == self.Kind.SMART_CABINET else UnitStatus.IN_STOCK
