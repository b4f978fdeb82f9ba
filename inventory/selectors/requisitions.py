"""Read paths of distribution: requisitions, par levels and suggestions a person may see, and the
warehouse's work queue (urgent first, then oldest first)."""
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Min, Q, QuerySet, Value, When

from inventory.models import ParLevel, ParLevelProposal, ReplenishmentSuggestion, Requisition, User
from inventory.selectors.scope import departments_of, visible_to

Status = Requisition.Status


def requisitions_visible_to(user: User) -> QuerySet:
    """A nurse's departments' requisitions; the whole hospital's for the hospital-wide roles."""
    queryset = visible_to(user, Requisition.objects.all())
    departments = departments_of(user)
    if departments is not None:
        queryset = queryset.filter(department_id__in=departments)
    return queryset.select_related("department", "location", "created_by")


def par_levels_visible_to(user: User) -> QuerySet:
    queryset = visible_to(user, ParLevel.objects.all(), "location__hospital")
    departments = departments_of(user)
    if departments is not None:
        queryset = queryset.filter(location__department_id__in=departments)
    return queryset.select_related("location", "product", "updated_by")


def suggestions_visible_to(user: User) -> QuerySet:
    return visible_to(user, ReplenishmentSuggestion.objects.all()).select_related("location", "product")


def proposals_visible_to(user: User) -> QuerySet:
    return visible_to(user, ParLevelProposal.objects.all()).select_related("par_level__location", "par_level__product")


def work_queue(queryset: QuerySet) -> QuerySet:
    """Requisitions the warehouse still has to act on, urgent first, then the oldest submission first."""
    return (
        queryset.filter(status__in=Requisition.OPEN_STATUSES)
        .annotate(urgent_first=Case(When(urgency=Requisition.Urgency.URGENT, then=Value(0)), default=Value(1),
                                    output_field=IntegerField()))
        .annotate(line_count=Count("lines"))
        .order_by("urgent_first", "submitted_at", "pk")
    )


@dataclass(frozen=True)
class QueueCounts:
    """The dashboard's distribution numbers."""

    open: int
    urgent: int
    awaiting_approval: int
    to_pick: int
    suggestions: int
    proposals: int
    oldest_submitted_at: object

    @property
    def any(self) -> bool:
        return bool(self.open or self.suggestions or self.proposals)


def queue_counts(user: User) -> QueueCounts:
    """Counts of the work queue in two queries (requisitions, then suggestions and proposals)."""
    counts = requisitions_visible_to(user).filter(status__in=Requisition.OPEN_STATUSES).aggregate(
        open=Count("pk"),
        urgent=Count("pk", filter=Q(urgency=Requisition.Urgency.URGENT)),
        awaiting_approval=Count("pk", filter=Q(status=Status.SUBMITTED)),
        to_pick=Count("pk", filter=Q(status__in=[Status.APPROVED, Status.PICKING])),
        oldest=Min("submitted_at"),
    )
    return QueueCounts(
        open=counts["open"], urgent=counts["urgent"], awaiting_approval=counts["awaiting_approval"],
        to_pick=counts["to_pick"],
        suggestions=suggestions_visible_to(user).filter(status=ReplenishmentSuggestion.Status.OPEN).count(),
        proposals=proposals_visible_to(user).filter(status=ParLevelProposal.Status.PENDING).count(),
        oldest_submitted_at=counts["oldest"],
    )
