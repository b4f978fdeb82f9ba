"""Change history (变更记录) of master data, for auditors and the people who keep the books.

One kind of master data at a time (products, agreements, suppliers, …, user roles), newest first,
optionally one object (`?kind=products&object=12`): who changed it, when, and each changed field's
value before and after. Reads only; the rows are written by the database (inventory/models/history.py).
"""
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from inventory.history import history_is_recorded
from inventory.selectors import history
from inventory.web.access import READERS, web_page

PAGE_SIZE = 50
ACTIONS = {
    "create": _("created"), "update": _("changed"), "delete": _("deleted"),
    "baseline": _("state when history began"), "role_added": _("role added"), "role_removed": _("role removed"),
}


class HistoryFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), required=False, choices=[(k.slug, k.label) for k in history.KINDS.values()])
    object = forms.IntegerField(label=_("Id"), required=False, min_value=1)


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Row:
    change: history.Change
    object_label: str
    action_label: str
    fields: list[FieldChange]


@web_page(READERS)
def change_history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    form.is_valid()
    kind = history.KINDS[form.cleaned_data.get("kind") or "products"]
    object_id = form.cleaned_data.get("object")
    page = Paginator(history.changes(kind, request.user, object_id=object_id), PAGE_SIZE).get_page(request.GET.get("page"))
    changes = history.describe(kind, list(page))
    labels = {obj.pk: str(obj) for obj in kind.model.objects.filter(pk__in={c.object_id for c in changes})}
    rows = [
        Row(
            change, labels.get(change.object_id, f"#{change.object_id}"), str(ACTIONS.get(change.action, change.action)),
            [FieldChange(name, (change.before or {}).get(name), (change.after or {}).get(name)) for name in change.changed],
        )
        for change in changes
    ]
    return render(request, "web/history.html", {
        "form": form, "page": page, "rows": rows, "kind": kind, "object_id": object_id,
        "recorded": history_is_recorded(),
    })
