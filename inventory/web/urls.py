"""The people's pages, at the site root. The API lives under /api/v1/ (inventory.api.urls)."""
from django.urls import path

from inventory.web.views import (
    alerts,
    auth,
    bedside,
    cabinets,
    dashboard,
    his,
    history,
    moves,
    receiving,
    reconciliation,
    station,
    stock,
    trace,
)

app_name = "web"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.SignInView.as_view(), name="login"),
    path("logout/", auth.SignOutView.as_view(), name="logout"),
    path("stock/", stock.units, name="stock"),
    path("stock/lots/", stock.lots, name="stock-lots"),
    path("products/suggest/", stock.product_suggestions, name="product-suggestions"),
    path("units/<int:pk>/", trace.unit_trace, name="unit-trace"),
    path("scan/", trace.scan, name="scan"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", alerts.acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve/", alerts.resolve, name="alert-resolve"),
    path("station/", station.choose_station, name="station"),
    path("his/", his.delivery_list, name="his-deliveries"),
    # Operations: receiving (验收), smart cabinets, use at the bedside, transfers / returns / scraps.
    path("receiving/", receiving.note_list, name="receiving"),
    path("receiving/find/", receiving.find_note, name="receiving-find"),
    path("receiving/new/", receiving.new_delivery, name="receiving-new"),
    path("receiving/new/<slug:key>/", receiving.draft, name="receiving-draft"),
    path("receiving/new/<slug:key>/scan/", receiving.draft_scan, name="receiving-draft-scan"),
    path("receiving/new/<slug:key>/lot/", receiving.draft_lot, name="receiving-draft-lot"),
    path("receiving/new/<slug:key>/remove/<int:line_no>/", receiving.draft_remove, name="receiving-draft-remove"),
    path("receiving/new/<slug:key>/discard/", receiving.draft_discard, name="receiving-draft-discard"),
    path("receiving/<int:pk>/", receiving.note_detail, name="receiving-note"),
    path("receiving/<int:pk>/scan/", receiving.note_scan, name="receiving-note-scan"),
    path("receiving/<int:pk>/accept/", receiving.accept, name="receiving-accept"),
    path("cabinets/", cabinets.cabinet_list, name="cabinets"),
    path("cabinets/<int:pk>/", cabinets.cabinet_detail, name="cabinet"),
    path("use/", bedside.use, name="bedside"),
    path("use/scan/", bedside.consume_scan, name="bedside-scan"),
    path("use/lot/", bedside.consume_lot_use, name="bedside-lot"),
    path("use/<int:pk>/refund/", bedside.refund, name="bedside-refund"),
    path("moves/", moves.transfer, name="moves"),
    path("moves/return/", moves.return_units, name="moves-return"),
    path("moves/scrap/", moves.scrap_units, name="moves-scrap"),
    path("moves/release/", moves.release_units, name="moves-release"),
    path("moves/scan/", moves.scan, name="moves-scan"),
    path("moves/orders/<int:pk>/", moves.order_detail, name="moves-order"),
    path("moves/orders/<int:pk>/document.pdf", moves.order_pdf, name="moves-order-pdf"),
    # 进销存 reconciliation: runs by period, one run (findings, stock table, chart), its reports.
    path("reconciliation/", reconciliation.run_list, name="reconciliation"),
    path("reconciliation/run/", reconciliation.start_run, name="reconciliation-start"),
    path("reconciliation/<int:pk>/", reconciliation.run_detail, name="reconciliation-run"),
    path("reconciliation/<int:pk>/rerun/", reconciliation.rerun, name="reconciliation-rerun"),
    path("reconciliation/<int:pk>/report.<str:report_format>", reconciliation.report, name="reconciliation-report"),
    # Master-data history (变更记录), read only.
    path("history/", history.change_history, name="history"),
]
