from django.urls import include, path
from rest_framework.routers import DefaultRouter

from inventory.api import master_data, stock
from inventory.api.auth import ObtainTokenView
from inventory.api.receiving import DeliveryNoteViewSet

router = DefaultRouter()
router.registry.extend(master_data.router.registry)
router.register("delivery-notes", DeliveryNoteViewSet, basename="delivery-note")
router.register("units", stock.UnitViewSet, basename="unit")
router.register("movements", stock.MovementViewSet, basename="movement")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("transfers/", stock.TransferView.as_view(), name="transfer"),
    path("returns/", stock.ReturnView.as_view(), name="return"),
    path("scraps/", stock.ScrapView.as_view(), name="scrap"),
    path("", include(router.urls)),
]
