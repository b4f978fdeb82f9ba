"""The dead-letter page (死信): the MQTT messages the bridge refused, for the people who look after the
cabinets of a hospital — filtered, newest first, paged, the reason in words and the message as text."""
import datetime
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devices.adapters.mqtt_cabinet import handle_message
from devices.models import Device, RejectedMessage
from tests import factories

pytestmark = pytest.mark.django_db
PAGE = "/cabinets/rejected-messages/"


def client_for(user, language: str = "en") -> Client:
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


def topic_of(device: Device, hospital_code: str | None = None) -> str:
    return f"spd/{hospital_code or device.hospital.code}/cabinets/{device.code}/events"


def heartbeat(event_id: str, when: str = "2026-11-23T09:30:00+08:00") -> bytes:
    return json.dumps({"event_id": event_id, "kind": "heartbeat", "occurred_at": when, "payload": {}}).encode()


@pytest.fixture
def cabinets(hospital, cabinet):
    first = Device.objects.create(hospital=hospital, code="CAB-M1", name="导管室智能柜", kind=Device.Kind.CABINET_MQTT,
                                  location=cabinet)
    second = Device.objects.create(hospital=hospital, code="CAB-M2", name="手术室智能柜",
                                   kind=Device.Kind.CABINET_MQTT, location=cabinet)
    return first, second


def shown(response) -> list[int]:
    """The letters listed, in the page's order."""
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return [int(part.split('"', 1)[0]) for part in html.split('data-letter="')[1:]]


def test_the_keepers_of_the_books_list_their_hospitals_letters_newest_first_and_nurses_may_not(
    cabinets, other_hospital, operator, keeper, auditor, hospital
):
    handle_message(topic_of(cabinets[0]), b"not json")
    handle_message(topic_of(cabinets[1]), heartbeat("e1", "1970-01-01T00:00:00+00:00"))
    handle_message(f"spd/{other_hospital.code}/cabinets/CAB-X/events", b"{}")
    handle_message("spd/NOWHERE/cabinets/CAB-X/events", b"{}")
    ours = list(RejectedMessage.objects.filter(hospital=hospital).order_by("-received_at", "-pk").values_list(
        "pk", flat=True))

    for user in (operator, keeper, auditor):
        assert shown(client_for(user).get(PAGE)) == ours
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    assert client_for(nurse).get(PAGE).status_code == 403
    alliance = factories.UserFactory(username="alliance", hospital=None, is_superuser=True)
    assert len(shown(client_for(alliance).get(PAGE))) == 4


def test_the_api_lists_them_to_the_same_people(cabinets, hospital, operator):
    from tests.conftest import api_client_for

    handle_message(topic_of(cabinets[0]), b"not json")
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])

    assert api_client_for(operator).get("/api/v1/devices/rejected-messages/").json()["count"] == 1
    assert api_client_for(nurse).get("/api/v1/devices/rejected-messages/").status_code == 403


def test_the_reason_is_in_words_in_either_language(cabinets, operator):
    handle_message(topic_of(cabinets[0]), heartbeat("e1", "1970-01-01T00:00:00+00:00"))

    english = client_for(operator, "en").get(PAGE).content.decode()
    chinese = client_for(operator, "zh-hans").get(PAGE).content.decode()

    assert "Event time outside the accepted dates (device clock)" in english
    assert "事件时间超出可接受的日期范围（设备时钟）" in chinese
    assert "DATE_OUT_OF_RANGE" in english and "DATE_OUT_OF_RANGE" in chinese


def test_the_message_is_shown_as_text_never_as_markup(cabinets, operator):
    handle_message(topic_of(cabinets[0]), b'<script>alert("x")</script><img src=x onerror=alert(1)> \xff')

    html = client_for(operator).get(PAGE).content.decode()

    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; \\xff" in html


@pytest.mark.parametrize("payload", [b'{"event_id": "a\\u0000b", "kind": "heartbeat"}', b'\x00{"x": 1}',
                                     b'{"event_id": "\\ud800", "kind": "heartbeat"}'])
def test_a_message_carrying_nul_or_a_lone_surrogate_is_kept_as_a_dead_letter_too(cabinets, operator, payload):
    [result] = handle_message(topic_of(cabinets[0]), payload)

    letter = RejectedMessage.objects.get()
    assert result["status"] == "REJECTED" and letter.error_code == result["error_code"]
    assert "\x00" not in letter.payload + letter.error_detail + json.dumps(letter.results)
    assert shown(client_for(operator).get(PAGE)) == [letter.pk]


def test_filters_by_device_date_window_and_reason(cabinets, operator):
    handle_message(topic_of(cabinets[0]), b"not json")
    handle_message(topic_of(cabinets[1]), heartbeat("e1", "1970-01-01T00:00:00+00:00"))
    handle_message("spd/H001/cabinets/CAB-GHOST/events", heartbeat("e1"))
    old = handle_message(topic_of(cabinets[1]), b"[1") and RejectedMessage.objects.latest("pk")
    old.received_at = timezone.now() - datetime.timedelta(days=40)
    old.save(update_fields=["received_at"])
    by_code = {letter.error_code: letter.pk for letter in RejectedMessage.objects.exclude(pk=old.pk)}
    page = client_for(operator)
    today = timezone.localdate()

    assert shown(page.get(PAGE, {"device": cabinets[1].pk})) == [by_code["DATE_OUT_OF_RANGE"], old.pk]
    assert shown(page.get(PAGE, {"device": "none"})) == [by_code["UNKNOWN_DEVICE"]]
    assert shown(page.get(PAGE, {"reason": "INVALID_JSON"})) == [by_code["INVALID_JSON"], old.pk]
    assert old.pk not in shown(page.get(PAGE, {"received_from": today - datetime.timedelta(days=1)}))
    assert shown(page.get(PAGE, {"received_to": today - datetime.timedelta(days=30)})) == [old.pk]
    assert shown(page.get(PAGE, {"received_from": today - datetime.timedelta(days=41),
                                 "received_to": today - datetime.timedelta(days=39), "reason": "INVALID_JSON"})) == [
        old.pk]


def test_bad_filters_are_shown_and_filter_nothing(cabinets, operator, other_hospital):
    handle_message(topic_of(cabinets[0]), b"not json")
    theirs = Device.objects.create(hospital=other_hospital, code="CAB-T", name="别院柜", kind=Device.Kind.CABINET_MQTT)
    page = client_for(operator)
    everything = shown(page.get(PAGE))

    backwards = page.get(PAGE, {"received_from": "2026-12-01", "received_to": "2026-11-01"})
    assert shown(backwards) == everything
    assert "The last day is before the first day." in backwards.content.decode()
    for query in ({"received_from": "not a day"}, {"reason": "NOPE"}, {"device": theirs.pk}, {"device": "x'--"},
                  {"received_to": "0001-01-01"}, {"page": "99999", "per_page": "10000", "sort": "nope"}):
        assert page.get(PAGE, query).status_code == 200


def test_a_long_list_is_paged_and_sorted_by_the_chosen_column(cabinets, operator):
    for number in range(30):
        handle_message(topic_of(cabinets[number % 2]), b"x" * (number + 1))
    page = client_for(operator)

    first = shown(page.get(PAGE, {"per_page": 25}))
    second = shown(page.get(PAGE, {"per_page": 25, "page": 2}))
    assert len(first) == 25 and len(second) == 5
    assert first + second == list(RejectedMessage.objects.order_by("-received_at", "-pk").values_list("pk", flat=True))
    smallest = shown(page.get(PAGE, {"sort": "size", "per_page": 25}))[0]
    assert RejectedMessage.objects.get(pk=smallest).payload_bytes == 1


def test_the_cabinets_page_links_to_them_with_the_count_of_the_last_day(cabinets, operator, hospital):
    handle_message(topic_of(cabinets[0]), b"not json")
    handle_message(topic_of(cabinets[0]), b"not json either")
    RejectedMessage.objects.filter(pk=RejectedMessage.objects.earliest("pk").pk).update(
        received_at=timezone.now() - datetime.timedelta(days=2))

    html = client_for(operator).get(reverse("web:cabinets")).content.decode()
    assert f'href="{PAGE}"' in html and "1 in the last 24 hours" in html
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    assert PAGE not in client_for(nurse).get(reverse("web:cabinets")).content.decode()
