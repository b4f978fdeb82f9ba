"""Alerts (预警) over the API, relative to /api/v1/:

- `GET alerts/` — newest first; filters `kind`, `status`, `severity` (each repeatable), `unit`,
  `product`, `location`, `device`, `certificate`, `subject_key`, `unresolved=true`; `ordering` by
  `last_seen_at`, `first_raised_at` or `id` (prefix `-` for descending).
- `GET alerts/{id}/`
- `POST alerts/{id}/acknowledge/` `{"note": ""}` — once; acknowledging again changes nothing.
- `POST alerts/{id}/resolve/` `{"note": "…"}` — the note is required.
- `GET alerts/summary/` — unresolved counts by status, kind, severity, kind × severity, and the
  near-expiry alerts by tier: the dashboard's numbers.

Every user of the hospital reads; administrators, warehouse keepers, SPD operators and nurses
acknowledge and resolve (auditors only read). Another hospital's alert is 404.
"""
import django_filters
from django.db.models import QuerySet
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.api import filters as api_filters
from inventory.api import sync
from inventory.api.fields import validated
from inventory.models import Alert, Role
from inventory.selectors.alerts import alert_summary, alerts_visible_to
from inventory.services import alerts as alert_service

ALERT_HANDLERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE)


class AlertSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    acknowledged_by_username = serializers.CharField(source="acknowledged_by.username", read_only=True, allow_null=True)
    resolved_by_username = serializers.CharField(
        source="resolved_by.username", read_only=True, allow_null=True,
        help_text="Empty when the alert was resolved automatically because its condition went away",
    )

    class Meta:
        model = Alert
        fields = [
            "id", "hospital", "kind", "kind_label", "subject_key", "severity", "status", "message", "details", "unit",
            "product", "location", "certificate", "device", "first_raised_at", "last_seen_at", "occurrences",
            "acknowledged_at", "acknowledged_by", "acknowledged_by_username", "acknowledge_note", "resolved_at",
            "resolved_by", "resolved_by_username", "resolve_note",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, help_text="Why the alert is closed (required)")


class AlertFilter(api_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=Alert.Kind.choices)
    status = django_filters.MultipleChoiceFilter(choices=Alert.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Alert.Severity.choices)
    unresolved = django_filters.BooleanFilter(method="filter_unresolved", label="Only open or acknowledged alerts")

    class Meta:
        model = Alert
        fields = ["kind", "status", "severity", "unit", "product", "location", "device", "certificate", "subject_key"]

    def filter_unresolved(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        if value:
            return queryset.exclude(status=Alert.Status.RESOLVED)
        return queryset.filter(status=Alert.Status.RESOLVED)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Typed alerts of the caller's hospital, de-duplicated by subject, newest first.

    Integrators keeping a copy: `?cursor=` pages in id order without a count, `?updated_after=` keeps
    the alerts raised, seen again, acknowledged or resolved since (docs/api-sync.md)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    pagination_class = sync.SyncPagination
    sync_recorded_field = "first_raised_at"
    sync_changed_after = staticmethod(sync.alerts_changed_after)
    filter_backends = [api_filters.DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["last_seen_at", "first_raised_at", "id"]
    ordering = ["-last_seen_at", "-id"]
    lookup_value_regex = r"\d+"
    write_roles = ALERT_HANDLERS

    def get_queryset(self) -> QuerySet:
        return alerts_visible_to(self.request.user)

    @extend_schema(request=AcknowledgeSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str) -> Response:
        """Say you have seen the alert and are on it (who, when and your note are kept)."""
        data = validated(AcknowledgeSerializer, request)
        alert = alert_service.acknowledge(alert=self.get_object(), user=request.user, note=data["note"])
        return Response(AlertSerializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(request=ResolveSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        """Close the alert with a note. If its condition still holds, the next scan raises it again."""
        data = validated(ResolveSerializer, request)
        alert = alert_service.resolve(alert=self.get_object(), user=request.user, note=data["note"])
        return Response(AlertSerializer(self.get_queryset().get(pk=alert.pk)).data)


class KindSeverityCountSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Alert.Kind.choices)
    severity = serializers.ChoiceField(choices=Alert.Severity.choices)
    count = serializers.IntegerField()


class TierCountSerializer(serializers.Serializer):
    days = serializers.IntegerField(help_text="The tier: expiring within this many days (and beyond the next tier)")
    count = serializers.IntegerField()


class AlertSummarySerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="Unresolved alerts (open or acknowledged)")
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="OPEN and ACKNOWLEDGED")
    by_kind = serializers.DictField(child=serializers.IntegerField(), help_text="Every alert kind, 0 included")
    by_severity = serializers.DictField(child=serializers.IntegerField(), help_text="INFO, WARNING, CRITICAL")
    by_kind_and_severity = KindSeverityCountSerializer(many=True)
    near_expiry_by_tier = TierCountSerializer(many=True, help_text="Widest tier first, e.g. 90, 60, 30 days")


class AlertSummaryView(APIView):
    """Unresolved alert counts of the caller's hospital, for the dashboard."""

    @extend_schema(responses={200: AlertSummarySerializer})
    def get(self, request: Request) -> Response:
        summary = alert_summary(alerts_visible_to(request.user), alert_service.expiry_tiers())
        return Response(AlertSummarySerializer(summary).data)


router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = [
    path("alerts/summary/", AlertSummaryView.as_view(), name="alert-summary"),
    path("", include(router.urls)),
]
