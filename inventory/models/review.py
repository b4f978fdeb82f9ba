"""Consumable review (耗材点评): watched items, medical revenue from the HIS and 耗占比 red lines.

The review figures themselves are computed from the uses (Consumption) by inventory.selectors.review.
"""
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WatchedItem(models.Model):
    """A product on the hospital's list of watched consumables (重点监控耗材)."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="watched_items")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="watched_in")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("watched item")
        ordering = ["product__name", "pk"]
        constraints = [models.UniqueConstraint(fields=["hospital", "product"], name="one_watch_per_product")]

    def __str__(self) -> str:
        return f"watch {self.product_id}"


class DepartmentRevenue(models.Model):
    """A department's medical revenue of one month, imported from the HIS.

    `revenue` is the medical revenue excluding drugs and consumables, the denominator of 耗占比 as the
    national KPI defines it. Importing the same department and month again replaces the figure.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="revenues")
    department = models.ForeignKey("inventory.Department", on_delete=models.PROTECT, related_name="revenues")
    month = models.DateField(_("month (first day)"))
    revenue = models.DecimalField(_("medical revenue excl. drugs and consumables"), max_digits=16, decimal_places=2)
    imported_at = models.DateTimeField(_("imported at"), default=timezone.now)
    import_batch = models.CharField(_("import batch"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("department revenue")
        ordering = ["-month", "department_id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "department", "month"], name="one_revenue_per_department_month"),
            models.CheckConstraint(condition=Q(revenue__gte=0), name="revenue_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.department_id} {self.month:%Y-%m} {self.revenue}"


class RatioRedLine(models.Model):
    """The highest 耗占比 (consumable cost / medical revenue, in %) allowed for a department."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="ratio_red_lines")
    department = models.ForeignKey("inventory.Department", on_delete=models.PROTECT, related_name="ratio_red_lines")
    max_percent = models.DecimalField(_("red line (%)"), max_digits=6, decimal_places=2)

    class Meta:
        verbose_name = _("耗占比 red line")
        ordering = ["department_id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "department"], name="one_red_line_per_department"),
            models.CheckConstraint(condition=Q(max_percent__gt=0), name="red_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.department_id} ≤ {self.max_percent}%"


class ClinicalTeam(models.Model):
    """A clinical team (诊疗组) of a department: the attending doctors' group a use is reviewed by."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="clinical_teams")
    department = models.ForeignKey("inventory.Department", on_delete=models.PROTECT, related_name="clinical_teams")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("clinical team (诊疗组)")
        ordering = ["department_id", "code"]
        constraints = [models.UniqueConstraint(fields=["hospital", "code"], name="one_clinical_team_code")]

    def __str__(self) -> str:
        return self.name


class ClinicalTeamMember(models.Model):
    """A doctor (by HIS code) in a clinical team from `since` until `until` (open: still in it).

    Dated, so that a use is reviewed under the team the doctor was in on the day of the use."""

    team = models.ForeignKey(ClinicalTeam, on_delete=models.PROTECT, related_name="members")
    doctor = models.CharField(_("doctor (HIS code)"), max_length=64)
    since = models.DateField(_("member since"))
    until = models.DateField(_("member until"), null=True, blank=True)

    class Meta:
        verbose_name = _("clinical team member")
        ordering = ["team_id", "doctor", "since"]
        constraints = [
            models.CheckConstraint(condition=Q(until__isnull=True) | Q(until__gte=F("since")),
                                   name="team_membership_dates_in_order"),
        ]
        indexes = [models.Index(fields=["doctor", "since"])]

    def __str__(self) -> str:
        return f"{self.doctor} in {self.team_id}"
