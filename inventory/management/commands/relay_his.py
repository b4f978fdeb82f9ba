"""`manage.py relay_his [--loop]`: deliver the due HIS charges from the outbox, once or until SIGTERM."""
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from inventory.services.his import RelayReport, deliver_due_charges


class Command(BaseCommand):
    help = (
        "Send the due charges of the HIS outbox (the same work as the Celery task deliver_his_charges). "
        "With --loop, repeat every --interval seconds (at once while batches come back full) until SIGTERM "
        "or Ctrl-C; a database outage is reported and retried at the next round. Any number of relays may "
        "run side by side: each delivery is claimed by one at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep relaying until stopped")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds (default 5)")
        parser.add_argument("--limit", type=int, default=100, help="deliveries claimed per round (default 100)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0 or options["limit"] < 1:
            raise CommandError("--interval must be positive and --limit at least 1")
        if not options["loop"]:
            self._report(deliver_due_charges(limit=options["limit"]), quiet=False)
            return

        stopping = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"Relaying HIS charges every {options['interval']:g} s.")
        try:
            while not stopping.is_set():
                close_old_connections()
                try:
                    report = deliver_due_charges(limit=options["limit"])
                except DatabaseError as error:
                    self.stderr.write(f"database unavailable, retrying: {error}")
                    stopping.wait(options["interval"])
                    continue
                self._report(report, quiet=True)
                if report.claimed < options["limit"] or report.released:
                    stopping.wait(options["interval"])
        finally:
            close_old_connections()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("Stopped.")

    def _report(self, report: RelayReport, *, quiet: bool) -> None:
        if report.claimed or not quiet:
            self.stdout.write(", ".join(f"{name} {value}" for name, value in report.as_dict().items()))
