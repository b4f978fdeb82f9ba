"""`manage.py run_scanner --device CODE`: read one serial scanner until SIGTERM, one scan event per code."""
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.adapters.serial_scanner import ScannerConfigError, SerialScannerReader
from devices.models import Device


class Command(BaseCommand):
    help = (
        "Read a serial barcode scanner (pyserial URL: /dev/ttyUSB0, /dev/pts/N, socket://host:port, loop://) "
        "and store every scanned code as a scan event of the device. Reconnects when the port disappears; "
        "stops cleanly on SIGTERM or Ctrl-C. The port, baud rate and frame suffix come from the device's "
        "config (port_url, baudrate, frame_suffix) unless given here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--device", required=True, help="code of a registered, active SERIAL_SCANNER device")
        parser.add_argument("--url", help="pyserial URL of the port (default: the device's config port_url)")
        parser.add_argument("--baudrate", type=int, help="baud rate (default: the device's config baudrate, or 9600)")

    def handle(self, *args: Any, **options: Any) -> None:
        device = self._device(options["device"])
        try:
            reader = SerialScannerReader(device, url=options["url"], baudrate=options["baudrate"])
        except ScannerConfigError as error:
            raise CommandError(str(error)) from None

        def stop(signum: int, frame: object) -> None:
            reader.stop()

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            reader.run()
        except ValueError as error:  # pyserial's answer to a URL or setting it cannot use
            raise CommandError(f"cannot use {reader.url}: {error}") from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        counters = reader.counters
        self.stdout.write(
            f"Stopped {device.code}: {counters.frames} frames, {counters.ingested} stored "
            f"({counters.refused} refused), {counters.errors} errors, {counters.reconnects} reconnects."
        )

    def _device(self, code: str) -> Device:
        device = Device.objects.select_related("hospital", "location").filter(code=code).first()
        if device is None:
            raise CommandError(f"unknown device {code!r}")
        if not device.is_active:
            raise CommandError(f"device {code} is inactive")
        if device.kind != Device.Kind.SERIAL_SCANNER:
            raise CommandError(f"device {code} is a {device.get_kind_display()}, not a serial scanner")
        return device
