"""Cursor pagination for integrators that keep a copy of a list (同步): units, movements, uses,
HIS deliveries, alerts.

People page with `?limit=&offset=` and get a `count`. A program that copies a list asks with
`?cursor=` instead (empty to start): the rows come in id order — a key that never changes — from
just after the last row of the previous page, and no COUNT is run. Each answer carries
`next_cursor`, to ask for the following page now or, when `has_more` is false, for the rows added
since, later. Rows inserted while a walk goes on come after it, once: none is skipped or repeated.

A row whose transaction is still open when a page is read may hold a lower id than rows already
committed (ids are handed out at INSERT, rows become visible at COMMIT). So a cursor page stops
before the first row recorded less than `SPD_SYNC_SETTLE_SECONDS` ago (default 5; longer than any
transaction that writes these rows): what a cursor has passed is final.

`?updated_after=` (any mode) keeps the rows changed after that moment, by the timestamps each list
names (`sync_changed_after` on the view); the ledger (movements) never changes, its cursor alone
follows it. See docs/api-sync.md.
"""
import base64
import binascii
import datetime
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from inventory.api.filters import in_utc
from inventory.api.pagination import BoundedLimitOffsetPagination

SYNC_DESCRIPTION = (
    "Integrators: `?cursor=` (empty to start) pages in id order without a count; follow `next_cursor` "
    "until `has_more` is false, keep the last `next_cursor` and ask with it later for the rows added "
    "since. `?updated_after=` keeps the rows changed after a moment. See docs/api-sync.md."
)


class SyncPagination(BoundedLimitOffsetPagination):
    """Limit/offset with a count for people; `?cursor=` for programs (see the module docstring)."""

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list | None:
        queryset = _changed_after(queryset, request, view)
        if self.cursor_query_param not in request.query_params:
            self.cursor_mode = False
            return super().paginate_queryset(queryset, request, view)
        self.cursor_mode, self.request = True, request
        self.limit = self.get_limit(request) or self.default_limit
        after = _decode(request.query_params[self.cursor_query_param])
        rows = queryset.filter(pk__gt=after)
        recorded = getattr(view, "sync_recorded_field", None)
        if recorded is not None:
            rows = rows.annotate(sync_recorded=F(recorded))
        page = list(rows.order_by("pk")[: self.limit + 1])
        if recorded is not None:
            page = _settled(page)
        self.has_more = len(page) > self.limit
        page = page[: self.limit]
        self.next_cursor = _encode(page[-1].pk if page else after)
        return page

    def get_paginated_response(self, data: list) -> Response:
        if not self.cursor_mode:
            return super().get_paginated_response(data)
        url = self.request.build_absolute_uri()
        return Response({
            "next": replace_query_param(url, self.cursor_query_param, self.next_cursor) if self.has_more else None,
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "results": data,
        })

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paged = super().get_paginated_response_schema(schema)
        paged["required"] = ["results"]
        paged["properties"]["next_cursor"] = {
            "type": "string", "description": "Cursor mode: ask with it for the next page, or later for the rows added since",
        }
        paged["properties"]["has_more"] = {"type": "boolean", "description": "Cursor mode: more rows now"}
        paged["description"] = SYNC_DESCRIPTION
        return paged

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        parameters.append({
            "name": self.cursor_query_param, "required": False, "in": "query",
            "description": "Page in id order without a count: empty for the first page, then `next_cursor`",
            "schema": {"type": "string"},
        })
        if getattr(view, "sync_changed_after", None) is not None:
            parameters.append({
                "name": "updated_after", "required": False, "in": "query",
                "description": "Only rows created or changed after this moment (RFC 3339): ask again from the "
                "moment you started the last walk, a minute earlier",
                "schema": {"type": "string", "format": "date-time"},
            })
        return parameters


def _settled(page: list) -> list:
    """The page up to its first row recorded within the settle time: a lower id than the rows after
    it may still commit. (A young row past the page cannot hold anything of this page back, so the
    page's own rows are all there is to look at.)"""
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.SPD_SYNC_SETTLE_SECONDS)
    for index, row in enumerate(page):
        if row.sync_recorded is not None and row.sync_recorded >= cutoff:
            return page[:index]
    return page


def _changed_after(queryset: QuerySet, request: Request, view: Any) -> QuerySet:
    changed: Callable[[datetime.datetime], Q] | None = getattr(view, "sync_changed_after", None)
    raw = request.query_params.get("updated_after")
    if changed is None or raw is None:
        return queryset
    moment = serializers.DateTimeField().run_validation(raw) if raw else None
    if moment is None:
        return queryset
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return queryset.filter(changed(in_utc(moment)))


def _encode(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        after = None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
        raise serializers.ValidationError({"cursor": [_("Not a cursor this API gave: start again with an empty one.")]})
    return after


# --- what "changed after" means for each list -----------------------------------------------------


def units_changed_after(moment: datetime.datetime) -> Q:
    """A unit changes by a movement (place, status, owner), or by binding or unbinding its tag."""
    from django.db.models import Exists, OuterRef

    from inventory.models import Movement, TagBinding

    return (
        Q(created_at__gt=moment) | Q(status_since__gt=moment)
        | Q(Exists(Movement.objects.filter(unit=OuterRef("pk"), recorded_at__gt=moment)))
        | Q(Exists(TagBinding.objects.filter(Q(bound_at__gt=moment) | Q(unbound_at__gt=moment), unit=OuterRef("pk"))))
    )


def movements_recorded_after(moment: datetime.datetime) -> Q:
    """The ledger never changes: a movement is new when recorded after the moment."""
    return Q(recorded_at__gt=moment)


def _delivery_changed(moment: datetime.datetime, prefix: str = "") -> Q:
    # Each attempt moves next_attempt_at (a failure: into the future), a success sets delivered_at.
    return (Q(**{f"{prefix}delivered_at__gt": moment}) | Q(**{f"{prefix}next_attempt_at__gt": moment})
            | Q(**{f"{prefix}first_failed_at__gt": moment}) | Q(**{f"{prefix}claimed_until__gt": moment}))


def consumptions_changed_after(moment: datetime.datetime) -> Q:
    """A use changes when it is refunded, or when one of its charges is sent to the HIS."""
    from django.db.models import Exists, OuterRef

    from inventory.models import ChargeDelivery

    charges = ChargeDelivery.objects.filter(_delivery_changed(moment), charge__consumption=OuterRef("pk"))
    return Q(recorded_at__gt=moment) | Q(refunded_at__gt=moment) | Q(Exists(charges))


def deliveries_changed_after(moment: datetime.datetime) -> Q:
    """A delivery changes at each attempt to send its charge."""
    return Q(charge__created_at__gt=moment) | _delivery_changed(moment)


def alerts_changed_after(moment: datetime.datetime) -> Q:
    """An alert changes when raised, seen again, acknowledged or resolved."""
    return (Q(first_raised_at__gt=moment) | Q(last_seen_at__gt=moment) | Q(acknowledged_at__gt=moment)
            | Q(resolved_at__gt=moment))
