"""`manage.py run_fake_his`: a stand-in HIS charge endpoint for the demo, until SIGTERM or Ctrl-C."""
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.simulation.fake_his import MODES, FakeHis, ReceivedCharge


class Command(BaseCommand):
    help = (
        "Serve a fake HIS charge endpoint (POST /charges) that keeps one charge per Idempotency-Key and "
        "answers repeats with the first his_reference. Steer it with POST /_control {\"mode\": "
        f"\"{'|'.join(MODES)}\", \"count\": N}} and read what it holds with GET /_received. Point the relay "
        "at it with SPD_HIS_CHARGE_URL=http://HOST:PORT/charges."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8900, help="port to listen on (default 8900)")
        parser.add_argument("--mode", choices=MODES, default="ok", help="how to answer at first (default ok)")
        parser.add_argument("--token", default="", help="require this bearer token (default: none)")

    def handle(self, *args: Any, **options: Any) -> None:
        def show(charge: ReceivedCharge) -> None:
            body = charge.body
            self.stdout.write(
                f"{charge.his_reference} ← {charge.key}: {body.get('kind')} {body.get('his_charge_code')} "
                f"× {body.get('quantity')} = {body.get('amount')} (encounter {body.get('encounter')})"
            )

        try:
            fake = FakeHis(options["host"], options["port"], token=options["token"], on_charge=show)
        except OSError as error:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {error}") from None
        fake.set_mode(options["mode"])
        stopping = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
        fake.start()
        self.stdout.write(f"Fake HIS listening on {fake.url} (mode {options['mode']}).")
        try:
            stopping.wait()
        finally:
            fake.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"Stopped: {len(fake.received)} charges held, {len(fake.requests)} requests.")
