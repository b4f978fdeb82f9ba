"""Read paths for master-data history (变更记录): who changed what, when, from what to what.

The change tables (inventory/models/history.py) hold one snapshot per change: the row after a
create or update, the row before a delete. A change's "before" is the previous snapshot of the same
object, found with one extra query per page; its "after" is its own snapshot (none for a delete).
Role changes are rows of the user–group table: added or removed, with the role's name.

What a user may read follows the master data itself: a hospital's rows to its own users, the
alliance's suppliers, manufacturers and certificates to everyone, all of it to alliance
administrators. Reading history needs one of `HISTORY_READERS`.
"""
import datetime
import decimal
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.fields.files import FieldFile
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from devices.models import Device
from inventory.models import (
    Certificate,
    CertificateChange,
    Department,
    DepartmentChange,
    DeviceChange,
    Hospital,
    HospitalChange,
    Location,
    LocationChange,
    Manufacturer,
    ManufacturerChange,
    PackagingUnit,
    PackagingUnitChange,
    ParLevel,
    ParLevelChange,
    Product,
    ProductChange,
    Role,
    Supplier,
    SupplierChange,
    SupplyAgreement,
    SupplyAgreementChange,
    User,
    UserRoleChange,
)
from inventory.models.history import BASELINE, CREATE, DELETE, ROLE_REMOVED
from inventory.selectors.scope import visible_to

# The whole hospital's books: everyone but nurses (the same readers as reconciliation).
HISTORY_READERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.AUDITOR)
ROLES = "user-roles"


@dataclass(frozen=True)
class HistoryKind:
    """One kind of tracked master data: its slug in URLs, its tables, the path to its hospital."""

    slug: str
    label: Promise
    model: type[models.Model]
    change_model: type[models.Model]
    hospital_path: str | None  # lookup on the change table; None: shared by the alliance

    def changes_visible_to(self, user: User) -> QuerySet:
        changes = self.change_model.objects.all()
        if self.hospital_path is None:
            return changes
        return visible_to(user, changes, hospital_field=self.hospital_path)


KINDS: dict[str, HistoryKind] = {
    kind.slug: kind
    for kind in (
        HistoryKind("products", _("Products"), Product, ProductChange, "hospital"),
        HistoryKind("supply-agreements", _("Supply agreements"), SupplyAgreement, SupplyAgreementChange, "hospital"),
        HistoryKind("suppliers", _("Suppliers"), Supplier, SupplierChange, None),
        HistoryKind("manufacturers", _("Manufacturers"), Manufacturer, ManufacturerChange, None),
        HistoryKind("certificates", _("Certificates"), Certificate, CertificateChange, None),
        HistoryKind("locations", _("Locations"), Location, LocationChange, "hospital"),
        HistoryKind("departments", _("Departments"), Department, DepartmentChange, "hospital"),
        HistoryKind("hospitals", _("Hospitals"), Hospital, HospitalChange, "id"),
        HistoryKind("par-levels", _("Par levels"), ParLevel, ParLevelChange, "location__hospital"),
        HistoryKind("devices", _("Devices"), Device, DeviceChange, "hospital"),
        HistoryKind(ROLES, _("User roles"), User, UserRoleChange, "user__hospital"),
        HistoryKind("packaging-units", _("Packaging units"), PackagingUnit, PackagingUnitChange, "product__hospital"),
    )
}
_KIND_OF_MODEL = {kind.model: kind for kind in KINDS.values() if kind.slug != ROLES}


def kind_of(obj: models.Model) -> HistoryKind:
    """The tracked kind of a master-data object (users: their roles)."""
    if isinstance(obj, User):
        return KINDS[ROLES]
    return _KIND_OF_MODEL[type(obj)]


@dataclass(frozen=True)
class Change:
    """One recorded change of one object."""

    id: int
    kind: str
    object_id: int
    action: str  # create, update, delete, baseline (tracking began), role_added, role_removed
    at: datetime.datetime
    user_id: int | None  # None: not made through a request (a command, a job, SQL by hand)
    username: str
    path: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] = field(default_factory=list)


def changes(kind: HistoryKind, user: User, *, object_id: int | None = None) -> QuerySet:
    """The change rows of `kind` that `user` may read, newest first (describe a page with `describe`)."""
    rows = kind.changes_visible_to(user)
    if object_id is not None:
        rows = rows.filter(**{_object_field(kind): object_id})
    return rows.order_by("-pgh_id")


def changes_of(obj: models.Model) -> QuerySet:
    """Every change row of one object, newest first. The caller has checked that it may see `obj`."""
    kind = kind_of(obj)
    return kind.change_model.objects.filter(**{_object_field(kind): obj.pk}).order_by("-pgh_id")


def describe(kind: HistoryKind, rows: list[models.Model]) -> list[Change]:
    """Turn change rows (one page) into changes with their before and after values."""
    if not rows:
        return []
    usernames = dict(
        User.objects.filter(pk__in={_context(row).get("user") for row in rows} - {None}).values_list("pk", "username")
    )
    if kind.slug == ROLES:
        return _describe_roles(rows, usernames)
    previous = _previous_snapshots(kind, rows)
    described = []
    for row in rows:
        snapshot = _snapshot(row)
        if row.pgh_label == DELETE:
            before, after = snapshot, None
        elif row.pgh_label in (CREATE, BASELINE):
            before, after = None, snapshot
        else:
            before, after = previous.get(row.pgh_id), snapshot
        described.append(_change(kind, row, row.pgh_obj_id, usernames, before, after))
    return described


def _describe_roles(rows: list[models.Model], usernames: dict[int, str]) -> list[Change]:
    from django.contrib.auth.models import Group

    names = dict(Group.objects.filter(pk__in={row.group_id for row in rows}).values_list("pk", "name"))
    described = []
    for row in rows:
        role = {"role": names.get(row.group_id, f"#{row.group_id}")}
        before, after = (role, None) if row.pgh_label == ROLE_REMOVED else (None, role)
        described.append(_change(KINDS[ROLES], row, row.user_id, usernames, before, after))
    return described


def _change(
    kind: HistoryKind, row: models.Model, object_id: int, usernames: dict[int, str],
    before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> Change:
    context = _context(row)
    user_id = context.get("user")
    if before is not None and after is not None:
        changed = sorted(name for name in after if before.get(name) != after[name])
    else:
        changed = sorted((after or before or {}).keys())
    return Change(
        id=row.pgh_id, kind=kind.slug, object_id=object_id, action=row.pgh_label, at=row.pgh_created_at,
        user_id=user_id, username=usernames.get(user_id, ""), path=context.get("url", ""),
        before=before, after=after, changed=changed,
    )


def _object_field(kind: HistoryKind) -> str:
    return "user_id" if kind.slug == ROLES else "pgh_obj_id"


def _context(row: models.Model) -> dict[str, Any]:
    return row.pgh_context if isinstance(row.pgh_context, dict) else {}


def _previous_snapshots(kind: HistoryKind, rows: list[models.Model]) -> dict[int, dict[str, Any]]:
    """For each row, the snapshot of the same object just before it (if recorded)."""
    change_model = kind.change_model
    earlier = change_model.objects.filter(pgh_obj_id=OuterRef("pgh_obj_id"), pgh_id__lt=OuterRef("pgh_id"))
    previous_ids = dict(
        change_model.objects.filter(pk__in=[row.pgh_id for row in rows])
        .annotate(previous_id=Subquery(earlier.order_by("-pgh_id").values("pgh_id")[:1]))
        .values_list("pgh_id", "previous_id")
    )
    snapshots = {row.pgh_id: _snapshot(row) for row in change_model.objects.filter(pk__in=set(previous_ids.values()))}
    return {row_id: snapshots[previous_id] for row_id, previous_id in previous_ids.items() if previous_id in snapshots}


def _snapshot(row: models.Model) -> dict[str, Any]:
    """The tracked fields of a change row as JSON-ready values, keyed by field name."""
    return {
        f.name: _plain(getattr(row, f.attname))
        for f in row._meta.concrete_fields
        if not f.name.startswith("pgh_")
    }


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, FieldFile):  # an uploaded file is recorded by its stored name ("" for none)
        return value.name or ""
    return value
