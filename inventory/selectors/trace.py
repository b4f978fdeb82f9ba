"""A unit's trace as the trace page shows it: `selectors.units.unit_trace` plus the documents its
movements point at — the cabinet session of a take or return, and the use on a patient with its
charges and their HIS deliveries — read in a few queries, not one per event.
"""
from dataclasses import dataclass, field

from inventory.models import CabinetSession, Charge, Consumption, Movement, Unit
from inventory.selectors.units import TraceEvent, unit_trace


@dataclass(frozen=True)
class TimelineEntry:
    event: TraceEvent
    session: CabinetSession | None = None
    consumption: Consumption | None = None
    charges: list[Charge] = field(default_factory=list)  # the use's charge and refund, with `.delivery`


@dataclass(frozen=True)
class Timeline:
    unit: Unit
    origin: TraceEvent
    entries: list[TimelineEntry]


def unit_timeline(unit: Unit) -> Timeline:
    """Where the unit came from (`origin`), then every event oldest first, with its documents."""
    events = unit_trace(unit)
    origin, rest = events[0], events[1:]
    document_ids = {Movement.DocumentType.CABINET_SESSION: set(), Movement.DocumentType.CONSUMPTION: set()}
    for event in rest:
        if (ids := document_ids.get(event.details.get("document_type"))) is not None:
            ids.add(event.details["document_id"])
    sessions = CabinetSession.objects.select_related("cabinet", "user", "device").in_bulk(
        document_ids[Movement.DocumentType.CABINET_SESSION]
    )
    consumptions = Consumption.objects.select_related("department", "location", "recorded_by").in_bulk(
        document_ids[Movement.DocumentType.CONSUMPTION]
    )
    charges: dict[int, list[Charge]] = {}
    for charge in Charge.objects.filter(consumption__in=consumptions.keys()).select_related("delivery").order_by(
        "created_at", "pk"
    ):
        charges.setdefault(charge.consumption_id, []).append(charge)
    entries = []
    for event in rest:
        kind, document = event.details.get("document_type"), event.details.get("document_id")
        entries.append(TimelineEntry(
            event,
            session=sessions.get(document) if kind == Movement.DocumentType.CABINET_SESSION else None,
            consumption=consumptions.get(document) if kind == Movement.DocumentType.CONSUMPTION else None,
            charges=charges.get(document, []) if kind == Movement.DocumentType.CONSUMPTION else [],
        ))
    unit = Unit.objects.select_related("product", "location", "supplier", "hospital").get(pk=unit.pk)
    return Timeline(unit, origin, entries)
