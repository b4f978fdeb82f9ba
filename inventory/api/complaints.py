"""Complaints (书面投诉) and suspensions over the API (services.complaints).

- `complaints/`: written complaints about a supplier and/or a product; POST (JSON, or multipart with
  an `evidence_file` scan: PDF, PNG or JPEG); `{id}/decide/` upholds or dismisses it with a reason
  (SPD operators and administrators). Upholding the one too many suspends the supplier or product.
- `suspensions/[?active=true]`: suspensions; `{id}/lift/` lifts one with a reason (SPD operators and
  administrators). While one is in force, new purchase orders and acceptance answer 409
  SUPPLIER_SUSPENDED / PRODUCT_SUSPENDED.
"""
from django.db.models import QuerySet
from django.urls import include, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.actors import Actor
from inventory.api.fields import BoundedDateField, ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.permissions import BOOK_READERS, STOCK_HANDLERS
from inventory.models import Complaint, Product, Supplier, Suspension
from inventory.selectors.scope import visible_to
from inventory.services.complaints import decide_complaint, lift_suspension, record_complaint


class ComplaintInputSerializer(serializers.Serializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all(), required=False, allow_null=True)
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False, allow_null=True)
    received_on = BoundedDateField()
    complainant = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=200)
    evidence = serializers.CharField(max_length=10_000, help_text="What happened, as written")
    evidence_file = serializers.FileField(required=False, help_text="A scan: PDF, PNG or JPEG")


class DecideInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[Complaint.Outcome.UPHELD, Complaint.Outcome.DISMISSED])
    reason = serializers.CharField(max_length=2000)


class LiftInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ComplaintSerializer(serializers.ModelSerializer):
    evidence_file = serializers.FileField(read_only=True, allow_null=True)

    class Meta:
        model = Complaint
        fields = [
            "id", "hospital", "supplier", "product", "received_on", "complainant", "subject", "evidence",
            "evidence_file", "recorded_by", "recorded_at", "outcome", "outcome_reason", "decided_by", "decided_at",
        ]
        read_only_fields = fields


class SuspensionSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Suspension
        fields = [
            "id", "hospital", "supplier", "product", "complaints", "started_at", "is_active", "lifted_at",
            "lifted_by", "lift_reason",
        ]
        read_only_fields = fields


class ComplaintViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Written complaints about suppliers and products, and their outcome."""

    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    serializer_class = ComplaintSerializer
    parser_classes = [JSONParser, MultiPartParser]
    filterset_fields = ["supplier", "product", "outcome"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, Complaint.objects.all()).order_by("-received_on", "-pk")

    @extend_schema(
        request={"application/json": ComplaintInputSerializer, "multipart/form-data": ComplaintInputSerializer},
        responses={201: ComplaintSerializer},
    )
    def create(self, request: Request) -> Response:
        data = validated(ComplaintInputSerializer, request)
        complaint = record_complaint(
            actor=Actor(user=request.user), hospital=caller_hospital(request), supplier=data.get("supplier"),
            product=data.get("product"), received_on=data["received_on"], complainant=data["complainant"],
            subject=data["subject"], evidence=data["evidence"], evidence_file=data.get("evidence_file"),
        )
        return Response(self.get_serializer(complaint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DecideInputSerializer, responses={200: ComplaintSerializer})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def decide(self, request: Request, pk: str) -> Response:
        """Uphold or dismiss the complaint with a reason (SPD operators and administrators)."""
        complaint = self.get_object()
        data = validated(DecideInputSerializer, request)
        decided = decide_complaint(actor=Actor(user=request.user), complaint=complaint, outcome=data["outcome"],
                                   reason=data["reason"])
        return Response(self.get_serializer(decided).data)


class SuspensionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Suppliers and products suspended after upheld complaints; lifting one needs a reason."""

    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    serializer_class = SuspensionSerializer
    filterset_fields = ["supplier", "product"]

    def get_queryset(self) -> QuerySet:
        suspensions = visible_to(self.request.user, Suspension.objects.prefetch_related("complaints"))
        if self.request.query_params.get("active") == "true":
            suspensions = suspensions.filter(lifted_at=None)
        return suspensions.order_by("-started_at", "-pk")

    @extend_schema(parameters=[OpenApiParameter("active", str, enum=["true"], required=False,
                                                description="Only the suspensions in force")])
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=LiftInputSerializer, responses={200: SuspensionSerializer})
    @action(detail=True, methods=["post"])
    def lift(self, request: Request, pk: str) -> Response:
        """Lift the suspension with a reason (SPD operators and administrators)."""
        suspension = self.get_object()
        data = validated(LiftInputSerializer, request)
        lifted = lift_suspension(actor=Actor(user=request.user), suspension=suspension, reason=data["reason"])
        return Response(self.get_serializer(lifted).data)


router = SimpleRouter()
router.register("complaints", ComplaintViewSet, basename="complaint")
router.register("suspensions", SuspensionViewSet, basename="suspension")

urlpatterns = [path("", include(router.urls))]
