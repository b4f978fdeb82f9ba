"""Master-data history (变更记录) over the API, relative to /api/v1/:

- `GET <resource>/{id}/history/` on products, supply-agreements, suppliers, manufacturers,
  certificates, locations, departments, hospitals and devices — the object's changes, newest first.
- `GET history/?kind=<kind>&object=<id>` — the changes of one kind (the same resource names, plus
  `par-levels` and `user-roles`; `object` is the user for roles), newest first, including those of
  objects deleted since.

Each change: `action` (create, update, delete, baseline = the state when tracking began,
role_added, role_removed), `at`, `user`/`username` (the request's user; empty for commands, jobs
and SQL), `path`, `before`, `after` (field → value) and `changed` (the fields that differ). The
list answers `recorded: false` where nothing is recorded (a database other than PostgreSQL).
Administrators, warehouse keepers, SPD operators and auditors read history; another hospital's
object is a 404, as everywhere.
"""
from typing import Any

from django.db.models import QuerySet
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from inventory.api.fields import RFC3339DateTimeField
from inventory.history import history_is_recorded
from inventory.selectors import history


class ChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    object = serializers.IntegerField(source="object_id")
    action = serializers.CharField()
    at = RFC3339DateTimeField()
    user = serializers.IntegerField(source="user_id", allow_null=True)
    username = serializers.CharField()
    path = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    changed = serializers.ListField(child=serializers.CharField())


class ReadsHistory(BasePermission):
    message = _("Your role does not allow reading the change history.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_role(*history.HISTORY_READERS)


def _page(request: Request, view: Any, kind: history.HistoryKind, rows: QuerySet) -> Response:
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(rows, request, view=view)
    response = paginator.get_paginated_response(ChangeSerializer(history.describe(kind, page), many=True).data)
    response.data["recorded"] = history_is_recorded()
    return response


class HistoryPageSerializer(serializers.Serializer):
    """One page of changes; `recorded` is false where nothing is recorded (a database other than PostgreSQL)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    recorded = serializers.BooleanField()
    results = ChangeSerializer(many=True)


class HistoryActions:
    """Adds `GET {id}/history/` to a viewset of tracked master data (the object as `get_object` finds it)."""

    @extend_schema(
        summary="Change history of this object",
        responses=HistoryPageSerializer,
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="history")
    def history(self, request: Request, pk: str | None = None) -> Response:
        if not ReadsHistory().has_permission(request, self):
            raise exceptions.PermissionDenied(ReadsHistory.message)
        obj = self.get_object()
        return _page(request, self, history.kind_of(obj), history.changes_of(obj))


class HistoryList(APIView):
    """The changes of one kind of master data, newest first; `object` narrows them to one object."""

    permission_classes = [*APIView.permission_classes, ReadsHistory]

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, required=True, enum=list(history.KINDS)),
            OpenApiParameter("object", int, description="The object's id (for user-roles: the user's)"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses=HistoryPageSerializer,
    )
    def get(self, request: Request) -> Response:
        kind = history.KINDS.get(request.query_params.get("kind", ""))
        if kind is None:
            raise serializers.ValidationError({"kind": _("Choose one of: %(kinds)s.") % {"kinds": ", ".join(history.KINDS)}})
        object_id = request.query_params.get("object")
        if object_id is not None and not object_id.isdigit():
            raise serializers.ValidationError({"object": _("An object id is a whole number.")})
        rows = history.changes(kind, request.user, object_id=int(object_id) if object_id else None)
        return _page(request, self, kind, rows)


urlpatterns = [path("history/", HistoryList.as_view(), name="history")]
