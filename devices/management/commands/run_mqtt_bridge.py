"""`manage.py run_mqtt_bridge`: feed smart cabinets' MQTT events to the ingest path until SIGTERM."""
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from devices.adapters.mqtt_cabinet import DEFAULT_CLIENT_ID, TOPIC_FILTER, MqttCabinetBridge, record_heartbeat


class Command(BaseCommand):
    help = (
        "Subscribe to spd/<hospital>/cabinets/<device>/events (QoS 1, persistent session) and store each "
        "event as the HTTP endpoint would; outcomes are published on .../results. Reconnects by itself; "
        "stops cleanly on SIGTERM or Ctrl-C. Exits non-zero when the database stays unreachable, leaving "
        "the message unacknowledged so that the broker delivers it again after a restart. Writes a "
        "heartbeat (BridgeHeartbeat) every SPD_MQTT_BRIDGE_HEARTBEAT_SECONDS. TLS: an mqtts:// URL and "
        "MQTT_TLS_CA_FILE / MQTT_TLS_CERT_FILE / MQTT_TLS_KEY_FILE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="broker, mqtt[s]://[user:password@]host[:port] (default: settings.MQTT_URL)"
        )
        parser.add_argument(
            "--client-id", default=DEFAULT_CLIENT_ID,
            help=f"MQTT client id; the broker keeps the session under it (default: {DEFAULT_CLIENT_ID})",
        )
        parser.add_argument(
            "--topic", default=TOPIC_FILTER,
            help=f"topic filter, e.g. spd/H001/cabinets/+/events for one hospital (default: {TOPIC_FILTER})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.MQTT_URL
        if not url:
            raise CommandError("no MQTT broker: give --url mqtt://host:port or set MQTT_URL")
        try:
            bridge = MqttCabinetBridge(
                url, client_id=options["client_id"], topic_filter=options["topic"],
                ca_file=settings.MQTT_TLS_CA_FILE, cert_file=settings.MQTT_TLS_CERT_FILE,
                key_file=settings.MQTT_TLS_KEY_FILE,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        stopping = threading.Event()

        def stop(signum: int, frame: object) -> None:
            stopping.set()

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        started_at, every = timezone.now(), max(1, settings.SPD_MQTT_BRIDGE_HEARTBEAT_SECONDS)
        bridge.start()
        self.stdout.write(f"Bridging {options['topic']} on {bridge.host}:{bridge.port} as {bridge.client_id}.")
        try:
            beats = 0
            while not stopping.wait(1):
                if bridge.failure is not None:
                    raise CommandError(f"stopped: database unavailable ({bridge.failure})")
                if beats % every == 0:
                    self._beat(bridge, started_at)
                beats += 1
        finally:
            bridge.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("Stopped.")

    def _beat(self, bridge: MqttCabinetBridge, started_at: object) -> None:
        # A heartbeat that cannot be written is the database's trouble, seen by the messages too.
        try:
            close_old_connections()
            record_heartbeat(bridge, started_at=started_at)
        except DatabaseError as error:
            self.stderr.write(f"heartbeat not written: {error}")
