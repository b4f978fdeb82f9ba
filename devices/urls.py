from django.urls import include, path
from rest_framework.routers import DefaultRouter

from devices.api import DeviceEventsView, DeviceViewSet, ScanResolveView

router = DefaultRouter()
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    # Before the router, so that devices/events/ is not read as a device id.
    path("devices/events/", DeviceEventsView.as_view(), name="device-events"),
    path("scans/resolve/", ScanResolveView.as_view(), name="scan-resolve"),
    path("", include(router.urls)),
]
