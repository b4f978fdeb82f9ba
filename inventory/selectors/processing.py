"""Read paths of processing (加工): the FEFO proposal for a definition at a station, the packs a
person may see, a pack's lineage, and the set partners of a unit (for its trace page)."""
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q, QuerySet

from inventory.models import Consumption, Location, Pack, PackDefinition, PackMember, Unit, User
from inventory.selectors.fefo import FefoPick, propose_fefo
from inventory.selectors.scope import departments_of, visible_to


@dataclass(frozen=True)
class LineProposal:
    product: object
    requested: int
    is_optional: bool
    picks: list[FefoPick] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        return self.requested - sum(pick.quantity for pick in self.picks)


def fefo_proposals(definition: PackDefinition, station: Location) -> list[LineProposal]:
    """For each line of `definition`: what to take at `station`, first expiry first out
    (`inventory.selectors.fefo`, the same proposal as picking)."""
    proposals = []
    for line in definition.lines.select_related("product").order_by("pk"):
        proposal = propose_fefo(hospital=definition.hospital, location=station, product=line.product,
                                quantity=line.quantity)
        proposals.append(LineProposal(line.product, line.quantity, line.is_optional, proposal.picks))
    return proposals


def packs_visible_to(user: User) -> QuerySet:
    """The packs of the user's hospital; a nurse's, those now (or last) in her departments."""
    packs = visible_to(user, Pack.objects.all()).select_related("unit", "definition").prefetch_related(
        Prefetch("members", PackMember.objects.select_related("product", "unit", "consumption").order_by("pk"))
    )
    departments = departments_of(user)
    if departments is not None:
        packs = packs.filter(Q(unit__location__department__in=departments) | Q(
            members__consumption__department__in=departments)).distinct()
    return packs.order_by("-pk")


def set_partners(unit: Unit) -> list[PackMember]:
    """The other members of every set `unit` went into (an IOL's injector, a unit or a lot
    quantity): named on its trace."""
    packs = PackMember.objects.filter(unit=unit, pack__definition__kind=PackDefinition.Kind.SET).values("pack")
    return list(
        PackMember.objects.filter(pack__in=packs).exclude(unit=unit).select_related("product", "unit", "pack__unit")
        .order_by("pk")
    )


def set_partners_of_uses(uses: list[Consumption]) -> dict[int, list[PackMember]]:
    """For each use (consumption id) of a set's component — a unit that went into a set, or a lot
    quantity used from one — the set's other members, to name them where the use is listed."""
    by_unit = {use.unit_id: use.pk for use in uses if use.unit_id}
    by_own_use = {use.pk for use in uses if not use.unit_id}
    components = PackMember.objects.filter(pack__definition__kind=PackDefinition.Kind.SET).filter(
        Q(unit_id__in=by_unit) | Q(consumption_id__in=by_own_use))
    use_of_pack = defaultdict(set)  # pack id -> (use id, member id)
    for pack_id, member_id, unit_id, consumption_id in components.values_list("pack_id", "pk", "unit_id",
                                                                                "consumption_id"):
        use_of_pack[pack_id].add((by_unit[unit_id] if unit_id else consumption_id, member_id))
    partners = defaultdict(list)
    for member in PackMember.objects.filter(pack_id__in=use_of_pack).select_related("product", "unit").order_by("pk"):
        for use_id, member_id in sorted(use_of_pack[member.pack_id]):
            if member.pk != member_id:
                partners[use_id].append(member)
    return dict(partners)


def packs_of_member(unit: Unit) -> list[PackMember]:
    """Every pack `unit` went into, newest first (lineage from a member to its pack)."""
    return list(PackMember.objects.filter(unit=unit).select_related("pack__unit", "pack__definition").order_by("-pk"))
