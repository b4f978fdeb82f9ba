"""`manage.py reconcile --hospital CODE --date YYYY-MM-DD [--to YYYY-MM-DD] [--rerun]`: run the 进销存
reconciliation of one hospital and period now, in this process, and print the run."""
import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.errors import Refused
from inventory.models import Hospital
from inventory.services.reconciliation import run_reconciliation


def _day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Reconcile one hospital over one day (--date) or a range of days (--date … --to …, both included). "
        "The period's current run is printed as it is when it exists; --rerun makes a new one and keeps "
        "the earlier run. The nightly runs are the job nightly_reconciliation (manage.py run_job)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hospital", required=True, help="hospital code")
        parser.add_argument("--date", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", help="last day, YYYY-MM-DD (default: --date)")
        parser.add_argument("--rerun", action="store_true", help="replace the current run of the period")

    def handle(self, *args: Any, **options: Any) -> None:
        hospital = Hospital.objects.filter(code=options["hospital"]).first()
        if hospital is None:
            raise CommandError(f"no hospital with code {options['hospital']!r}")
        start = _day(options["date"])
        end = _day(options["to"]) if options["to"] else start
        try:
            run = run_reconciliation(hospital=hospital, period_start=start, period_end=end, rerun=options["rerun"])
        except Refused as refused:
            raise CommandError(refused.detail) from refused
        findings = run.summary["findings"]
        self.stdout.write(f"run {run.pk} {hospital.code} {run.period_start}–{run.period_end} {run.status}")
        self.stdout.write(f"findings {findings['count']}, amount {findings['amount']}")
        for kind, total in findings["by_kind"].items():
            if total["count"]:
                self.stdout.write(f"  {kind}: {total['count']} ({total['amount']})")
        for report_format in ("csv", "xlsx", "pdf"):
            stored = getattr(run, f"report_{report_format}")
            self.stdout.write(f"{report_format} {stored.name} sha256 {getattr(run, f'{report_format}_sha256')}")
        self.stdout.write(f"data sha256 {run.summary.get('data_sha256', '')}")
