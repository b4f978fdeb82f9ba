"""Clinical teams (诊疗组) and their dated memberships over the API (services.clinical_teams).

URLs, relative to /api/v1/:
    clinical-teams/                                  GET the caller's hospital's teams (?department=), POST create
    clinical-teams/<id>/                             GET one with its members, PATCH name, code, department, active
    clinical-teams/<id>/members/                     POST a doctor joins the team from `since` (until `until`)
    clinical-teams/<id>/members/<member>/end/        POST end an open membership on `until` (default today)

Read: the review readers (administrators, warehouse keepers, SPD operators, auditors, the 医保办/医务处
reviewer) for the whole hospital, nurses for their departments' teams; write: administrators and SPD
operators. Another hospital's team, or a member of it, is 404.
"""
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.api.fields import BoundedDateField, ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.permissions import REVIEW_READERS
from inventory.models import ClinicalTeam, ClinicalTeamMember, Department, Role
from inventory.selectors.clinical_teams import teams_visible_to
from inventory.services import clinical_teams as services

TEAM_READERS = (*REVIEW_READERS, Role.NURSE)
TEAM_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR)


class ClinicalTeamMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClinicalTeamMember
        fields = ["id", "doctor", "since", "until"]
        read_only_fields = fields


class ClinicalTeamSerializer(serializers.ModelSerializer):
    department_name = serializers.CharField(source="department.name", read_only=True)
    members = ClinicalTeamMemberSerializer(many=True, read_only=True)

    class Meta:
        model = ClinicalTeam
        fields = ["id", "hospital", "department", "department_name", "code", "name", "is_active", "members"]
        read_only_fields = fields


class ClinicalTeamInputSerializer(serializers.Serializer):
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all(),
                                              help_text="A department of the caller's hospital")
    code = serializers.CharField(max_length=32, help_text="Unique in the hospital")
    name = serializers.CharField(max_length=200)


class ClinicalTeamChangeSerializer(serializers.Serializer):
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all(), required=False)
    code = serializers.CharField(max_length=32, required=False)
    name = serializers.CharField(max_length=200, required=False)
    is_active = serializers.BooleanField(required=False)


class TeamMemberInputSerializer(serializers.Serializer):
    doctor = serializers.CharField(max_length=64, help_text="The doctor's HIS code")
    since = BoundedDateField(help_text="First day in the team")
    until = BoundedDateField(required=False, allow_null=True, default=None, help_text="Last day; empty: open")


class TeamMemberEndSerializer(serializers.Serializer):
    until = BoundedDateField(required=False, help_text="Last day in the team (default: today)")


class ClinicalTeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The clinical teams (诊疗组) of the caller's hospital, each with its dated memberships."""

    serializer_class = ClinicalTeamSerializer
    read_roles = TEAM_READERS
    write_roles = TEAM_WRITERS
    filterset_fields = ["department", "is_active"]

    def get_queryset(self) -> QuerySet:
        return teams_visible_to(self.request.user)

    @extend_schema(request=ClinicalTeamInputSerializer, responses={201: ClinicalTeamSerializer})
    def create(self, request: Request) -> Response:
        data = validated(ClinicalTeamInputSerializer, request)
        team = services.create_team(hospital=caller_hospital(request), department=data["department"],
                                    code=data["code"], name=data["name"])
        return Response(self.get_serializer(self.get_queryset().get(pk=team.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ClinicalTeamChangeSerializer, responses={200: ClinicalTeamSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        team = self.get_object()
        data = validated(ClinicalTeamChangeSerializer, request)
        services.update_team(team=team, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=team.pk)).data)

    @extend_schema(request=TeamMemberInputSerializer, responses={201: ClinicalTeamSerializer})
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk: str) -> Response:
        """A doctor joins the team; refused (409) when the doctor is then in two teams of the department on a day."""
        team = self.get_object()
        data = validated(TeamMemberInputSerializer, request)
        services.add_member(team=team, doctor=data["doctor"], since=data["since"], until=data["until"])
        return Response(self.get_serializer(self.get_queryset().get(pk=team.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamMemberEndSerializer, responses={200: ClinicalTeamSerializer})
    @action(detail=True, methods=["post"], url_path=r"members/(?P<member_id>[0-9]+)/end")
    def end_member(self, request: Request, pk: str, member_id: str) -> Response:
        """End an open membership: `until` is the doctor's last day in the team."""
        team = self.get_object()
        member = get_object_or_404(ClinicalTeamMember, team=team, pk=int(member_id))
        data = validated(TeamMemberEndSerializer, request)
        services.end_member(member=member, until=data.get("until") or timezone.localdate())
        return Response(self.get_serializer(self.get_queryset().get(pk=team.pk)).data)


router = SimpleRouter()
router.register("clinical-teams", ClinicalTeamViewSet, basename="clinical-team")

urlpatterns = [path("", include(router.urls))]
