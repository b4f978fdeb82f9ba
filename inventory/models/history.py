"""Master-data history (变更记录): one append-only row per change, written by the database itself.

django-pghistory installs PostgreSQL triggers on each tracked table; every INSERT, UPDATE or DELETE
— through the API, the admin, a management command or plain SQL — adds a snapshot row to the
table's `…Change` model, stamped with the request's context (who, which URL) by
`inventory.history.HistoryMiddleware`. The change tables refuse UPDATE and DELETE (pgtrigger
"protect" triggers) and the application's database role may only INSERT and SELECT them
(`manage.py grant_app_privileges`), so history is never purged.

Triggers are PostgreSQL's: on SQLite (the embedded demo default) the tables exist and stay empty,
and the history pages and endpoints say so (`history_is_recorded()`). Production runs PostgreSQL.

Each row is a snapshot of the row *after* the change (before it, for a delete); the "before" of a
change is the previous snapshot of the same object (inventory.selectors.history). Rows that existed
before tracking began get one `baseline` snapshot from the migration that introduced it, so their
first change still shows what it changed from.
"""
import pghistory
from django.db import models

from devices.models import Device
from inventory.models.alliance import AllianceAgreement, AllianceEntry
from inventory.models.catalog import PackagingUnit, Product, SupplyAgreement
from inventory.models.organisation import Department, Hospital, Location
from inventory.models.parties import Certificate, Manufacturer, Supplier
from inventory.models.people import User
from inventory.models.stock import ParLevel

CREATE, UPDATE, DELETE, BASELINE = "create", "update", "delete", "baseline"
ROLE_ADDED, ROLE_REMOVED = "role_added", "role_removed"


def _track(model: type[models.Model], *, exclude: tuple[str, ...] = ()) -> type[models.Model]:
    """The change model of `model`: snapshots on create, on any change of a tracked field, on delete."""
    return pghistory.create_event_model(
        model,
        pghistory.InsertEvent(CREATE, trigger_name="history_create"),
        pghistory.UpdateEvent(
            UPDATE, condition=pghistory.AnyChange(exclude=list(exclude)), trigger_name="history_update"
        ),
        pghistory.DeleteEvent(DELETE, trigger_name="history_delete"),
        pghistory.ManualEvent(BASELINE),
        exclude=list(exclude),
        model_name=f"{model.__name__}Change",
        app_label="inventory",
        obj_field=pghistory.ObjForeignKey(related_name="history"),
        append_only=True,
        abstract=False,
    )


HospitalChange = _track(Hospital)
DepartmentChange = _track(Department)
LocationChange = _track(Location)
SupplierChange = _track(Supplier)
ManufacturerChange = _track(Manufacturer)
CertificateChange = _track(Certificate)
ProductChange = _track(Product)
SupplyAgreementChange = _track(SupplyAgreement)
ParLevelChange = _track(ParLevel)
AllianceEntryChange = _track(AllianceEntry)
AllianceAgreementChange = _track(AllianceAgreement)
PackagingUnitChange = _track(PackagingUnit)
# A device reports `last_seen` with every heartbeat: that is telemetry, not a change of master data.
# The token hash changes when a token is issued; the hash itself is no business of the history.
DeviceChange = _track(Device, exclude=("last_seen", "token_hash", "mqtt_password_hash"))

# Roles are group memberships: one row in the user–group table per role held. Adding a role
# inserts a row, removing it deletes one; both are recorded with the user and the group.
UserRoleChange = pghistory.create_event_model(
    User.groups.through,
    pghistory.InsertEvent(ROLE_ADDED, trigger_name="history_role_added"),
    pghistory.DeleteEvent(ROLE_REMOVED, trigger_name="history_role_removed"),
    model_name="UserRoleChange",
    app_label="inventory",
    obj_field=None,
    append_only=True,
    abstract=False,
)

CHANGE_MODELS = (
    HospitalChange, DepartmentChange, LocationChange, SupplierChange, ManufacturerChange, CertificateChange,
    ProductChange, SupplyAgreementChange, ParLevelChange, DeviceChange, UserRoleChange,
    PackagingUnitChange, AllianceEntryChange, AllianceAgreementChange,
)
