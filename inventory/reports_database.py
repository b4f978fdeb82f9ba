"""Reports off the primary: the read paths of reconciliation, analytics (review) and exports may
read from a streaming replica, the alias `reports` (`REPORTS_DATABASE_URL`); everything else,
and every write, stays on the primary (`default`).

A database router sends a model's reads where they go, but knows nothing of who reads; so those
read paths say it themselves, in a `reports_reads()` block: inside it, reads go to `reports` when
that alias is configured (on the primary otherwise — nothing changes for a single database), and
writes go to the primary whatever happens.

A report must add up: its reads see one snapshot. On the replica, the block is one transaction
`REPEATABLE READ READ ONLY` (a hot standby gives every such transaction a consistent snapshot of
what it has replayed). What must see its own writes reads on the primary: a block opened inside
a transaction on the primary reads there. So a reconciliation run computes on the primary, in the
transaction that holds the run's lock and writes its findings; its reports are rendered afterwards
(a task) on the replica — once the replica shows the run DONE: its findings came in the same commit,
so they are there too; while it does not, they are read on the primary (`ensure_reports`). The
review pages, their API and their exports read on the replica. See docs/scaling.md.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from django.db import connections, transaction

P = ParamSpec("P")
R = TypeVar("R")

REPORTS = "reports"
PRIMARY = "default"

_reading_reports: ContextVar[bool] = ContextVar("reading_reports", default=False)


def reports_configured() -> bool:
    return REPORTS in connections.settings


@contextlib.contextmanager
def reports_reads() -> Iterator[str]:
    """Reads inside go to the replica (`reports`) in one REPEATABLE READ READ ONLY transaction, when
    it is configured; yields the alias they read from. Nested blocks share the outer snapshot.

    Inside a transaction on the primary they stay on the primary: that transaction may have written
    what they must see (and tests run each in one)."""
    if _reading_reports.get():
        yield REPORTS
        return
    if not reports_configured() or connections[PRIMARY].in_atomic_block:
        yield PRIMARY
        return
    token = _reading_reports.set(True)
    try:
        with transaction.atomic(using=REPORTS):
            connection = connections[REPORTS]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # the transaction's first statement
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield REPORTS
    finally:
        _reading_reports.reset(token)


def on_reports(function: Callable[P, R]) -> Callable[P, R]:
    """`function` with its reads in a `reports_reads()` block (an analytics view, an export)."""
    @functools.wraps(function)
    def reading_reports(*args: P.args, **kwargs: P.kwargs) -> R:
        with reports_reads():
            return function(*args, **kwargs)

    return reading_reports


class ReportsRouter:
    """Reads inside `reports_reads()` on the replica; everything else on the primary."""

    def db_for_read(self, model: type, **hints: object) -> str:
        return REPORTS if _reading_reports.get() and reports_configured() else PRIMARY

    def db_for_write(self, model: type, **hints: object) -> str:
        return PRIMARY

    def allow_relation(self, first: object, second: object, **hints: object) -> bool:
        return True  # the replica is a copy of the primary: the same rows

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: object) -> bool:
        return db != REPORTS  # the replica replays the primary's schema
