"""`manage.py grant_app_privileges`: run as the tables' owner after `migrate` (see docs/deployment.md)."""
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.database_roles import grant_app_privileges


class Command(BaseCommand):
    help = (
        "Grant the application's database role (the user of DATABASE_URL, or --role) what it needs and no "
        "more: no ownership, SELECT/INSERT only on the ledger and the history. Run as the owner "
        "(SPD_DB_AS_OWNER=1 with DATABASE_MIGRATE_URL), after every migrate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default=settings.SPD_DB_APP_ROLE, help="the application's role")
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["role"]:
            raise CommandError("No application role: set DATABASE_URL to the application's role, or pass --role.")
        try:
            statements = grant_app_privileges(role=options["role"], using=options["database"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for statement in statements:
            self.stdout.write(statement)
