from django.urls import include, path
from rest_framework.routers import DefaultRouter

from inventory.api import alliance, cabinets, clinical, distribution, expensing, master_data, stock
from inventory.api.auth import ObtainTokenView
from inventory.api.receiving import DeliveryNoteViewSet

router = DefaultRouter()
router.registry.extend(master_data.router.registry)
router.register("delivery-notes", DeliveryNoteViewSet, basename="delivery-note")
router.register("units", stock.UnitViewSet, basename="unit")
router.register("movements", stock.MovementViewSet, basename="movement")
router.register("consumptions", clinical.ConsumptionViewSet, basename="consumption")
router.register("cabinet-sessions", cabinets.CabinetSessionViewSet, basename="cabinet-session")
router.register("pick-lists", distribution.PickListViewSet, basename="pick-list")
router.register("deliveries", distribution.DeliveryViewSet, basename="delivery")
router.register("alliance-transfers", alliance.AllianceTransferViewSet, basename="alliance-transfer")
router.register("central-orders", alliance.CentralOrderViewSet, basename="central-order")
router.register("allocation-statements", alliance.AllocationStatementViewSet, basename="allocation-statement")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("transfers/", stock.TransferView.as_view(), name="transfer"),
    path("returns/", stock.ReturnView.as_view(), name="return"),
    path("scraps/", stock.ScrapView.as_view(), name="scrap"),
    path("quarantine-releases/", stock.ReleaseFromQuarantineView.as_view(), name="quarantine-release"),
    path("takes/", cabinets.TakeView.as_view(), name="take"),
    path("takes/put-back/", cabinets.PutBackView.as_view(), name="put-back"),
    path("takes/overdue/", cabinets.OverdueTakesView.as_view(), name="overdue-takes"),
    # 科室领用即消耗: a department count that expenses what was used; 科室耗材成本 of a period.
    path("department-expenses/", expensing.DepartmentExpenseView.as_view(), name="department-expense"),
    path("department-cost/", expensing.DepartmentCostView.as_view(), name="department-cost"),
    path("", include("inventory.api.settlements")),
    path("", include("inventory.api.his")),
    path("", include("inventory.api.review")),
    path("", include("inventory.api.clinical_teams")),
    path("", include("inventory.api.notifications")),
    path("", include("inventory.api.alerts")),
    path("", include("inventory.api.reconciliation")),
    path("", include("inventory.api.history")),
    path("", include("inventory.api.requisitions")),
    path("", include("inventory.api.processing")),
    path("", include("inventory.api.period_close")),
    path("", include("inventory.api.stocktake")),
    path("", include("inventory.api.purchasing")),
    path("", include("inventory.api.portal")),
    path("", include("inventory.api.recall")),
    path("", include("inventory.api.complaints")),
    path("", include("inventory.api.alliance_catalog")),
    path("", include("inventory.api.central_planning")),
    path("", include("inventory.api.evaluation")),
    path("", include(router.urls)),
]
