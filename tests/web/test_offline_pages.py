"""Every page people open — the UI, the API docs, the admin — works with no internet: in headless
Chromium, any request that would leave the server fails the test (a hospital network is often
closed, and a CDN would also learn who reads what)."""
import datetime
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from devices.models import RejectedMessage
from inventory.actors import Actor
from inventory.models import BackgroundJob, ClinicalTeam, DeliveryNote, ReconciliationRun, StockOrder
from inventory.services.purchasing import OrderLineInput, create_plan, create_purchase_order
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.requisitions import RequestedLine, create_requisition
from inventory.services.stocktake import start_count
from tests.web.conftest import login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Named routes that are not pages: form posts, JSON endpoints of the scan fields, downloads.
NOT_PAGES = {
    "web:logout", "web:alert-acknowledge", "web:alert-resolve", "web:receiving-draft", "web:receiving-draft-scan",
    "web:receiving-draft-lot", "web:receiving-draft-remove", "web:receiving-draft-discard", "web:receiving-note-scan",
    "web:receiving-accept", "web:bedside-scan", "web:bedside-lot", "web:bedside-pack", "web:bedside-refund", "web:moves-scan",
    "web:reconciliation-start", "web:reconciliation-rerun", "web:reconciliation-report", "web:product-suggestions",
    "web:scan", "web:receiving-find", "web:receiving-draft-quantity", "web:receiving-record", "web:moves-order-pdf",
    "web:job-status", "web:job-download", "web:reconciliation-reports-status", "web:reconciliation-findings-export",
    "web:reconciliation-finding-disposition", "web:stock-export",
    "web:requisition-new", "web:requisition-add-line", "web:requisition-remove-line", "web:requisition-cancel-line",
    "web:requisition-action", "web:replenishment-recompute", "web:replenishment-requisition", "web:suggestion-dismiss",
    "web:proposal-decide", "web:par-level-delete",
    "web:pick-list-scan", "web:pick-list-dispatch", "web:pick-list-cancel", "web:pick-list-pdf", "web:delivery-scan",
    "web:delivery-pdf", "web:processing-pack-label",
    "web:processing-pack-break", "web:period-report",
    "web:stocktake-start", "web:stocktake-scan", "web:stocktake-lot", "web:stocktake-line", "web:stocktake-action",
    "web:stocktake-sheet", "web:stocktake-report",
    "web:purchase-order-close", "web:purchase-plan-order",
    "web:recall-export", "web:implant-export", "web:review-export",
    "web:complaint-decide", "web:suspension-lift", "web:allocation-statement-file",
    # The supplier portal: pages for a supplier's user (not the operator who tours the rest), checked
    # offline in tests/web/test_portal_browser.py; and its form posts.
    "web:portal", "web:portal-order", "web:portal-notice", "web:portal-notice-remove", "web:portal-notice-submit",
    "web:portal-statement", "web:portal-statement-answer", "web:portal-statement-download",
    "web:evaluation-report", "web:portal-evaluations",
}


# ReDoc's page is ready in three steps, each waited for on its own: its script (1.1 MB, served by the
# app) loaded and run, then the schema it fetches (generated anew on each request), then the whole
# document rendered from it in the browser — the slow step, JavaScript on one CPU. Measured in this
# test's browser at load average 12 on 2 CPUs (4 loads): the page and script 0.4–0.7 s (within the
# default 15 s), the schema 3.5–6.7 s after it, the heading 20.6–25.6 s after the schema — 25–32 s
# in all, hence the old single 30 s wait timing out. Each wait allows about 5–9 times its worst.
SCHEMA_TIMEOUT_MS = 60_000
RENDER_TIMEOUT_MS = 120_000


def is_the_schema(response) -> bool:
    return urlparse(response.url).path == "/api/schema/"


def pages(world) -> dict[str, str]:
    """Every page by its route name, with an object of the world where the route needs one."""
    note = DeliveryNote.objects.filter(hospital=world.warehouse.hospital).order_by("pk").first()
    order = StockOrder.objects.filter(hospital=world.warehouse.hospital).order_by("pk").first()
    run = ReconciliationRun.objects.order_by("pk").first()
    job = BackgroundJob.objects.create(kind=BackgroundJob.Kind.STOCK_EXPORT, hospital=world.warehouse.hospital,
                                       requested_by=world.operator, params={"what": "units", "format": "csv"})
    open_note = receive_delivery_note(
        actor=Actor(user=world.keeper), hospital=world.warehouse.hospital, supplier=world.supplier,
        number="DN-OFFLINE", receiving_location=world.warehouse, idempotency_key="offline-note",
        lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot="L-OFF",
                         expiry=timezone.localdate() + datetime.timedelta(days=400), quantity=5)],
    )
    requisition = create_requisition(
        user=world.operator, department=world.cabinet.department,
        lines=[RequestedLine(world.lot_product, 5)], urgency="URGENT",
    )
    purchase_order = create_purchase_order(
        actor=Actor(user=world.operator), hospital=world.warehouse.hospital, supplier=world.supplier,
        promised_date=timezone.localdate(),
        lines=[OrderLineInput(product=world.lot_product, quantity=10)],
    )
    plan = create_plan(actor=Actor(user=world.operator), hospital=world.warehouse.hospital,
                       lines=[OrderLineInput(product=world.lot_product, quantity=10)])
    RejectedMessage.objects.create(hospital=world.warehouse.hospital, device=world.cabinet_device,
                                   topic=f"spd/{world.warehouse.hospital.code}/cabinets/X/events",
                                   payload='{"event_id": "e1", <img src="https://example.com/x.png">', payload_bytes=48,
                                   error_code="INVALID_JSON", error_detail="the message is not UTF-8 JSON")
    found = {
        "web:dashboard": "/", "web:his-deliveries": "/his/?status=FAILING", "web:review": "/review/", "web:stock": "/stock/", "web:stock-lots": "/stock/lots/",
        "web:unit-trace": f"/units/{world.used.pk}/", "web:alerts": "/alerts/", "web:station": "/station/",
        "web:receiving": "/receiving/", "web:receiving-new": "/receiving/new/",
        "web:receiving-note": f"/receiving/{note.pk}/", "web:cabinets": "/cabinets/",
        "web:cabinet": f"/cabinets/{world.cabinet.pk}/", "web:bedside": "/use/", "web:moves": "/moves/",
        "web:moves-return": "/moves/return/", "web:moves-scrap": "/moves/scrap/",
        "web:moves-order": f"/moves/orders/{order.pk}/", "web:reconciliation": "/reconciliation/",
        "web:receiving-review": f"/receiving/{open_note.pk}/review/", "web:moves-release": "/moves/release/",
        "web:history": "/history/", "web:job": f"/jobs/{job.pk}/", "web:department-cost": "/expensing/", "web:department-count": "/expensing/count/", "web:product-packaging": f"/products/{world.lot_product.pk}/packaging/",
        "web:periods": "/periods/", "web:period-close": f"/periods/close/?month={timezone.localdate():%Y-%m-01}",
        "web:purchasing": "/purchasing/", "web:purchase-order-new": "/purchasing/new/",
        "web:purchasing-report": "/purchasing/report/", "web:vbp-contracts": "/purchasing/vbp/", "web:complaints": "/purchasing/complaints/", "web:product-prices": f"/products/{world.product.pk}/prices/", "web:purchase-order": f"/purchasing/{purchase_order.pk}/",
        "web:purchase-plan-new": "/purchasing/plans/new/", "web:purchase-plan": f"/purchasing/plans/{plan.pk}/",
        "web:dead-letters": "/cabinets/rejected-messages/",
        "api-docs": "/api/docs/", "api-redoc": "/api/redoc/", "admin:index": "/admin/",
        "web:requisitions": "/requisitions/", "web:requisition-queue": "/distribution/queue/",
        "web:par-levels": "/par-levels/",
        "web:requisition": f"/requisitions/{requisition.pk}/",
    }
    if run is not None:
        found["web:reconciliation-run"] = f"/reconciliation/{run.pk}/"
    pick_list, delivery = _picked_and_dispatched(world)
    found.update({"web:picking": "/picking/", "web:pick-list": f"/picking/{pick_list.pk}/",
                  "web:deliveries": "/deliveries/", "web:delivery": f"/deliveries/{delivery.pk}/"})
    found["web:processing"] = "/processing/"
    found["web:processing-definitions"] = "/processing/definitions/"
    found["web:processing-pack"] = f"/processing/packs/{_a_pack(world).pk}/"
    session = start_count(user=world.operator, hospital=world.warehouse.hospital, locations=[world.warehouse])
    found["web:stocktakes"] = "/stocktakes/"
    found["web:stocktake"] = f"/stocktakes/{session.pk}/"
    found["web:stocktake-history"] = f"/stocktakes/locations/{world.warehouse.pk}/"
    found.update(_alliance_pages(world))
    found.update({"web:review-watched": "/review/watched/", "web:review-revenue": "/review/revenue/",
                  "web:review-red-lines": "/review/red-lines/"})
    team, _ = ClinicalTeam.objects.get_or_create(hospital=world.warehouse.hospital, code="OFF-T1",
                                                 defaults={"department": world.cabinet.department, "name": "导管室一组"})
    found.update({"web:clinical-teams": "/clinical-teams/", "web:clinical-team": f"/clinical-teams/{team.pk}/"})
    found.update({"web:recalls": "/recalls/", "web:recall": f"/recalls/{_a_recall(world).pk}/", "web:implants": "/implants/"})
    evaluation = _an_evaluation(world)
    found.update({"web:evaluation": "/purchasing/evaluation/",
                  "web:evaluation-set": f"/purchasing/evaluation/sets/{evaluation.indicator_set_id}/",
                  "web:evaluation-run": f"/purchasing/evaluation/runs/{evaluation.pk}/"})
    return found


def _alliance_pages(world) -> dict[str, str]:
    """The alliance pages, with a transfer from the world's hospital to a member and one alliance catalog
    entry (once per world)."""
    from inventory.models import AllianceEntry, AllianceTransfer, Hospital
    from inventory.services.transfers import TransferLot, create_transfer
    from tests.factories import HospitalFactory, LocationFactory, ProductFactory

    hospital = world.warehouse.hospital
    transfer = AllianceTransfer.objects.order_by("pk").first()
    if transfer is None:
        Hospital.objects.filter(pk=hospital.pk).update(alliance="测试县医共体", is_lead=True)
        hospital.refresh_from_db()
        member = HospitalFactory(code="M-OFF", alliance="测试县医共体")
        LocationFactory(hospital=member, code="CW", name="成员中心库")
        ProductFactory(hospital=member, udi_di=world.lot_product.udi_di, tracking="LOT", is_high_value=False)
        balance = world.lot_product.lot_balances.filter(location=world.warehouse, quantity__gt=0).order_by("pk").first()
        transfer = create_transfer(user=world.operator, source_location=world.warehouse, to_hospital=member,
                                   destination=member.locations.get(code="CW"), kind="EMERGENCY", reason="offline",
                                   lots=[TransferLot(world.lot_product, balance.lot, 1)], idempotency_key="offline-al")
    entry = AllianceEntry.objects.filter(alliance=hospital.alliance).first() or AllianceEntry.objects.create(
        alliance=hospital.alliance, keeper=hospital, code="AL-OFF", name="离线条目", udi_di="06900000000099",
        manufacturer=world.product.manufacturer, tracking="LOT",
    )
    return {"web:alliance-transfers": "/alliance/transfers/", "web:alliance-transfer": f"/alliance/transfers/{transfer.pk}/",
            "web:central-orders": "/alliance/central-orders/", "web:central-plan": "/alliance/central-orders/plan/",
            "web:allocation-statements": "/alliance/statements/",
            "web:alliance-dashboard": "/alliance/", "web:alliance-catalog": "/alliance/catalog/",
            "web:alliance-entry": f"/alliance/catalog/{entry.pk}/"}


def _an_evaluation(world):
    """A finalised supplier evaluation run (its page draws the trend chart)."""
    from tests import factories
    from tests.inventory.evaluation_data import small_run

    return small_run(world.warehouse.hospital, world.operator, {world.supplier: 70, factories.SupplierFactory(): 80},
                     name=f"offline-{timezone.now():%H%M%S%f}")


def _a_recall(world):
    """A recall of one serial of the world's product (once per world)."""
    from inventory.models import Recall
    from inventory.services.recall import open_recall

    return Recall.objects.order_by("pk").first() or open_recall(
        hospital=world.warehouse.hospital, user=world.operator, scope=Recall.Scope.SERIALS, product=world.product,
        serials=["SN-A1"], reason="offline check", source=Recall.Source.NMPA, notice_date=timezone.localdate())


def _picked_and_dispatched(world):
    """A requisition of the cabinet's department picked and dispatched (once per world)."""
    from inventory.models import Delivery, PickList
    from inventory.services import picking
    from inventory.services.requisitions import RequestedLine, create_requisition

    if (delivery := Delivery.objects.order_by("pk").first()) is not None:
        return delivery.pick_list, delivery
    requisition = create_requisition(user=world.operator, department=world.cabinet.department,
                                     lines=[RequestedLine(world.lot_product, 2)], submit=True)
    pick_list = picking.create_pick_list(
        user=world.keeper, hospital=world.warehouse.hospital, source_location=world.warehouse,
        requisition_lines=list(requisition.lines.all()), idempotency_key="offline-pick",
    )
    lot = pick_list.lines.get().product.lot_balances.filter(location=world.warehouse).order_by("expiry").first()
    picking.confirm_pick_scan(user=world.keeper, pick_list=pick_list, code=f"]d201{world.lot_product.udi_di}"
                              f"17{lot.expiry:%y%m%d}10{lot.lot}", quantity=2)
    picking.dispatch_pick_list(user=world.keeper, pick_list=pick_list, idempotency_key="offline-dispatch")
    return PickList.objects.get(pk=pick_list.pk), Delivery.objects.get()


def _a_pack(world):
    """A pack of 2 of the world's lot product, made at a processing station."""
    from inventory.services.processing import LineInput as PackLine
    from inventory.services.processing import MemberScan, assemble_pack, save_definition
    from tests.factories import LocationFactory, gs1_udi

    hospital = world.warehouse.hospital
    station = LocationFactory(hospital=hospital, code="PROC-OFF", name="加工间", kind="PROCESSING_STATION")
    expiry = timezone.localdate() + datetime.timedelta(days=400)
    actor = Actor(user=world.keeper)
    note = receive_delivery_note(
        actor=actor, hospital=hospital, supplier=world.supplier, number="DN-PROC", receiving_location=station,
        idempotency_key="offline-proc", lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot="L-PROC",
                                                         expiry=expiry, quantity=2)],
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key="offline-proc-acc")
    definition = save_definition(user=world.keeper, hospital=hospital, code="DB-OFF", name="定数包",
                                 kind="PACK", lines=[PackLine(world.lot_product, 2)])
    return assemble_pack(actor=actor, hospital=hospital, definition=definition, station=station,
                         scans=[MemberScan(gs1_udi(world.lot_product.udi_di, lot="L-PROC", expiry=expiry), 2)],
                         idempotency_key="offline-pack")


def _route_names(patterns, prefix: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace in ("admin", None) and pattern.app_name == "admin":
                continue
            names |= _route_names(pattern.url_patterns, f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(prefix + pattern.name)
    return names


def test_every_page_of_the_site_is_in_the_offline_check(world):
    web_routes = {name for name in _route_names(get_resolver().url_patterns) if name.startswith("web:")}
    checked = set(pages(world)) | {"web:reconciliation-run", "web:login"}
    assert web_routes - checked - NOT_PAGES == set(), "a new page: add it to pages() or NOT_PAGES"


def test_no_page_asks_for_anything_outside_the_server(page, world, live_server):
    from inventory.services.reconciliation import run_reconciliation

    today = timezone.localdate()
    run_reconciliation(hospital=world.warehouse.hospital, period_start=today, period_end=today)
    own = urlparse(live_server.url).netloc
    outside: list[str] = []
    served: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        served.append(url)
        if urlparse(url).scheme in ("http", "https", "ws", "wss") and urlparse(url).netloc != own:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", guard)
    login(page, world.operator.username)
    page.goto("/login/")  # signed in already: the page still loads its own assets only
    world.operator.is_staff = world.operator.is_superuser = True
    world.operator.save(update_fields=["is_staff", "is_superuser"])
    for name, path in pages(world).items():
        response = page.goto(path)
        assert response is not None and response.status == 200, f"{name} {path}: {response and response.status}"
        page.wait_for_load_state("networkidle")
        assert outside == [], f"{name} ({path}) asked the internet for {outside}"
    with page.expect_response(is_the_schema, timeout=SCHEMA_TIMEOUT_MS) as schema:
        page.goto("/api/redoc/")  # returns once the page has loaded, ReDoc's script with it
        page.wait_for_function("() => typeof window.Redoc !== 'undefined'")
    assert schema.value.ok, schema.value.status
    page.get_by_role("heading", name="SPD consumables API").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert outside == []
    assert any(url.endswith("redoc.standalone.js") for url in served)  # the guard saw the page's own requests
