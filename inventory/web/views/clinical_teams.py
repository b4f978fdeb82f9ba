"""Clinical team (诊疗组) pages: the hospital's teams (create), one team (edit it, a doctor joins from a
day, a membership ends). Read by the review readers and nurses (their departments' teams); changed by
administrators and SPD operators. `inventory.services.clinical_teams` decides."""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from inventory.errors import Refused
from inventory.models import Department, Role
from inventory.selectors.clinical_teams import teams_visible_to
from inventory.services import clinical_teams as services
from inventory.web.access import REVIEW_READERS, may, web_page
from inventory.web.operations import hospital_for
from inventory.web.problems import problems_of

TEAM_READERS = REVIEW_READERS | {Role.NURSE}
TEAM_WRITERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class TeamForm(forms.Form):
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    code = forms.CharField(label=_("Code"), max_length=32)
    name = forms.CharField(label=_("Name"), max_length=200)

    def __init__(self, *args: object, hospital: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = Department.objects.filter(hospital=hospital).order_by("code")


class TeamChangeForm(TeamForm):
    is_active = forms.BooleanField(label=_("Active"), required=False)


class MemberForm(forms.Form):
    doctor = forms.CharField(label=_("Doctor (HIS code)"), max_length=64)
    since = forms.DateField(label=_("Member since"), widget=DATE)
    until = forms.DateField(label=_("Member until"), widget=DATE, required=False,
                            help_text=_("Empty: still in the team"))


class EndForm(forms.Form):
    end = forms.IntegerField(min_value=1)
    until = forms.DateField(label=_("Last day in the team"), widget=DATE)


@web_page(TEAM_READERS)
def team_list(request: HttpRequest) -> HttpResponse:
    may_edit = may(request.user, TEAM_WRITERS) and request.user.hospital_id is not None
    form, problems, status = None, [], 200
    if may_edit:
        form = TeamForm(request.POST if request.method == "POST" else None, hospital=hospital_for(request))
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        if form.is_valid():
            try:
                team = services.create_team(hospital=hospital_for(request), **form.cleaned_data)
            except Refused as refused:
                problems, status = problems_of(refused), refused.status
            else:
                messages.success(request, gettext("Clinical team %(team)s is created.") % {"team": team.name})
                return redirect("web:clinical-team", pk=team.pk)
        else:
            problems, status = problems_of(form), 400
    return render(request, "web/clinical_teams/list.html", {
        "teams": teams_visible_to(request.user), "form": form, "may_edit": may_edit, "problems": problems,
        "today": timezone.localdate(),
    }, status=status)


@web_page(TEAM_READERS)
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(teams_visible_to(request.user), pk=pk)
    may_edit = may(request.user, TEAM_WRITERS)
    today = timezone.localdate()
    edit_form = TeamChangeForm(initial={"department": team.department_id, "code": team.code, "name": team.name,
                                        "is_active": team.is_active}, hospital=team.hospital)
    member_form = MemberForm(initial={"since": today})
    problems, status = [], 200
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        try:
            if "end" in request.POST:
                form = EndForm(request.POST)
                if form.is_valid():
                    member = get_object_or_404(team.members.all(), pk=form.cleaned_data["end"])
                    services.end_member(member=member, until=form.cleaned_data["until"])
                    messages.success(request, gettext("The membership of %(doctor)s ends on %(until)s.") % {
                        "doctor": member.doctor, "until": form.cleaned_data["until"]})
                    return redirect("web:clinical-team", pk=team.pk)
            elif "doctor" in request.POST:
                form = member_form = MemberForm(request.POST)
                if form.is_valid():
                    services.add_member(team=team, **form.cleaned_data)
                    messages.success(request, gettext("%(doctor)s joins %(team)s.") % {
                        "doctor": form.cleaned_data["doctor"], "team": team.name})
                    return redirect("web:clinical-team", pk=team.pk)
            else:
                form = edit_form = TeamChangeForm(request.POST, hospital=team.hospital)
                if form.is_valid():
                    services.update_team(team=team, **form.cleaned_data)
                    messages.success(request, gettext("Clinical team %(team)s is saved.") % {
                        "team": form.cleaned_data["name"]})
                    return redirect("web:clinical-team", pk=team.pk)
            problems, status = problems_of(form), 400
        except Refused as refused:
            problems, status = problems_of(refused), refused.status
    return render(request, "web/clinical_teams/detail.html", {
        "team": team, "members": team.members.all(), "may_edit": may_edit, "edit_form": edit_form,
        "member_form": member_form, "problems": problems, "today": today,
    }, status=status)
