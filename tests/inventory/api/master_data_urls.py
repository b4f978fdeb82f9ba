"""Mounts only the master-data router, so its tests do not depend on the project's URL wiring."""

from django.urls import include, path

from inventory.api.master_data import router

urlpatterns = [path("api/v1/", include(router.urls))]
