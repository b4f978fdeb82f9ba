"""`manage.py simulate_scanner --url URL`: play a serial barcode scanner, for the demo and the tests.

Writes scan frames to a pyserial URL — typically one side of a pseudo-terminal pair (`socat -d -d
pty,raw,echo=0 pty,raw,echo=0`) or a `socket://` server — where `run_scanner` reads the other side.
"""
import itertools
import time
from collections.abc import Iterator
from typing import Any

import serial
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.adapters.serial_scanner import DEFAULT_SUFFIX, ScannerConfigError, parse_suffix
from inventory.models import Unit, UnitStatus

# Pause between the pieces of a split frame, long enough for the reader to see separate reads.
SPLIT_PAUSE = 0.02


class Command(BaseCommand):
    help = (
        "Write barcode scans to a serial URL as a scanner would: the GS1 codes of units in stock of a "
        "hospital (--codes-from-db --hospital CODE) or the codes given (--code ...), each followed by the "
        "frame suffix. --split sends each frame in pieces; --garbage-every N adds an unreadable line after "
        "every N codes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="pyserial URL to write to (/dev/pts/N, socket://host:port)")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--codes-from-db", action="store_true", help="scan the units in stock of --hospital")
        source.add_argument(
            "--code", action="extend", nargs="+", dest="codes", metavar="CODE", help="codes to scan (repeatable)"
        )
        parser.add_argument("--hospital", help="hospital code, with --codes-from-db")
        parser.add_argument("--count", type=int, help="frames to send, cycling through the codes (default: each once)")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between scans (default 0.5)")
        parser.add_argument("--suffix", default=DEFAULT_SUFFIX, help='frame suffix as an escape string (default "\\r\\n")')
        parser.add_argument("--garbage-every", type=int, default=0, metavar="N", help="add a garbage line after every N codes")
        parser.add_argument("--split", action="store_true", help="send each frame in several writes")
        parser.add_argument("--baudrate", type=int, default=9600)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            suffix = parse_suffix(options["suffix"])
        except ScannerConfigError as error:
            raise CommandError(str(error)) from None
        codes = self._codes(options)
        count = options["count"] if options["count"] is not None else len(codes)
        if count < 1 or options["garbage_every"] < 0 or options["interval"] < 0:
            raise CommandError("--count must be positive, --garbage-every and --interval not negative")
        frames = list(self._frames(codes, count, options["garbage_every"]))
        garbage = sum(is_garbage for _, is_garbage in frames)
        try:
            port = serial.serial_for_url(options["url"], baudrate=options["baudrate"], timeout=1, write_timeout=5)
        except (serial.SerialException, OSError, ValueError) as error:
            raise CommandError(f"cannot open {options['url']}: {error}") from None
        try:
            for index, (frame, _) in enumerate(frames):
                if index and options["interval"]:
                    time.sleep(options["interval"])
                self._write(port, frame.encode("latin-1", errors="replace") + suffix, split=options["split"])
        except (serial.SerialException, OSError) as error:
            raise CommandError(f"writing to {options['url']} failed: {error}") from None
        finally:
            port.close()
        self.stdout.write(f"Sent {len(frames) - garbage} codes and {garbage} garbage lines to {options['url']}.")

    def _codes(self, options: dict) -> list[str]:
        if options["codes"]:
            return options["codes"]
        if not options["hospital"]:
            raise CommandError("--codes-from-db needs --hospital CODE")
        codes = list(
            Unit.objects.filter(
                hospital__code=options["hospital"], status__in=[UnitStatus.IN_STOCK, UnitStatus.IN_CABINET]
            ).order_by("pk").values_list("udi_raw", flat=True)
        )
        if not codes:
            raise CommandError(f"hospital {options['hospital']!r} has no units in stock to scan")
        return codes

    @staticmethod
    def _frames(codes: list[str], count: int, garbage_every: int) -> Iterator[tuple[str, bool]]:
        """(frame, is garbage): `count` codes cycling through `codes`, a garbage line after every `garbage_every`."""
        for number, code in enumerate(itertools.islice(itertools.cycle(codes), count), start=1):
            yield code, False
            if garbage_every and number % garbage_every == 0:
                yield f"GARBAGE-{number}-%%##", True

    @staticmethod
    def _write(port: serial.SerialBase, data: bytes, *, split: bool) -> None:
        if not split or len(data) < 3:
            port.write(data)
            port.flush()
            return
        # Three pieces, the last cutting into the suffix when it is longer than one byte.
        cuts = [0, len(data) // 3, len(data) - 1, len(data)]
        for start, end in itertools.pairwise(cuts):
            port.write(data[start:end])
            port.flush()
            time.sleep(SPLIT_PAUSE)
