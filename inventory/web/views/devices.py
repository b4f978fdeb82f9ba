"""Dead letters (死信) of the smart cabinets: MQTT messages the bridge refused, for the people who look
after the cabinets. Read only.

An MQTT cabinet learns of a refusal only on its results topic, which may have no reader; here the
warehouse staff, SPD operators, administrators (and auditors) of a hospital find what its cabinets
sent and why it was refused (devices.dead_letters), newest first. The same rows as
/api/v1/devices/rejected-messages/; messages of no known hospital only alliance administrators see.
"""
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from devices.dead_letters import REASONS, reason_of
from devices.models import RejectedMessage
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.web.access import READERS, web_page
from inventory.web.listing import Sort, listing

NO_DEVICE = "none"  # letters from a topic naming no known device
SORTS = (
    Sort("received", ("received_at",)),
    Sort("device", ("device__code", "topic")),
    Sort("reason", ("error_code",)),
    Sort("size", ("payload_bytes",)),
)
PAYLOAD_SHOWN = 4000  # characters of the stored payload on the page; the API gives all of it (64 KiB)


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class DeadLetterFilterForm(forms.Form):
    """The list's filters, from the query string; an invalid one filters nothing and is shown."""

    device = forms.ChoiceField(label=_("Cabinet or device"), required=False)
    received_from = forms.DateField(label=_("Received on or after"), required=False, widget=_date_input())
    received_to = forms.DateField(label=_("Received on or before"), required=False, widget=_date_input())
    reason = forms.ChoiceField(label=_("Reason"), required=False)

    def __init__(self, data: object, *, devices: QuerySet) -> None:
        super().__init__(data)
        self.fields["device"].choices = [
            ("", _("All")), (NO_DEVICE, _("No known device")),
            *[(str(device.pk), f"{device.code} {device.name}") for device in devices],
        ]
        self.fields["reason"].choices = [("", _("All reasons")), *REASONS.items()]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("received_from") and data.get("received_to") and data["received_to"] < data["received_from"]:
            self.add_error("received_to", _("The last day is before the first day."))
        return data

    def filter(self, letters: QuerySet) -> QuerySet:
        self.is_valid()
        data = self.cleaned_data
        if data.get("device") == NO_DEVICE:
            letters = letters.filter(device__isnull=True)
        elif data.get("device"):
            letters = letters.filter(device_id=int(data["device"]))
        if data.get("received_from") and "received_to" not in self.errors:
            letters = letters.filter(received_at__date__gte=data["received_from"])
        if data.get("received_to"):
            letters = letters.filter(received_at__date__lte=data["received_to"])
        if data.get("reason"):
            letters = letters.filter(error_code=data["reason"])
        return letters


def dead_letters_of(request: HttpRequest) -> QuerySet:
    """The dead letters the person may list: their hospital's (an alliance administrator's: all)."""
    return visible_to(request.user, RejectedMessage.objects.select_related("device", "hospital"))


@web_page(READERS)
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    form = DeadLetterFilterForm(request.GET, devices=StockScope.of(request.user).devices().order_by("code"))
    shown = listing(request, form.filter(dead_letters_of(request)), sorts=SORTS, default="-received")
    for letter in shown.page:
        letter.reason = reason_of(letter.error_code)
        letter.payload_shown = letter.payload[:PAYLOAD_SHOWN]
    return render(request, "web/cabinets/dead_letters.html", {
        "form": form, "page": shown.page, "listing": shown, "payload_shown": PAYLOAD_SHOWN,
    })
