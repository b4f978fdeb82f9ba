"""The dead-letter page in a real browser (Chromium, live server on PostgreSQL): an operator follows the
link from the smart cabinets, opens a hostile message — which shows as text and runs nothing — and
narrows the list to one reason (test-artifacts/dead-letters.png)."""
import re

import pytest
from playwright.sync_api import expect

from devices.adapters.mqtt_cabinet import handle_message
from devices.models import Device
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def test_an_operator_reads_a_hostile_message_as_text_and_filters_by_reason(page, world, live_server):
    device = Device.objects.create(hospital=world.cabinet.hospital, code="CAB-MQTT", name="导管室智能柜(MQTT)",
                                   kind=Device.Kind.CABINET_MQTT, location=world.cabinet)
    topic = f"spd/{device.hospital.code}/cabinets/{device.code}/events"
    handle_message(topic, HOSTILE.encode())
    handle_message(topic, b'{"event_id": "e1", "kind": "heartbeat", "occurred_at": "1970-01-01T00:00:00Z"}')
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    login(page, world.operator.username)
    page.goto("/cabinets/")
    page.locator("a[data-link=dead-letters]").click()
    expect(page).to_have_url(re.compile(r"/cabinets/rejected-messages/$"))
    rows = page.locator("table[data-table=dead-letters] tbody tr[data-letter]")
    expect(rows).to_have_count(2)

    hostile = page.locator("tr[data-code=INVALID_JSON]")
    hostile.locator("details summary").click()
    expect(hostile.locator("pre[data-payload]")).to_have_text(HOSTILE)
    expect(hostile.locator("[data-reason]")).to_have_text("Not UTF-8 JSON")
    assert page.evaluate("window.pwned") is None and dialogs == []
    assert page.locator("table[data-table=dead-letters] img, table[data-table=dead-letters] script").count() == 0

    page.select_option("#id_reason", "DATE_OUT_OF_RANGE")
    page.locator("form.filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"reason=DATE_OUT_OF_RANGE"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-reason]")).to_have_text("Event time outside the accepted dates (device clock)")
    screenshot(page, "dead-letters")
