"""Signing in and out. Failed sign-ins count towards the django-axes lock-out, as API logins do."""
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

from inventory.web.forms import SignInForm


class SignInView(auth_views.LoginView):
    template_name = "web/login.html"
    form_class = SignInForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        if getattr(self.request.user, "supplier_id", None) is not None:
            return resolve_url("web:portal")  # a supplier's user: the supplier portal is all they use
        return resolve_url("web:dashboard")


class SignOutView(auth_views.LogoutView):
    """POST only (Django refuses a GET logout): the nav's sign-out button is a small form."""

    next_page = "web:login"


def locked_out(request: HttpRequest, credentials: dict | None = None) -> HttpResponse:
    """The page a person sees once django-axes has locked their username and address out (429)."""
    return render(request, "web/locked_out.html", status=429)
