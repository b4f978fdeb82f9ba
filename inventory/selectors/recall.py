"""What a user may see of recalls and implant records: their hospital's; a nurse, the items of her
departments only (stock at their locations, uses ordered by them)."""
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from inventory.models import Recall, RecallItem, User
from inventory.selectors.scope import departments_of, visible_to
from inventory.services.recall import Progress, implant_uses, progress


def recalls_visible_to(user: User) -> QuerySet:
    return visible_to(user, Recall.objects.select_related("product", "hospital", "opened_by", "closed_by"))


def recall_items_visible_to(user: User, recall: Recall) -> QuerySet:
    items = (recall.items.select_related("unit", "location", "consumption__department", "handled_by")
             .order_by("kind", "pk"))
    departments = departments_of(user)
    if departments is not None:
        items = items.filter(Q(location__department__in=departments) | Q(consumption__department__in=departments))
    return items


@dataclass(frozen=True)
class RecallListing:
    progress: Progress
    stock_items: list[RecallItem]  # every affected unit and lot balance with where it is now
    used_items: list[RecallItem]  # every use on a patient: encounter, surgery, doctor, department, date


def recall_listing(user: User, recall: Recall) -> RecallListing:
    """What the recall page lists for `user`: the progress and every affected item they may see, read
    in two queries (the items with their unit, location and use joined). The benchmark's "a recall
    listed" (bench/review.py) is this, after `open_recall` and `services.recall.refresh`."""
    items = list(recall_items_visible_to(user, recall))
    return RecallListing(
        progress=progress(recall),
        stock_items=[item for item in items if item.kind == RecallItem.Kind.STOCK],
        used_items=[item for item in items if item.kind == RecallItem.Kind.USED],
    )


def implant_uses_visible_to(user: User, encounter: str = "") -> QuerySet:
    if getattr(user, "hospital", None) is None:
        from inventory.models import Consumption
        return Consumption.objects.none()
    uses = implant_uses(user.hospital)
    if encounter:
        uses = uses.filter(encounter=encounter)
    departments = departments_of(user)
    if departments is not None:
        uses = uses.filter(department__in=departments)
    return uses
