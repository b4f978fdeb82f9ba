"""What a user may see of recalls and implant records: their hospital's; a nurse, the items of her
departments only (stock at their locations, uses ordered by them)."""
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from inventory.models import Recall, RecallItem, User
from inventory.selectors.scope import departments_of, visible_to
from inventory.services.recall import Progress, implant_uses, progress


def recalls_visible_to(user: User) -> QuerySet:
    return visible_to(user, Recall.objects.select_related("product", "hospital", "opened_by__hospital", "origin__hospital", "closed_by"))


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


def followed_in_members(recall: Recall) -> list[dict]:
    """Where `recall` was followed into other members of the alliance (stock of the item was
    transferred there; services.recall.follow_into_members), and on from them: per member, its
    recall's number and status, the stock it lists (items, quantity, how many handled, quantity per
    location) and how many uses on patients it lists and how many are followed up — counts only,
    never who the patients are: they belong to the member's books (its staff work them there)."""
    followed, frontier = [], [recall.pk]
    while frontier:
        found = list(Recall.objects.filter(origin_id__in=frontier).select_related("hospital").order_by("pk"))
        followed += found
        frontier = [other.pk for other in found]
    if not followed:
        return []
    counts = {row["recall_id"]: row for row in RecallItem.objects.filter(recall__in=followed).values("recall_id")
              .annotate(stock_items=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK)),
                        stock_quantity=Sum("quantity", filter=Q(kind=RecallItem.Kind.STOCK)),
                        handled=Count("pk", filter=Q(kind=RecallItem.Kind.STOCK)
                                      & ~Q(handling=RecallItem.Handling.PENDING)),
                        uses=Count("pk", filter=Q(kind=RecallItem.Kind.USED)),
                        followed_up=Count("pk", filter=Q(kind=RecallItem.Kind.USED)
                                          & ~Q(follow_up=RecallItem.FollowUp.PENDING)))}
    places: dict[int, list[dict]] = {}
    for row in (RecallItem.objects.filter(recall__in=followed, kind=RecallItem.Kind.STOCK)
                .values("recall_id", "location__name").annotate(quantity=Sum("quantity"))
                .order_by("recall_id", "location__name")):
        places.setdefault(row["recall_id"], []).append(
            {"location": row["location__name"] or "", "quantity": row["quantity"]})
    empty = {"stock_items": 0, "stock_quantity": 0, "handled": 0, "uses": 0, "followed_up": 0}
    return [
        {"recall": other.pk, "hospital": other.hospital.name, "status": other.status,
         **{key: (counts.get(other.pk, empty)[key] or 0) for key in empty}, "locations": places.get(other.pk, [])}
        for other in followed
    ]
