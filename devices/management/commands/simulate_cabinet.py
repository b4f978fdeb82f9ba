"""`manage.py simulate_cabinet --device CODE`: play a smart cabinet's sessions over MQTT or HTTP.

Each session is what a real RFID cabinet sends: a heartbeat; door_open with who opened it; K
tagged units taken out; inventory rounds listing the EPCs the antennas read, with the duplicate
reads of one tag that real readers produce; door_close with the set of EPCs seen; a temperature
reading. The EPCs are those of the units at the cabinet's location, so the events are what the
stock side expects from this cabinet; taken units stay out in later sessions.
"""
import json
import random
import threading
import time
import uuid
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, urlopen

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion

from devices.models import Device
from inventory.models import Unit

INVENTORY_ROUNDS = 2
EVENTS_PATH = "/api/v1/devices/events/"


class Command(BaseCommand):
    help = (
        "Drive a smart cabinet: per session heartbeat, door_open, inventory rounds (with duplicate tag "
        "reads), door_close with the EPCs seen, temperature. --via mqtt publishes on "
        "spd/<hospital>/cabinets/<device>/events (QoS 1); --via http posts to /api/v1/devices/events/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--device", required=True, help="code of a registered, active cabinet")
        parser.add_argument("--via", choices=["mqtt", "http"], default="mqtt")
        parser.add_argument(
            "--url", help="mqtt://host:port (default: settings.MQTT_URL) or http://host:port (default: "
            "http://127.0.0.1:8000)",
        )
        parser.add_argument("--token", help="the device token (--via http)")
        parser.add_argument("--sessions", type=int, default=1, help="door sessions to play (default 1)")
        parser.add_argument("--take", type=int, default=1, help="units taken out in each session (default 1)")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between events (default 0.5)")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="username of who opens the door")
        who.add_argument("--badge", help="badge id of who opens the door (default: SIM-<device>)")

    def handle(self, *args: Any, **options: Any) -> None:
        device = Device.objects.select_related("hospital", "location").filter(code=options["device"]).first()
        if device is None or not device.is_active:
            raise CommandError(f"no active device {options['device']!r}")
        if device.location is None:
            raise CommandError(f"device {device.code} has no location, so it holds no units")
        if options["sessions"] < 1 or options["take"] < 0 or options["interval"] < 0:
            raise CommandError("--sessions must be at least 1, --take and --interval not negative")
        opener = {"user": options["user"]} if options["user"] else {"badge": options["badge"] or f"SIM-{device.code}"}
        present = set(
            Unit.objects.filter(location=device.location, epc__isnull=False).exclude(epc="").values_list("epc", flat=True)
        )
        if options["via"] == "http":
            sender = HttpSender(options["url"] or "http://127.0.0.1:8000", options["token"])
        else:
            sender = MqttSender(options["url"] or settings.MQTT_URL, device)
        self.stdout.write(f"{device.code}: {len(present)} tagged units at {device.location}.")
        rng = random.Random()
        try:
            for number in range(1, options["sessions"] + 1):
                taken = set(rng.sample(sorted(present), min(options["take"], len(present))))
                present -= taken
                self.stdout.write(f"Session {number}: {len(taken)} taken, {len(present)} left.")
                for kind, payload in session_events(opener, present, rng):
                    body = event(device, kind, payload)
                    self.stdout.write(f"  {kind:<11} {body['event_id']}: {sender.send(body)}")
                    time.sleep(options["interval"])
        finally:
            self.stdout.write(sender.close())


def session_events(opener: dict, present: set[str], rng: random.Random) -> list[tuple[str, dict]]:
    """The (kind, payload) of one door session, after the units taken are gone from `present`."""
    events: list[tuple[str, dict]] = [("heartbeat", {}), ("door_open", dict(opener))]
    for _ in range(INVENTORY_ROUNDS):
        # A reader reports a tag every time an antenna catches it: some tags twice or three times.
        reads = [epc for epc in sorted(present) for _ in range(rng.choice((1, 1, 2, 3)))]
        rng.shuffle(reads)
        events.append(("inventory", {"epcs": reads}))
    events.append(("door_close", {"epcs": sorted(present)}))
    events.append(("temperature", {"celsius": round(rng.uniform(18.0, 26.0), 1)}))
    return events


def event(device: Device, kind: str, payload: dict) -> dict:
    return {
        "event_id": f"sim-{device.code}-{uuid.uuid4().hex}", "kind": kind,
        "occurred_at": timezone.now().isoformat(), "payload": payload,
    }


class HttpSender:
    """POST each event to the ingest endpoint with the device's token."""

    def __init__(self, base_url: str, token: str | None) -> None:
        if not token:
            raise CommandError("--via http needs --token (the device token)")
        if urlparse(base_url).scheme not in ("http", "https"):
            raise CommandError(f"--url {base_url!r} is not an http(s) URL")
        self.url = base_url.rstrip("/") + EVENTS_PATH
        self.token = token
        self.sent = self.failed = 0

    def send(self, body: dict) -> str:
        request = Request(
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Device {self.token}"},
        )
        try:
            with urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
                self.sent += 1
                return f"{response.status} {answer.get('status')} {answer.get('error_code') or ''}".rstrip()
        except HTTPError as error:
            self.failed += 1
            return f"{error.code} {error.read().decode(errors='replace')[:200]}"
        except URLError as error:
            raise CommandError(f"cannot reach {self.url}: {error.reason}") from None

    def close(self) -> str:
        return f"Done: {self.sent} accepted, {self.failed} refused."


class MqttSender:
    """Publish each event with QoS 1, and collect the bridge's results for the events sent."""

    RESULTS_WAIT = 5.0

    def __init__(self, url: str, device: Device) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise CommandError("--via mqtt needs --url mqtt://host:port or MQTT_URL")
        prefix = f"spd/{device.hospital.code}/cabinets/{device.code}"
        self.topic = f"{prefix}/events"
        self.pending: set[str] = set()
        self.results: dict[str, dict] = {}
        self.all_answered = threading.Condition()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{device.code}-{uuid.uuid4().hex[:8]}")
        if parsed.username:
            client.username_pw_set(unquote(parsed.username), unquote(parsed.password or "") or None)
        if parsed.scheme == "mqtts":
            client.tls_set()
        client.on_message = self._on_result
        try:
            client.connect(parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883))
        except OSError as error:
            raise CommandError(f"cannot reach the MQTT broker {parsed.hostname}: {error}") from None
        client.subscribe(f"{prefix}/results", qos=1)
        client.loop_start()
        self.client = client

    def send(self, body: dict) -> str:
        with self.all_answered:
            self.pending.add(body["event_id"])
        info = self.client.publish(self.topic, json.dumps(body), qos=1)
        info.wait_for_publish(timeout=10)
        return "published" if info.is_published() else "NOT acknowledged by the broker"

    def close(self) -> str:
        with self.all_answered:
            self.all_answered.wait_for(lambda: self.pending <= self.results.keys(), timeout=self.RESULTS_WAIT)
            answered = len(self.pending & self.results.keys())
        self.client.disconnect()
        self.client.loop_stop()
        statuses = [self.results[event_id]["status"] for event_id in self.pending if event_id in self.results]
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
        return f"Done: {len(self.pending)} published, {answered} answered by the bridge ({counts or 'none'})."

    def _on_result(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            results = json.loads(message.payload)["results"]
        except (ValueError, KeyError, TypeError):
            return
        with self.all_answered:
            for result in results:
                if isinstance(result, dict) and result.get("event_id") is not None:
                    self.results[result["event_id"]] = result
            self.all_answered.notify_all()
