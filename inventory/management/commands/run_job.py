"""`manage.py run_job NAME`: run one background job by hand, as Celery beat would (see inventory/jobs.py)."""
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.jobs import JOBS, run_job


class Command(BaseCommand):
    help = "Run one named background job now and print what it did (--list names them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="the job to run")
        parser.add_argument("--list", action="store_true", help="list the jobs and what they do")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            width = max(len(name) for name in JOBS)
            for job in JOBS.values():
                self.stdout.write(f"{job.name:<{width}}  {job.description}")
            return
        name = options["name"]
        if name not in JOBS:
            raise CommandError(f"unknown job {name!r}; valid jobs: {', '.join(JOBS)}" if name else
                               f"name a job: {', '.join(JOBS)}")
        result = run_job(name)
        self.stdout.write(json.dumps(result, ensure_ascii=False, sort_keys=True, default=str))
