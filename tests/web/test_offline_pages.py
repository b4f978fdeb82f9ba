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
from inventory.models import BackgroundJob, DeliveryNote, ReconciliationRun, StockOrder
from inventory.services.receiving import LineInput, receive_delivery_note
from tests.web.conftest import login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Named routes that are not pages: form posts, JSON endpoints of the scan fields, downloads.
NOT_PAGES = {
    "web:logout", "web:alert-acknowledge", "web:alert-resolve", "web:receiving-draft", "web:receiving-draft-scan",
    "web:receiving-draft-lot", "web:receiving-draft-remove", "web:receiving-draft-discard", "web:receiving-note-scan",
    "web:receiving-accept", "web:bedside-scan", "web:bedside-lot", "web:bedside-refund", "web:moves-scan",
    "web:reconciliation-start", "web:reconciliation-rerun", "web:reconciliation-report", "web:product-suggestions",
    "web:scan", "web:receiving-find", "web:receiving-draft-quantity", "web:receiving-record", "web:moves-order-pdf",
    "web:job-status", "web:job-download", "web:reconciliation-reports-status", "web:reconciliation-findings-export",
    "web:reconciliation-finding-disposition", "web:stock-export",
}


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
    RejectedMessage.objects.create(hospital=world.warehouse.hospital, device=world.cabinet_device,
                                   topic=f"spd/{world.warehouse.hospital.code}/cabinets/X/events",
                                   payload='{"event_id": "e1", <img src="https://example.com/x.png">', payload_bytes=48,
                                   error_code="INVALID_JSON", error_detail="the message is not UTF-8 JSON")
    found = {
        "web:dashboard": "/", "web:his-deliveries": "/his/?status=FAILING", "web:stock": "/stock/", "web:stock-lots": "/stock/lots/",
        "web:unit-trace": f"/units/{world.used.pk}/", "web:alerts": "/alerts/", "web:station": "/station/",
        "web:receiving": "/receiving/", "web:receiving-new": "/receiving/new/",
        "web:receiving-note": f"/receiving/{note.pk}/", "web:cabinets": "/cabinets/",
        "web:cabinet": f"/cabinets/{world.cabinet.pk}/", "web:bedside": "/use/", "web:moves": "/moves/",
        "web:moves-return": "/moves/return/", "web:moves-scrap": "/moves/scrap/",
        "web:moves-order": f"/moves/orders/{order.pk}/", "web:reconciliation": "/reconciliation/",
        "web:receiving-review": f"/receiving/{open_note.pk}/review/", "web:moves-release": "/moves/release/",
        "web:history": "/history/", "web:job": f"/jobs/{job.pk}/", "web:dead-letters": "/cabinets/rejected-messages/",
        "api-docs": "/api/docs/", "api-redoc": "/api/redoc/", "admin:index": "/admin/",
    }
    if run is not None:
        found["web:reconciliation-run"] = f"/reconciliation/{run.pk}/"
    return found


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
    page.goto("/api/redoc/")
    page.get_by_role("heading", name="SPD consumables API").wait_for(timeout=30_000)
    assert outside == []
    assert any(url.endswith("redoc.standalone.js") for url in served)  # the guard saw the page's own requests
