"""`manage.py repair_dates [--apply]`: list (and with --apply, repair) the dates stored out of bounds
before dates from devices and the HIS were checked; see inventory/services/date_repair.py."""
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inventory.services.date_repair import LISTED, repair_dates


class Command(BaseCommand):
    help = (
        "Find device events, HIS settlement lines, cabinet sessions and movements whose stored dates are "
        "outside the accepted window (SPD_ACCEPTED_DATE_YEARS) or a device clock's accepted skew. A dry run "
        "by default: it lists what it would do. --apply repairs (events, sessions) or quarantines (settlement "
        "lines) them in one transaction; movements are only listed (the ledger is append-only)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="repair; without it nothing is changed")

    def handle(self, *args: Any, **options: Any) -> None:
        report = repair_dates(apply=options["apply"])
        for found in report.found:
            self.stdout.write(f"{found.kind}: {found.count} ({found.action})")
            for row in found.rows:
                self.stdout.write("    " + ", ".join(f"{key}={value}" for key, value in row.items()))
            if found.count > LISTED:
                self.stdout.write(f"    … and {found.count - LISTED} more")
        if not report.total:
            self.stdout.write(self.style.SUCCESS("Nothing to repair."))
        elif report.applied:
            repaired = sum(found.count for found in report.found if found.repairs)
            self.stdout.write(self.style.SUCCESS(f"Repaired {repaired} rows; the others are only listed."))
        else:
            self.stdout.write(self.style.WARNING("Dry run: nothing changed. Run again with --apply to repair."))
