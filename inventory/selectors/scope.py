"""What a user may see: their own hospital's objects — and, for a nurse, her departments' part of
them. Everything else does not exist for them.

These are the only scoping rules: the web pages (`selectors.stock.StockScope`), the API viewsets and
serializer fields, and the services that check a department (use on a patient) all call them.
"""
from django.db.models import QuerySet

from inventory.alliance import ALLIANCE_KEEPERS, alliance_hospitals_for, holds_alliance_role, reads_across_members
from inventory.errors import Problem, Refusal
from inventory.models import Certificate, Manufacturer, Product, Role, Supplier, SupplyAgreement, User

# Roles that see their whole hospital; anyone else (nurses) sees their own departments only.
HOSPITAL_WIDE_ROLES = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.AUDITOR, Role.REVIEWER)


def sees_all_hospitals(user: User) -> bool:
    """Alliance administrators: superusers bound to no hospital."""
    return bool(user.is_superuser) and getattr(user, "hospital_id", None) is None


def visible_to(user: User, queryset: QuerySet, hospital_field: str = "hospital") -> QuerySet:
    """Restrict `queryset` to the user's hospital (`hospital_field` is the lookup path to it, e.g.
    "device__hospital", or "pk" for hospitals themselves); alliance administrators see all, alliance
    staff (inventory.alliance) every member of their alliance."""
    if (hospital_id := own_hospital_only(user)) is not None:
        return of_hospital(queryset, hospital_id, hospital_field)
    if sees_all_hospitals(user):
        return queryset
    if reads_across_members(user):
        return queryset.filter(**{f"{hospital_field}__in": alliance_hospitals_for(user)})
    return queryset.none()


def own_hospital_only(user: User) -> int | None:
    """The hospital `visible_to` restricts the user to when that is their own hospital alone (a
    hospital's staff); None for alliance administrators, alliance staff and users of no hospital."""
    if sees_all_hospitals(user) or reads_across_members(user):
        return None
    return getattr(user, "hospital_id", None)


def of_hospital(queryset: QuerySet, hospital_id: int, hospital_field: str = "hospital") -> QuerySet:
    """`queryset`'s objects of one hospital: what `visible_to` leaves a user of `own_hospital_only`."""
    return queryset.filter(**{hospital_field: hospital_id})


def departments_of(user: User) -> frozenset[int] | None:
    """The departments a person is limited to: None (the whole hospital) for the hospital-wide roles,
    else the departments they are assigned to — none at all means nothing, never everything."""
    if not user.is_authenticated:
        return frozenset()
    if user.has_role(*HOSPITAL_WIDE_ROLES) or reads_across_members(user):
        return None
    if (known := user.known_department_ids) is not None:
        return known
    return frozenset(user.departments.values_list("pk", flat=True))


# --- shared master data: suppliers, manufacturers, certificates ---------------------------------

# Alliance stewards (医共体主数据管理): alliance administrators, and these roles of the lead hospital (牵头医院).
STEWARD_ROLES = (Role.ADMIN, Role.SPD_OPERATOR)


def is_alliance_steward(user: User) -> bool:
    """Whether the user keeps the alliance's shared master data: an alliance administrator, an
    administrator or SPD operator of the lead hospital, or an alliance administrator or operator."""
    if sees_all_hospitals(user):
        return True
    hospital = getattr(user, "hospital", None)
    if hospital is not None and hospital.alliance and holds_alliance_role(user, *ALLIANCE_KEEPERS):
        return True
    return hospital is not None and hospital.is_lead and user.has_role(*STEWARD_ROLES)


def certificate_relied_on_elsewhere(certificate: Certificate, hospital_id: int | None) -> bool:
    """Whether another hospital's acceptance depends on this certificate: it registers one of that
    hospital's products, or licenses a supplier that hospital buys from (acceptance asks for any
    valid licence of the supplier, so even a new one counts)."""
    if certificate.supplier_id is not None and SupplyAgreement.objects.filter(
        supplier_id=certificate.supplier_id
    ).exclude(hospital_id=hospital_id).exists():
        return True
    return certificate.pk is not None and Product.objects.filter(registration_certificate_id=certificate.pk).exclude(
        hospital_id=hospital_id
    ).exists()


def shared_record_problem(user: User, record: Supplier | Manufacturer | Certificate) -> Problem | None:
    """Why `user` may not create, change or delete this shared record (None: they may).

    Stewards may. Anyone else only records their own hospital keeps (a new record is kept by the
    hospital creating it); and never a certificate another hospital's acceptance relies on — a member
    hospital cannot extend, or add, the licence that lets another hospital accept a delivery."""
    if is_alliance_steward(user):
        return None
    if record.pk is not None and (record.owner_hospital_id is None or record.owner_hospital_id != user.hospital_id):
        return Problem(Refusal.SHARED_RECORD_KEPT_ELSEWHERE, {"record": record})
    if isinstance(record, Certificate) and certificate_relied_on_elsewhere(record, user.hospital_id):
        return Problem(Refusal.CERTIFICATE_RELIED_ON_ELSEWHERE, {"record": record})
    return None
