"""Forms of the web pages: sign-in, the stock and alert filters, alert notes, the workstation."""
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from devices.identification import gs_substitute_problem
from devices.models import Device
from inventory.models import Alert, Product, UnitStatus
from inventory.selectors.stock import ANY_STATUS, ON_HAND, StockFilters, StockScope, find_product

GS = "\x1d"
GS_MARK = "\u241d"  # how scan-field.js shows a GS in a field; a form posted without JavaScript keeps it


class SignInForm(AuthenticationForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(
            {"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        )
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})
        # AuthenticationForm sets the username's max_length after the field is built, so nothing checks
        # it: a megabyte of username would reach authenticate() and django-axes' varchar(255) (a 500 on
        # PostgreSQL). A bounded password keeps hashing cheap, as the API login does.
        self.fields["username"].validators.append(MaxLengthValidator(self.fields["username"].max_length or 150))
        self.fields["password"].validators.append(MaxLengthValidator(4096))


class ProductChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, product: Product) -> str:
        return " ".join(part for part in (product.internal_code, product.name, product.specification) if part)


class ProductCodeField(forms.CharField):
    """A product given by its internal code or UDI-DI: typed, scanned, or picked from the suggestions
    the page fetches as one types (product-field.js). A hospital's catalog holds tens of thousands of
    products, far too many for a drop-down."""

    default_error_messages = {"unknown": _("No product with the code “%(code)s” in your catalog.")}

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_length", 300)
        kwargs.setdefault("widget", forms.TextInput(attrs={
            "list": "product-suggestions", "autocomplete": "off", "spellcheck": "false",
            "placeholder": _("Code, name or UDI-DI"),
        }))
        super().__init__(**kwargs)
        self.queryset: QuerySet = Product.objects.none()

    def clean(self, value: object) -> Product | None:
        code = super().clean(value)
        if not code:
            return None
        product = find_product(self.queryset, code)
        if product is None:
            raise ValidationError(self.error_messages["unknown"], code="unknown", params={"code": code})
        return product


class StockFilterForm(forms.Form):
    """The stock page's filters, read from the query string; choices limited to the person's scope."""

    CONSIGNMENT_CHOICES = (("", _("Own and consignment")), ("yes", _("Consignment only")), ("no", _("Own stock only")))

    q = forms.CharField(
        label=_("Search or scan"), required=False, max_length=300,
        widget=forms.TextInput(attrs={"placeholder": _("Serial, lot, product or scanned UDI"), "type": "search"}),
    )
    product = ProductCodeField(label=_("Product"), required=False)
    location = forms.ModelChoiceField(label=_("Location"), queryset=None, required=False,
                                      empty_label=_("All locations"))
    status = forms.ChoiceField(label=_("Status"), required=False)
    expiry_before = forms.DateField(label=_("Expiring by"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    expiry_after = forms.DateField(label=_("Expiring from"), required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    supplier = forms.ModelChoiceField(label=_("Supplier"), queryset=None, required=False,
                                      empty_label=_("All suppliers"))
    consignment = forms.ChoiceField(label=_("Ownership"), choices=CONSIGNMENT_CHOICES, required=False)

    def __init__(self, data: object, *, scope: StockScope, gs_substitute: str = "") -> None:
        super().__init__(data)
        self.gs_substitute = gs_substitute
        self.fields["q"].widget.attrs["data-gs-field"] = ""
        self.fields["product"].queryset = scope.products()
        self.fields["product"].widget.attrs["data-suggest-url"] = reverse("web:product-suggestions")
        self.fields["location"].queryset = scope.locations().order_by("code")
        self.fields["supplier"].queryset = scope.suppliers()
        self.fields["status"].choices = [(ON_HAND, _("On hand")), (ANY_STATUS, _("Any status")), *UnitStatus.choices]

    def clean_q(self) -> str:
        """A scanned UDI as the services read it: the field's GS mark (scan-field.js) and the
        workstation's GS substitute become a real GS."""
        text = self.cleaned_data["q"].replace(GS_MARK, GS)
        if self.gs_substitute:
            text = text.replace(self.gs_substitute, GS)
        return text.strip(" \r\n\t")

    def filters(self) -> StockFilters:
        """The filters asked for; an invalid field filters nothing (its error is shown)."""
        self.is_valid()
        data = self.cleaned_data  # holds the valid fields only
        consignment = {"yes": True, "no": False}.get(data.get("consignment") or "")
        return StockFilters(
            product=data.get("product"), location=data.get("location"), status=data.get("status") or ON_HAND,
            expiry_before=data.get("expiry_before"), expiry_after=data.get("expiry_after"), supplier=data.get("supplier"), consignment=consignment,
            text=data.get("q") or "",
        )


UNRESOLVED = "UNRESOLVED"
ALL = "ALL"


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Type"), required=False)
    severity = forms.ChoiceField(label=_("Severity"), required=False)
    # The keys of inventory.web.views.alerts.SORTS, each way round.
    SORT_CHOICES = (
        ("-last_seen", _("Last seen, newest first")), ("last_seen", _("Last seen, oldest first")),
        ("-raised", _("Raised, newest first")), ("raised", _("Raised, oldest first")),
        ("-severity", _("Most severe first")), ("severity", _("Least severe first")),
        ("kind", _("Type")), ("status", _("Status")),
        ("-occurrences", _("Most occurrences first")), ("occurrences", _("Fewest occurrences first")),
    )
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)

    def __init__(self, data: object) -> None:
        super().__init__(data)
        self.fields["status"].choices = [(UNRESOLVED, _("Not resolved")), *Alert.Status.choices, (ALL, _("All"))]
        self.fields["kind"].choices = [("", _("All types")), *Alert.Kind.choices]
        self.fields["severity"].choices = [("", _("All severities")), *Alert.Severity.choices]

    def values(self) -> dict:
        self.is_valid()
        data = self.cleaned_data
        return {"status": data.get("status") or UNRESOLVED, "kind": data.get("kind") or "",
                "severity": data.get("severity") or ""}


class AcknowledgeForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False, max_length=500)


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("Note"), max_length=500, error_messages={"required": _("Say how the alert was resolved.")},
    )


class StationForm(forms.Form):
    """Which scanner station this browser is: its configured GS substitute is used for scans here."""

    station = forms.ModelChoiceField(label=_("Scanner station"), queryset=Device.objects.none(), required=False,
                                     empty_label=_("None (scanner sends GS itself)"))

    def __init__(self, *args: object, stations: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations

    def clean_station(self) -> Device | None:
        station = self.cleaned_data["station"]
        if station is not None and (problem := gs_substitute_problem(station.gs_substitute or "|")):
            raise forms.ValidationError(
                _("This station's GS substitute cannot be used (%(problem)s); an administrator must change it."),
                params={"problem": problem},
            )
        return station
