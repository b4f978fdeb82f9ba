"""`manage.py sync_mqtt_auth`: write the broker's password file and ACL from the device registry."""
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.broker_auth import bridge_credential, write_auth_files


class Command(BaseCommand):
    help = (
        "Write Mosquitto's password file (passwd, PBKDF2-SHA512 $7$ hashes) and ACL (acl) into --dir: the "
        "bridge (user and password of MQTT_URL) reads every cabinet's events and writes their results; "
        "each active MQTT cabinet with an issued password writes only its events topic and reads only "
        "its results topic. Files are replaced atomically and only when changed; with --pid-file, "
        "Mosquitto is then sent SIGHUP to read them again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", help="where to write passwd and acl (default: settings.SPD_MQTT_AUTH_DIR)")
        parser.add_argument("--url", help="the bridge's broker URL with its credential (default: settings.MQTT_URL)")
        parser.add_argument(
            "--pid-file", help="Mosquitto's pid file, to send it SIGHUP (default: settings.SPD_MQTT_BROKER_PID_FILE)"
        )
        parser.add_argument("--mode", default="640", help="file mode, octal (default: 640)")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["dir"] or settings.SPD_MQTT_AUTH_DIR
        if not directory:
            raise CommandError("give --dir or set SPD_MQTT_AUTH_DIR")
        bridge = bridge_credential(options["url"] if options["url"] is not None else settings.MQTT_URL)
        if bridge is None:
            raise CommandError("the broker URL names no user and password for the bridge (mqtt://user:password@host)")
        pid_file = options["pid_file"] or settings.SPD_MQTT_BROKER_PID_FILE or None
        try:
            report = write_auth_files(directory, bridge=bridge, mode=int(options["mode"], 8), pid_file=pid_file)
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from None
        for code, reason in report.skipped.items():
            self.stderr.write(f"skipped {code}: {reason}")
        state = "written" if report.changed else "unchanged"
        reload = ", broker signalled" if report.signalled else ""
        self.stdout.write(
            f"{os.path.join(directory, 'passwd')} and acl {state}: the bridge and {len(report.cabinets)} "
            f"cabinets{reload}."
        )
