"""The embedded demo in one process: the web server, a fake HIS, the HIS relay, the alert
notification relay, and a simulated smart cabinet that opens, is read and closes every so often
over the real device API, after which the ward uses what was taken (its charges go to the fake
HIS) and the keeper refills the cabinet when it runs low."""
import io
import logging
import threading
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from inventory.services.his import deliver_due_charges
from inventory.services.notifications import deliver_due_notifications
from inventory.simulation.demo import NURSE_BADGES, demo_device_token
from inventory.simulation.fake_his import FakeHis
from inventory.simulation.ward import ward_round

logger = logging.getLogger(__name__)
DEMO_HOSPITAL, DEMO_CABINET_LOCATION = "QS01", "CATH-CAB1"
DEMO_CABINET = f"{DEMO_HOSPITAL}-{DEMO_CABINET_LOCATION}"


class Command(BaseCommand):
    help = "Serve the demo at ADDR (default 127.0.0.1:8000) with a fake HIS and a simulated cabinet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--cabinet-every", type=float, default=120.0,
                            help="seconds between simulated cabinet sessions (0: none)")
        parser.add_argument("--relay-every", type=float, default=5.0, help="seconds between HIS relay runs")

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = threading.Event()
        his = self._start_fake_his()
        threading.Thread(target=self._relay, args=(stopping, options["relay_every"]), daemon=True).start()
        if options["cabinet_every"] > 0:
            url = f"http://{options['addrport']}"
            threading.Thread(
                target=self._cabinet, args=(stopping, url, options["cabinet_every"]), daemon=True
            ).start()
        self.stdout.write(self.style.SUCCESS(
            f"Demo: fake HIS at {his.url if his else settings.SPD_HIS_CHARGE_URL}, cabinet {DEMO_CABINET} "
            f"simulated every {options['cabinet_every']:.0f} s. Logins: see seed_demo above."
        ))
        try:
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            stopping.set()
            if his:
                his.stop()

    def _start_fake_his(self) -> FakeHis | None:
        target = urlparse(settings.SPD_HIS_CHARGE_URL)
        if target.hostname not in ("127.0.0.1", "localhost"):
            return None  # a real HIS is configured
        try:
            return FakeHis(target.hostname, target.port or 80).start()
        except OSError as error:
            self.stderr.write(f"fake HIS not started ({error}); charges wait in the outbox")
            return None

    def _relay(self, stopping: threading.Event, every: float) -> None:
        while not stopping.wait(every):
            close_old_connections()
            try:
                deliver_due_charges()
            except Exception:  # the demo keeps going; the outbox keeps the charges
                logger.exception("HIS relay run failed")
            try:
                deliver_due_notifications()
            except Exception:  # the outbox keeps the notifications
                logger.exception("notification relay run failed")

    def _cabinet(self, stopping: threading.Event, url: str, every: float) -> None:
        while not stopping.wait(every):
            close_old_connections()
            try:
                call_command(
                    "simulate_cabinet", device=DEMO_CABINET, via="http", url=url, take=1, interval=0.2,
                    token=demo_device_token(DEMO_CABINET), badge=NURSE_BADGES["nurse"], stdout=io.StringIO(),
                )
            except Exception:
                logger.exception("simulated cabinet session failed")
            try:
                ward_round(hospital_code=DEMO_HOSPITAL, cabinet_code=DEMO_CABINET_LOCATION)
            except Exception:
                logger.exception("simulated ward round failed")
