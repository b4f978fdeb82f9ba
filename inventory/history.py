"""Who changed master data: the request's user, handed to the history triggers.

django-pghistory's middleware puts the user and URL of each writing request into PostgreSQL
session variables that the change triggers copy into every history row (inventory/models/history.py).
It prefixes write statements with `SELECT set_config(...)`, which only PostgreSQL understands, so on
any other database this middleware steps aside — there are no triggers to read it either.
"""
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse
from pghistory.middleware import HistoryMiddleware as PgHistoryMiddleware


def history_is_recorded() -> bool:
    """Whether master-data changes are being recorded: only PostgreSQL runs the triggers."""
    return connection.vendor == "postgresql"


class HistoryMiddleware(PgHistoryMiddleware):
    """pghistory's context middleware (user id + path), on PostgreSQL only.

    API clients authenticate in the view (token), after middleware has run; pghistory swaps the
    request's class so that setting `request.user` there updates the context too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.active = history_is_recorded()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.active:
            return self.get_response(request)
        return super().__call__(request)
