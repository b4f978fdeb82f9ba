"""Read paths of processing (加工): the FEFO proposal for a definition at a station, the packs a
person may see, a pack's lineage, and the set partners of a unit (for its trace page)."""
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q, QuerySet

from inventory.models import Location, Pack, PackDefinition, PackMember, Unit, User
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
    """The other members of every set `unit` went into (an IOL's injector): named on its trace."""
    packs = PackMember.objects.filter(unit=unit, pack__definition__kind=PackDefinition.Kind.SET).values("pack")
    return list(
        PackMember.objects.filter(pack__in=packs).exclude(unit=unit).select_related("product", "unit", "pack__unit")
        .order_by("pk")
    )


def packs_of_member(unit: Unit) -> list[PackMember]:
    """Every pack `unit` went into, newest first (lineage from a member to its pack)."""
    return list(PackMember.objects.filter(unit=unit).select_related("pack__unit", "pack__definition").order_by("-pk"))
