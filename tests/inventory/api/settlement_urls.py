"""Mounts only the settlement API, so its tests do not depend on the project's URL wiring."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("inventory.api.settlements"))]
