"""What the demo's ward does between simulated cabinet sessions, so that stock keeps moving and
charges keep reaching the fake HIS without anyone at the keyboard (`manage.py run_demo`).

`ward_round` uses, on an encounter of the day, the units nurses took from the demo cabinet (through
`consume_unit`, as a nurse at the bedside would: the charge is queued for the HIS relay), and has
the keeper refill the cabinet with tagged units from the central warehouse when it runs low.
Both go through the services; nothing here is a business rule.
"""
import datetime
import random
from dataclasses import asdict, dataclass

from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Location, Owner, Unit, UnitStatus, User
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.labelling import bind_tag
from inventory.services.stock import transfer_stock

REFILL_BELOW = 3
REFILL_TO = 8
CATH_CATEGORIES = ("冠脉药物洗脱支架", "PTCA球囊扩张导管", "PTCA导引导丝")


@dataclass
class WardReport:
    used: int = 0
    refilled: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def ward_round(*, hospital_code: str, cabinet_code: str, nurse: str = "nurse", keeper: str = "keeper",
               now: datetime.datetime | None = None, rng: random.Random | None = None) -> WardReport:
    """Use the units taken from the cabinet (its location code) and refill it if low."""
    now, rng = now or timezone.now(), rng or random.Random()
    cabinet = Location.objects.select_related("department", "hospital").get(
        hospital__code=hospital_code, code=cabinet_code
    )
    report = WardReport()
    nurse_actor = Actor(user=User.objects.get(username=nurse))
    for unit in Unit.objects.filter(location=cabinet, status=UnitStatus.TAKEN).order_by("pk"):
        context = ClinicalContext(
            encounter=f"ZY{timezone.localtime(now):%Y%m%d}{rng.randrange(1000, 10000)}", department=cabinet.department,
            surgery_id=f"SS{timezone.localtime(now):%Y%m%d}{rng.randrange(100, 1000)}", surgery_name="PCI",
            doctor=rng.choice(("D1021", "D1034", "D2007")), occurred_at=now,
        )
        consume_unit(actor=nurse_actor, hospital=cabinet.hospital, unit=unit, context=context,
                     idempotency_key=f"demo-ward-use-{unit.pk}-{unit.status_since:%Y%m%d%H%M%S%f}")
        report.used += 1
    inside = Unit.objects.filter(location=cabinet, status__in=(UnitStatus.IN_CABINET, UnitStatus.TAKEN)).count()
    if inside < REFILL_BELOW:
        keeper_actor = Actor(user=User.objects.get(username=keeper))
        units = list(
            Unit.objects.filter(
                hospital=cabinet.hospital, owner=Owner.HOSPITAL, status=UnitStatus.IN_STOCK,
                location__kind=Location.Kind.CENTRAL_WAREHOUSE, product__category__in=CATH_CATEGORIES,
                expiry__gt=timezone.localdate(now),
            ).order_by("pk")[:REFILL_TO - inside]
        )
        for unit in units:
            if not unit.epc:
                bind_tag(unit=unit, epc=f"E280{unit.pk:020X}", actor=keeper_actor)
        if units:
            transfer_stock(actor=keeper_actor, hospital=cabinet.hospital, to_location=cabinet, units=units,
                           idempotency_key=f"demo-ward-refill-{cabinet.pk}-{units[0].pk}")
            report.refilled = len(units)
    return report
