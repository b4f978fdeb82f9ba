from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """The groups a user can belong to; permissions follow from them (inventory.api.permissions)."""

    ADMIN = "admin", _("Administrator")
    WAREHOUSE = "warehouse", _("Warehouse keeper (库管员)")
    SPD_OPERATOR = "spd_operator", _("SPD operator")
    NURSE = "nurse", _("Nurse")
    AUDITOR = "auditor", _("Auditor")
    # 医保办 / 医务处: reads the consumable review, watched items, 耗占比 and red lines, recalls and
    # implant records of the whole hospital; moves no stock and keeps no master data.
    REVIEWER = "reviewer", _("Medical insurance / medical affairs reviewer (医保办/医务处)")
    # A supplier's own staff (供应商门户): bound to one supplier, never to a hospital — they see only
    # their supplier's orders, shipping notices and certificates (inventory.api.portal).
    SUPPLIER = "supplier", _("Supplier (供应商)")
    # County alliance (医共体) roles, held by staff of the lead hospital or the alliance SPD centre:
    # they read every member of their alliance (inventory.alliance), each with its own trade.
    ALLIANCE_OPERATOR = "alliance_operator", _("Alliance SPD operator (联盟SPD运营)")
    ALLIANCE_AUDITOR = "alliance_auditor", _("Alliance auditor (联盟审计)")
    ALLIANCE_ADMIN = "alliance_admin", _("Alliance administrator (联盟管理员)")


class User(AbstractUser):
    """A person. Bound to one hospital: everything they see and do is scoped to it.

    Superusers without a hospital are alliance-level administrators and see every hospital.
    """

    hospital = models.ForeignKey(
        "inventory.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    departments = models.ManyToManyField("inventory.Department", blank=True, related_name="users")
    supplier = models.ForeignKey(
        "inventory.Supplier", null=True, blank=True, on_delete=models.PROTECT, related_name="users",
        verbose_name=_("supplier (portal user)"),
        help_text=_("Set for a supplier's staff: they use the supplier portal only, and have no hospital."),
    )
    badge = models.CharField(
        _("badge id (工牌)"), max_length=64, null=True, blank=True, unique=True,
        help_text=_("The id a smart cabinet's badge reader sends when this person opens the door."),
    )

    class Meta:
        verbose_name = _("user")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(supplier__isnull=True) | models.Q(hospital__isnull=True, is_superuser=False),
                name="supplier_user_has_no_hospital",
            ),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        # `set_password` leaves the new password in `_password` until saved: then the API tokens issued
        # under the old one stop working, as the web sessions do.
        password_changed = self._password is not None and self.pk is not None
        super().save(*args, **kwargs)
        if password_changed:
            from rest_framework.authtoken.models import Token

            Token.objects.filter(user=self).delete()

    @property
    def is_supplier_user(self) -> bool:
        return self.supplier_id is not None

    def remember_scope(self, *, roles: list[str], department_ids: list[int]) -> None:
        """Keep the roles and departments read with this request's token (api.authentication): this
        instance lives for one request, which asks for them several times."""
        self._role_names = frozenset(roles)
        self._known_department_ids = frozenset(department_ids)

    def role_names(self) -> frozenset[str]:
        """The names of the user's groups (their roles), read once for this instance: a request's
        user lives for one request and is asked many times (the menu, the guards, the scopes).
        `groups.add/remove/set/clear` on this instance forget them (`forget_roles`)."""
        cached = getattr(self, "_role_names", None)
        if cached is None:
            cached = frozenset(self.groups.values_list("name", flat=True)) if self.pk else frozenset()
            self._role_names = cached
        return cached

    def forget_roles(self) -> None:
        self.__dict__.pop("_role_names", None)

    @property
    def known_department_ids(self) -> frozenset[int] | None:
        """The departments remembered by `remember_scope`, None when they were not read with the token."""
        return getattr(self, "_known_department_ids", None)

    def has_role(self, *roles: Role) -> bool:
        if self.is_superuser:
            return True
        return not self.role_names().isdisjoint(role.value for role in roles)


@receiver(m2m_changed, sender=User.groups.through)
def _forget_changed_roles(sender: type, instance: object, action: str, reverse: bool, **kwargs: object) -> None:
    """A user whose groups were just changed through it reads them again when next asked."""
    if not reverse and action.startswith("post_"):
        instance.forget_roles()
