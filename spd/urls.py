from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from inventory.api.docs import OfflineRedocView
from inventory.web.health import healthz

# Under /api/ these answer the JSON error body; elsewhere Django's pages (inventory/api/errors.py).
handler400 = "inventory.api.errors.bad_request"
handler403 = "inventory.api.errors.permission_denied"
handler404 = "inventory.api.errors.page_not_found"
handler500 = "inventory.api.errors.server_error"

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("inventory.api.urls")),
    path("api/v1/", include("devices.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", OfflineRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The people's pages, last: they own the site root.
    path("", include("inventory.web.urls")),
]
