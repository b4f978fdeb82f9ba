from django.urls import include, path
from rest_framework.routers import DefaultRouter

from devices.api import (
    DeviceEventOutcomesView,
    DeviceEventsView,
    DeviceViewSet,
    RejectedMessageViewSet,
    ScanResolveView,
)

router = DefaultRouter()
router.register("devices/rejected-messages", RejectedMessageViewSet, basename="rejected-message")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    # Before the router, so that devices/events/ is not read as a device id.
    path("devices/events/", DeviceEventsView.as_view(), name="device-events"),
    path("devices/events/outcomes/", DeviceEventOutcomesView.as_view(), name="device-event-outcomes"),
    path("scans/resolve/", ScanResolveView.as_view(), name="scan-resolve"),
    path("", include(router.urls)),
]
