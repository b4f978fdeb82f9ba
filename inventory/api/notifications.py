"""Alert notification rules and their outbox over the API, relative to /api/v1/ — administrators only:

- `GET|POST alerts/notification-rules/`, `GET|PUT|PATCH|DELETE alerts/notification-rules/{id}/` —
  where the hospital's alerts are sent (e-mail recipients or a 企业微信 / 钉钉 robot's webhook URL),
  for which kind (empty: all) and from which severity; quiet hours; daily digest.
- `GET alerts/notifications/` (filters `status`, `kind`, `rule`, `alert`), `GET alerts/notifications/{id}/`
  — what was sent, when, and the last error of a failing channel.
- `POST alerts/notifications/{id}/resend/` — send a GAVE_UP (or FAILED) message again now.

Webhook URLs carry the robot's key and rules name people's addresses: only the hospital's
administrators read them. The signing secret is write-only.
"""
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.api.master_data import HospitalOwnedSerializer, HospitalOwnedViewSet
from inventory.models import Notification, NotificationRule, Role
from inventory.selectors.scope import visible_to
from inventory.services import notifications as notification_service


class AdministratorsOnly(BasePermission):
    """Reads too: rules hold webhook keys and people's addresses."""

    message = "Only administrators manage alert notifications."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or user.has_role(Role.ADMIN)))


@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?$", "example": "22:00",
                      "nullable": True})
class ClockTimeField(serializers.TimeField):
    """A time of day on the hospital's clock ("22:00"), with no offset: OpenAPI's `format: time` asks for one."""


class NotificationRuleSerializer(HospitalOwnedSerializer):
    quiet_start = ClockTimeField(required=False, allow_null=True, help_text="Quiet hours start (hospital time)")
    quiet_end = ClockTimeField(required=False, allow_null=True, help_text="Quiet hours end (hospital time)")
    secret = serializers.CharField(max_length=200, required=False, allow_blank=True, write_only=True,
                                   help_text="DingTalk 加签 secret (write-only)")
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = NotificationRule
        fields = [
            "id", "hospital", "name", "kind", "channel", "recipients", "webhook_url", "secret", "has_secret",
            "min_severity", "quiet_start", "quiet_end", "digest", "is_active", "created_at",
        ]
        read_only_fields = ["created_at"]

    def get_has_secret(self, rule: NotificationRule) -> bool:
        return bool(rule.secret)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        candidate = NotificationRule(**{
            field.name: attrs.get(field.name, getattr(self.instance, field.name, None))
            for field in NotificationRule._meta.concrete_fields if field.name not in ("id", "hospital")
        })
        try:
            candidate.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from error
        return attrs


class NotificationRuleViewSet(HospitalOwnedViewSet):
    """The caller's hospital's notification rules (administrators only)."""

    queryset = NotificationRule.objects.select_related("hospital").order_by("name", "pk")
    serializer_class = NotificationRuleSerializer
    permission_classes = [AdministratorsOnly]
    write_roles = (Role.ADMIN,)
    filterset_fields = ["channel", "kind", "is_active"]


class NotificationSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="rule.channel", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id", "hospital", "rule", "channel", "alert", "kind", "severity", "subject", "body", "status", "attempts",
            "created_at", "next_attempt_at", "sent_at", "last_error",
        ]
        read_only_fields = fields


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What was sent (or is waiting, or failing) to the caller's hospital's channels, newest first."""

    serializer_class = NotificationSerializer
    permission_classes = [AdministratorsOnly]
    filterset_fields = ["status", "kind", "rule", "alert"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return visible_to(self.request.user, Notification.objects.select_related("rule").order_by("-created_at", "-pk"))

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str) -> Response:
        """Send this message again at the relay's next run (its attempts start again)."""
        notification = notification_service.resend(notification=self.get_object())
        return Response(NotificationSerializer(notification).data)


router = SimpleRouter()
router.register("alerts/notification-rules", NotificationRuleViewSet, basename="notification-rule")
router.register("alerts/notifications", NotificationViewSet, basename="notification")

urlpatterns = [path("", include(router.urls))]
