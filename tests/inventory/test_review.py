"""Consumable review (耗材点评): figures against hand-computed totals on a generated dataset, the
anomaly rule on a planted spike, 耗占比 from a revenue import (docs/review.md)."""
import datetime
import random
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.errors import Refused
from inventory.models import Alert, ClinicalTeam, Consumption, DepartmentRevenue, RatioRedLine, WatchedItem
from inventory.selectors.review import Period, consumable_ratio, percentile, review, surgery_costs
from inventory.services import review as review_service
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def at(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


@pytest.fixture
def world(hospital, warehouse, supplier):
    cardio = factories.DepartmentFactory(hospital=hospital, code="CARD", name="心内科")
    ortho = factories.DepartmentFactory(hospital=hospital, code="ORTH", name="骨科")
    stent = factories.ProductFactory(hospital=hospital, name="支架", category="血管介入", is_high_value=True)
    gauze = factories.ProductFactory(hospital=hospital, name="纱布", category="敷料", is_high_value=False)
    return {"hospital": hospital, "cardio": cardio, "ortho": ortho, "stent": stent, "gauze": gauze,
            "location": warehouse}


def use(world, *, product, department, when, price, quantity=1, doctor="D1", surgery_id="", surgery_name="",
        refunded=False, team=None):
    return Consumption.objects.create(
        hospital=world["hospital"], product=product, quantity=quantity, location=world["location"],
        encounter="E1", surgery_id=surgery_id, surgery_name=surgery_name, doctor=doctor, department=department,
        unit_price=Decimal(price), occurred_at=at(when), refunded_at=at(when, 12) if refunded else None,
        clinical_team=team,
    )


def test_review_by_each_dimension_matches_hand_computed_totals_with_growth(world):
    rng = random.Random(17)
    period = Period(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31))
    windows = {"now": period, "before": period.previous(), "year": period.year_before()}
    expected: dict[tuple[str, object], dict[str, Decimal]] = {}
    for _ in range(120):
        which = rng.choice(list(windows))
        window = windows[which]
        day = window.start + datetime.timedelta(days=rng.randrange(window.days))
        product = rng.choice([world["stent"], world["gauze"]])
        department = rng.choice([world["cardio"], world["ortho"]])
        doctor, quantity, price = rng.choice(["D1", "D2", "D3"]), rng.randint(1, 3), Decimal(rng.randint(1, 900))
        refunded = rng.random() < 0.1
        use(world, product=product, department=department, when=day, price=price, quantity=quantity, doctor=doctor,
            refunded=refunded)
        if refunded:
            continue
        for key in (("department", department.pk), ("doctor", doctor), ("product", product.pk),
                    ("product_class", product.category)):
            cell = expected.setdefault(key, {"now": Decimal(0), "before": Decimal(0), "year": Decimal(0),
                                             "hv_now": Decimal(0)})
            cell[which] += price * quantity
            if which == "now" and product.is_high_value:
                cell["hv_now"] += price * quantity
    # a use just outside every window counts nowhere
    use(world, product=world["stent"], department=world["cardio"], when=datetime.date(2026, 4, 1), price="99999")

    for dimension in ("department", "doctor", "product", "product_class"):
        rows = {row.key: row for row in review(hospital=world["hospital"], dimension=dimension, period=period)}
        wanted = {key: cell for (dim, key), cell in expected.items() if dim == dimension}
        assert set(rows) == set(wanted)
        for key, cell in wanted.items():
            row = rows[key]
            assert (row.amount, row.previous_amount, row.year_ago_amount) == (cell["now"], cell["before"], cell["year"])
            if cell["before"]:
                assert row.period_growth == ((cell["now"] - cell["before"]) / cell["before"] * 100).quantize(
                    Decimal("0.1"))
        high = {row.key: row.amount for row in review(hospital=world["hospital"], dimension=dimension, period=period,
                                                          high_value_only=True)}
        assert {k: v for k, v in high.items() if v} == {k: c["hv_now"] for (d, k), c in expected.items()
                                                        if d == dimension and c["hv_now"]}


def test_review_by_clinical_team_has_hand_computed_totals_and_uses_without_a_team_are_not_grouped(world):
    hospital, cardio, ortho, stent = world["hospital"], world["cardio"], world["ortho"], world["stent"]
    heart = ClinicalTeam.objects.create(hospital=hospital, department=cardio, code="C1", name="心内一组")
    bones = ClinicalTeam.objects.create(hospital=hospital, department=ortho, code="O1", name="骨科一组")
    period = Period(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31))  # before: 2026-01-29 … 02-28
    for when, price, quantity, team, refunded in [
        (datetime.date(2026, 3, 2), "100.00", 2, heart, False),   # 心内一组 now 200
        (datetime.date(2026, 3, 30), "50.00", 1, heart, False),   # 心内一组 now 50 → 250
        (datetime.date(2026, 3, 15), "300.00", 1, bones, False),  # 骨科一组 now 300
        (datetime.date(2026, 3, 9), "20.00", 3, None, False),     # 未分组 now 60
        (datetime.date(2026, 3, 9), "40.00", 1, None, True),      # refunded: nowhere
        (datetime.date(2026, 2, 10), "125.00", 1, heart, False),  # 心内一组 before 125
        (datetime.date(2025, 3, 15), "30.00", 1, None, False),    # 未分组 a year ago 30
    ]:
        use(world, product=stent, department=heart.department if team else cardio, when=when, price=price,
            quantity=quantity, team=team, refunded=refunded)
    rows = review(hospital=hospital, dimension="clinical_team", period=period)
    assert [(row.label, row.amount, row.uses, row.quantity, row.previous_amount, row.year_ago_amount)
            for row in rows] == [
        ("骨科一组", Decimal("300.00"), 1, 1, Decimal("0.00"), Decimal("0.00")),
        ("心内一组", Decimal("250.00"), 2, 3, Decimal("125.00"), Decimal("0.00")),
        ("未分组", Decimal("60.00"), 1, 3, Decimal("0.00"), Decimal("30.00")),
    ]
    assert [(row.period_growth, row.year_growth) for row in rows] == [
        (None, None), (Decimal("100.0"), None), (None, Decimal("100.0"))]
    assert sum(row.amount for row in rows) == Decimal("610.00")  # every live use of March, each once


def test_per_surgery_cost_distribution_per_doctor_and_outlier(world):
    day = datetime.date(2026, 3, 10)
    costs = {"D1": [100, 120, 140, 160, 2000], "D2": [110, 130]}
    n = 0
    for doctor, values in costs.items():
        for value in values:
            n += 1
            # each surgery uses two consumptions that add up to its cost
            use(world, product=world["stent"], department=world["cardio"], when=day, price=value - 10, doctor=doctor,
                surgery_id=f"S{n}", surgery_name="PCI")
            use(world, product=world["gauze"], department=world["cardio"], when=day, price=10, doctor=doctor,
                surgery_id=f"S{n}", surgery_name="PCI")
    use(world, product=world["stent"], department=world["ortho"], when=day, price=500, surgery_id="S99",
        surgery_name="关节置换")
    procedures = {p.procedure: p for p in surgery_costs(hospital=world["hospital"], period=Period(day, day))}
    pci = procedures["PCI"]
    assert pci.count == 7 and procedures["关节置换"].count == 1
    d1 = next(d for d in pci.doctors if d.doctor == "D1")
    # D1: 100 120 140 160 2000 → median 140; p90 at rank 3.6 = 160 + 0.6 × 1840 = 1264
    assert (d1.count, d1.median, d1.p90) == (5, Decimal("140.00"), Decimal("1264.00"))
    d2 = next(d for d in pci.doctors if d.doctor == "D2")
    assert (d2.count, d2.median, d2.p90) == (2, Decimal("120.00"), Decimal("128.00"))
    # all 7: 100 110 120 130 140 160 2000 → Q1 115, Q3 150, fence 150 + 1.5 × 35 = 202.5
    assert pci.fence == Decimal("202.50")
    assert [s.cost for s in pci.surgeries if s.outlier] == [Decimal("2000")] and d1.outliers == 1
    assert percentile([Decimal(1)], 0.9) == Decimal("1.00")


def test_a_planted_spike_on_a_watched_item_raises_one_alert_and_resolves_when_gone(world, hospital):
    WatchedItem.objects.create(hospital=hospital, product=world["stent"])
    history = [4, 5, 6, 5, 4, 6]  # Sept 2026 … Feb 2027: median 5, MAD 1
    for index, count in enumerate(history):
        month = datetime.date(2026, 9 + index, 1) if index < 4 else datetime.date(2027, index - 3, 1)
        use(world, product=world["stent"], department=world["cardio"], when=month, price="100", quantity=count,
            doctor="D7")
        use(world, product=world["gauze"], department=world["cardio"], when=month, price="1", quantity=count)
    march = datetime.date(2027, 3, 5)
    use(world, product=world["stent"], department=world["cardio"], when=march, price="100", quantity=8, doctor="D7")
    use(world, product=world["gauze"], department=world["cardio"], when=march, price="1", quantity=500)  # not watched
    now = at(datetime.date(2027, 4, 2))
    # 8 = 5 + 3 × 1: not above the threshold
    assert review_service.scan_use_anomalies(hospital=hospital, now=now).raised == 0
    use(world, product=world["stent"], department=world["ortho"], when=march, price="100", quantity=1, doctor="D8")
    use(world, product=world["stent"], department=world["cardio"], when=march, price="100", quantity=1, doctor="D7")
    result = review_service.scan_use_anomalies(hospital=hospital, now=now)
    # cardio 9 > 8 and doctor D7 9 > 8; ortho 1 > 0 + 3 × max(0, 1) is false
    alerts = Alert.objects.filter(hospital=hospital, kind=Alert.Kind.USE_ANOMALY, status="OPEN")
    assert result.raised == 2 and {a.details["by"] for a in alerts} == {"department", "doctor"}
    assert all(a.product_id == world["stent"].pk and a.details["quantity"] == 9 for a in alerts)
    assert review_service.scan_use_anomalies(hospital=hospital, now=now).updated == 2  # idempotent
    Consumption.objects.filter(quantity=1, occurred_at__gte=at(march, 0), department=world["cardio"],
                               product=world["stent"]).update(refunded_at=now)
    assert review_service.scan_use_anomalies(hospital=hospital, now=now).resolved == 2


def test_revenue_import_gives_the_ratio_and_red_line_alerts(world, hospital):
    march = datetime.date(2026, 3, 1)
    use(world, product=world["stent"], department=world["cardio"], when=datetime.date(2026, 3, 3), price="3000")
    use(world, product=world["gauze"], department=world["cardio"], when=datetime.date(2026, 3, 30), price="500",
        quantity=2)
    use(world, product=world["gauze"], department=world["ortho"], when=datetime.date(2026, 3, 9), price="200")
    RatioRedLine.objects.create(hospital=hospital, department=world["cardio"], max_percent=Decimal("25"))
    RatioRedLine.objects.create(hospital=hospital, department=world["ortho"], max_percent=Decimal("25"))
    csv_file = "科室编码,月份,医疗收入\nCARD,2026-03,\"16,000.00\"\nORTH,2026/03,10000\n".encode("gb18030")
    report = review_service.import_revenue_file(hospital=hospital, uploaded=csv_file, filename="rev.csv")
    assert (report.rows, report.created) == (2, 2)
    rows = {r.department_id: r for r in consumable_ratio(hospital=hospital, first_month=march, last_month=march)}
    # cardio 4000 / 16000 = 25 % (not above 25); ortho 200 / 10000 = 2 %
    assert rows[world["cardio"].pk].percent == Decimal("25.00") and not rows[world["cardio"].pk].over_red_line
    assert rows[world["ortho"].pk].per_100 == Decimal("2.00")
    # the HIS corrects cardio's revenue (JSON): 4000 / 12500 = 32 % > 25 → alert for March
    json_file = b'[{"department": "CARD", "month": "2026-03", "revenue": "12500"}]'
    review_service.import_revenue(hospital=hospital, rows=review_service.parse_revenue_file(
        __import__("io").BytesIO(json_file), "rev.json"))
    assert DepartmentRevenue.objects.get(department=world["cardio"]).revenue == Decimal("12500.00")
    result = review_service.scan_red_lines(hospital=hospital, month=march)
    alert = Alert.objects.get(kind=Alert.Kind.RATIO_RED_LINE, status="OPEN")
    assert result.raised == 1 and alert.details["percent"] == "32.00" and alert.details["department_id"] == \
        world["cardio"].pk


def test_the_review_scan_job_runs_for_every_hospital(world, hospital):
    from inventory.jobs import run_job

    summary = run_job("review_scan")
    assert summary["use_anomaly"]["hospitals"] >= 1 and summary["red_line"]["raised"] == 0


def test_a_bad_revenue_row_changes_nothing_and_names_row_and_field(world, hospital):
    bad = b"department,month,revenue\nCARD,2026-03,100\nNOPE,2026-13,-5\n"
    with pytest.raises(Refused) as refused:
        review_service.import_revenue_file(hospital=hospital, uploaded=bad, filename="r.csv")
    assert {p.params["field"] for p in refused.value.problems} == {"department", "month", "revenue"}
    assert all(p.params["row"] == 3 for p in refused.value.problems)
    assert not DepartmentRevenue.objects.exists()
    with pytest.raises(Refused):
        review_service.import_revenue_file(hospital=hospital, uploaded=b"a,b\n1,2\n", filename="r.csv")


def test_the_review_page_shows_the_chart_table_and_exports(world, hospital, client):
    user = _auditor(hospital)
    today = timezone.localdate()
    use(world, product=world["stent"], department=world["cardio"], when=today, price="1234", surgery_id="S1",
        surgery_name="PCI")
    client.force_login(user)
    page = client.get("/review/", {"dimension": "department"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "心内科" in text and 'data-chart="review"' in text and 'data-chart="strip"' in text and "PCI" in text
    exported = client.get("/review/", {"dimension": "department", "export": "csv"})
    body = b"".join(exported.streaming_content).decode("utf-8-sig")
    assert "心内科" in body and "1234" in body
    xlsx = client.get("/review/", {"dimension": "product", "export": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    nurse = _user(hospital, "nurse")
    client.force_login(nurse)
    assert client.get("/review/").status_code in (302, 403)


def _user(hospital, role):
    return factories.UserFactory(hospital=hospital, roles=[role])


def _auditor(hospital):
    return _user(hospital, "auditor")


def test_review_api_reads_and_imports_revenue(world, hospital):
    operator = _user(hospital, "spd_operator")
    api = api_client_for(operator)
    use(world, product=world["stent"], department=world["cardio"], when=datetime.date(2026, 3, 3), price="300")
    answer = api.get("/api/v1/review/", {"dimension": "department", "start": "2026-03-01", "end": "2026-03-31"})
    assert answer.status_code == 200 and answer.json()["rows"][0]["amount"] == "300.00"
    assert api.get("/api/v1/review/", {"dimension": "nope"}).status_code == 400
    assert api.get("/api/v1/review/", {"start": "2026-03-05", "end": "2026-03-01"}).status_code == 400
    imported = api.post("/api/v1/review/revenue/", {"rows": [{"department": "CARD", "month": "2026-03",
                                                              "revenue": "1000"}]}, format="json")
    assert imported.status_code == 200 and imported.json()["created"] == 1
    ratio = api.get("/api/v1/review/ratio/", {"first_month": "2026-03-01", "last_month": "2026-03-01"}).json()
    assert ratio[0]["percent"] == "30.00"
    bad = api.post("/api/v1/review/revenue/", {"rows": [{"department": "X", "month": "2026-03", "revenue": "1"}]},
                   format="json")
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "department"
    watched = api.post("/api/v1/review/watched-items/", {"product": world["stent"].pk}, format="json")
    assert watched.status_code == 201
    assert api.post("/api/v1/review/watched-items/", {"product": world["stent"].pk}, format="json").status_code == 400
    assert api_client_for(_auditor(hospital)).post(
        "/api/v1/review/watched-items/", {"product": world["gauze"].pk}, format="json").status_code == 403
