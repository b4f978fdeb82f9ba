from django.urls import include, path
from rest_framework.routers import DefaultRouter

from inventory.api import cabinets, clinical, master_data, stock
from inventory.api.auth import ObtainTokenView
from inventory.api.receiving import DeliveryNoteViewSet

router = DefaultRouter()
router.registry.extend(master_data.router.registry)
router.register("delivery-notes", DeliveryNoteViewSet, basename="delivery-note")
router.register("units", stock.UnitViewSet, basename="unit")
router.register("movements", stock.MovementViewSet, basename="movement")
router.register("consumptions", clinical.ConsumptionViewSet, basename="consumption")
router.register("cabinet-sessions", cabinets.CabinetSessionViewSet, basename="cabinet-session")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("transfers/", stock.TransferView.as_view(), name="transfer"),
    path("returns/", stock.ReturnView.as_view(), name="return"),
    path("scraps/", stock.ScrapView.as_view(), name="scrap"),
    path("quarantine-releases/", stock.ReleaseFromQuarantineView.as_view(), name="quarantine-release"),
    path("takes/", cabinets.TakeView.as_view(), name="take"),
    path("takes/put-back/", cabinets.PutBackView.as_view(), name="put-back"),
    path("takes/overdue/", cabinets.OverdueTakesView.as_view(), name="overdue-takes"),
    path("", include("inventory.api.settlements")),
    path("", include("inventory.api.his")),
    path("", include("inventory.api.notifications")),
    path("", include("inventory.api.alerts")),
    path("", include("inventory.api.reconciliation")),
    path("", include("inventory.api.history")),
    path("", include("inventory.api.purchasing")),
    path("", include("inventory.api.portal")),
    path("", include(router.urls)),
]
