"""VBP (带量采购) contracts: a 2-year contract of an alliance of two hospitals over synthetic use in the
ledger — progress per hospital and for the alliance, the lag, substitute and renewal alerts opened and
resolved as the use and the period move, extensions as dated records."""
import datetime
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Alert, Movement, VbpAllocation, VbpContract
from inventory.services.vbp import contract_progress, extend_contract, scan_vbp
from tests import factories
from tests.factories import TODAY

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
_keys = itertools.count()


def use(product, quantity, *, days_ago=1, kind=Movement.Kind.CONSUME, actor):
    """Synthetic use: a consumption (or refund) of a lot in the ledger, as the bedside records it."""
    Movement.objects.create(
        hospital=product.hospital, kind=kind, product=product, lot="VBP-LOT", quantity=quantity, actor_user=actor,
        occurred_at=timezone.now() - datetime.timedelta(days=days_ago), reason_code="REFUND" if kind == "UNCONSUME" else "",
        document_type=Movement.DocumentType.CONSUMPTION, document_id=1, idempotency_key=f"vbp-use-{next(_keys)}",
    )


@pytest.fixture
def alliance(hospital, other_hospital, keeper):
    stent_a = factories.ProductFactory(hospital=hospital, tracking="LOT", name="集采冠脉支架")
    stent_b = factories.ProductFactory(hospital=other_hospital, tracking="LOT", name="集采冠脉支架")
    substitute = factories.ProductFactory(hospital=hospital, tracking="LOT", name="非集采进口支架")
    contract = VbpContract.objects.create(
        number="VBP-2025-GM-01", name="冠脉支架省联盟集采", owner_hospital=hospital, ratio=Decimal("0.700"),
        start_date=TODAY - datetime.timedelta(days=365), period=VbpContract.Period.TWO_YEARS,
    )
    contract.products.set([stent_a, stent_b])
    contract.substitutes.set([substitute])
    VbpAllocation.objects.create(contract=contract, hospital=hospital, reported_demand=1000)
    VbpAllocation.objects.create(contract=contract, hospital=other_hospital, reported_demand=500)
    other_keeper = factories.UserFactory(hospital=other_hospital)
    return contract, stent_a, stent_b, substitute, keeper, other_keeper


def test_progress_per_hospital_and_for_the_alliance(alliance):
    contract, stent_a, stent_b, _, keeper, other_keeper = alliance
    use(stent_a, 230, actor=keeper)
    use(stent_a, 30, kind=Movement.Kind.UNCONSUME, actor=keeper)  # refunded: not used
    use(stent_b, 200, actor=other_keeper)
    use(stent_a, 999, days_ago=400, actor=keeper)  # before the execution date: not counted

    first, second, total = contract_progress(contract, today=TODAY)

    assert contract.end_date() == TODAY + datetime.timedelta(days=364)  # two years less a day
    assert (first.agreed, first.used, first.used_pct) == (700, 200, Decimal("28.6"))
    assert (second.agreed, second.used, second.used_pct) == (350, 200, Decimal("57.1"))
    assert (total.hospital, total.agreed, total.used) == (None, 1050, 400)
    assert first.elapsed_pct == Decimal("50.1")
    assert first.is_lagging and not second.is_lagging


def test_alerts_follow_the_use_and_the_period(alliance, hospital, other_hospital):
    contract, stent_a, stent_b, substitute, keeper, other_keeper = alliance
    use(stent_a, 200, actor=keeper)
    use(stent_b, 200, actor=other_keeper)
    use(substitute, 3, actor=keeper)

    scan_vbp(today=TODAY)

    lagging = Alert.objects.get(kind=Alert.Kind.VBP_LAGGING)
    assert (lagging.hospital, lagging.details["used"], lagging.details["agreed"]) == (hospital, 200, 700)
    substituted = Alert.objects.get(kind=Alert.Kind.VBP_SUBSTITUTE_USED)
    assert (substituted.hospital, substituted.product, substituted.details["quantity"]) == (hospital, substitute, 3)
    assert not Alert.objects.filter(kind=Alert.Kind.VBP_RENEWAL).exists()

    # Use catches up: the lag alert resolves by itself on the next scan.
    use(stent_a, 150, actor=keeper)
    scan_vbp(today=TODAY)
    lagging.refresh_from_db()
    assert lagging.status == Alert.Status.RESOLVED

    # 60 days before the end: renewal alerts for both hospitals; an extension (顺延) clears them.
    near_end = contract.end_date() - datetime.timedelta(days=60)
    scan_vbp(today=near_end)
    renewals = Alert.objects.filter(kind=Alert.Kind.VBP_RENEWAL).exclude(status=Alert.Status.RESOLVED)
    assert {alert.hospital for alert in renewals} == {hospital, other_hospital}
    extension = extend_contract(actor=Actor(user=keeper), contract=contract, reason="新一轮集采未落地，原合同顺延",
                                new_end_date=contract.end_date() + datetime.timedelta(days=180))
    assert contract.end_date() == extension.new_end_date
    scan_vbp(today=near_end)
    assert not Alert.objects.filter(kind=Alert.Kind.VBP_RENEWAL).exclude(status=Alert.Status.RESOLVED).exists()


def test_an_extension_must_be_later_and_give_a_reason(alliance):
    contract, *_, keeper, _ = alliance
    with pytest.raises(Refused) as earlier:
        extend_contract(actor=Actor(user=keeper), contract=contract, new_end_date=contract.end_date(), reason="x")
    assert earlier.value.code == "VBP_EXTENSION_NOT_LATER"
    with pytest.raises(Refused):
        extend_contract(actor=Actor(user=keeper), contract=contract, reason=" ",
                        new_end_date=contract.end_date() + datetime.timedelta(days=1))
    assert not contract.extensions.exists()


def test_api_and_page_show_the_callers_hospital_and_the_alliance(alliance, operator, hospital):
    from tests.conftest import api_client_for
    from tests.web.test_operations_pages import client_for, text

    contract, stent_a, _, _, keeper, _ = alliance
    use(stent_a, 100, actor=keeper)
    client = api_client_for(operator)

    [listed] = client.get("/api/v1/vbp-contracts/").json()["results"]
    assert [(row["hospital"], row["agreed"], row["used"]) for row in listed["progress"]] == [
        (hospital.pk, 700, 100), (None, 1050, 100)
    ]
    extended = client.post(f"/api/v1/vbp-contracts/{contract.pk}/extend/", {
        "new_end_date": str(contract.end_date() + datetime.timedelta(days=90)), "reason": "顺延三个月",
    }, format="json")
    assert extended.status_code == 200 and extended.json()["end_date"] == str(
        TODAY + datetime.timedelta(days=364 + 90)
    )
    assert api_client_for(keeper).post(f"/api/v1/vbp-contracts/{contract.pk}/extend/", {}).status_code == 403
    outsider = factories.UserFactory(hospital=factories.HospitalFactory(), roles=["spd_operator"])
    assert api_client_for(outsider).get(f"/api/v1/vbp-contracts/{contract.pk}/").status_code == 404

    page = text(client_for(keeper).get("/purchasing/vbp/"))
    assert "VBP-2025-GM-01" in page and "data-lagging" in page
