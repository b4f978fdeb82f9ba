"""The SPD domain model. Each module holds one part of it; import from here."""
from inventory.models.alerts import Alert
from inventory.models.alliance import AllianceAgreement, AllianceEntry, AlliancePriceChange
from inventory.models.alliance_transfers import (
    AllianceTransfer,
    AllianceTransferLine,
    AllocationStatement,
    CentralOrder,
    CentralOrderAllocation,
)
from inventory.models.background import BackgroundJob
from inventory.models.billing import (
    HisSettlementLine,
    SupplierSettlement,
    SupplierSettlementEvent,
    SupplierSettlementLine,
)
from inventory.models.cabinets import CabinetSession
from inventory.models.catalog import PackagingUnit, Product, SupplyAgreement, TrackingMode
from inventory.models.clinical import Charge, ChargeDelivery, Consumption
from inventory.models.complaints import Complaint, Suspension
from inventory.models.distribution import ParLevelProposal, ReplenishmentSuggestion, Requisition, RequisitionLine
from inventory.models.documents import AcceptanceRecord, DeliveryLine, DeliveryNote, ReceivingDraft, StockOrder
from inventory.models.evaluation import (
    EvaluatedSupplier,
    EvaluationRun,
    EvaluationValue,
    EvaluationWeight,
    Indicator,
    IndicatorSet,
)
from inventory.models.history import (
    AllianceAgreementChange,
    AllianceEntryChange,
    CertificateChange,
    DepartmentChange,
    DeviceChange,
    HospitalChange,
    LocationChange,
    ManufacturerChange,
    PackagingUnitChange,
    ParLevelChange,
    ProductChange,
    SupplierChange,
    SupplyAgreementChange,
    UserRoleChange,
)
from inventory.models.idempotency import IdempotencyRecord
from inventory.models.notifications import Notification, NotificationRule
from inventory.models.organisation import Department, Hospital, Location
from inventory.models.parties import Certificate, Manufacturer, Supplier
from inventory.models.people import Role, User
from inventory.models.periods import ClosedPeriod, PeriodBalance, PeriodFlow, PeriodPlaceBalance
from inventory.models.picking import Delivery, DeliveryItem, PickedItem, PickList, PickListLine
from inventory.models.portal import AdvanceShippingNotice, AsnLine
from inventory.models.processing import LabelPrint, Pack, PackDefinition, PackDefinitionLine, PackMember
from inventory.models.procurement import (
    PlanDemandSource,
    PriceChange,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchasePlan,
    PurchasePlanLine,
)
from inventory.models.recall import Recall, RecallItem
from inventory.models.reconciliation import Finding, FindingDisposition, ReconciliationRun, StockFlowRow
from inventory.models.reservations import StockReservation
from inventory.models.review import ClinicalTeam, ClinicalTeamMember, DepartmentRevenue, RatioRedLine, WatchedItem
from inventory.models.stock import (
    IN_STOCK_STATUSES,
    UNIT_TRANSITIONS,
    LotBalance,
    LotCostLayer,
    LotMovementLayer,
    Movement,
    Owner,
    ParLevel,
    TagBinding,
    Unit,
    UnitStatus,
)
from inventory.models.stocktake import StocktakeFinding, StocktakeLine, StocktakeSession
from inventory.models.vbp import VbpAllocation, VbpContract, VbpExtension

__all__ = [
    "Alert", "BackgroundJob", "Finding", "FindingDisposition", "ParLevel", "ReconciliationRun", "StockFlowRow",
    "CabinetSession", "Charge", "ChargeDelivery", "Consumption", "HisSettlementLine", "SupplierSettlement",
    "SupplierSettlementLine", "SupplierSettlementEvent",
    "AcceptanceRecord", "Certificate", "DeliveryLine", "DeliveryNote", "Department", "Hospital",
    "IdempotencyRecord", "Location", "LotBalance", "LotCostLayer", "LotMovementLayer", "Manufacturer", "Movement", "Notification", "NotificationRule", "Owner", "Product", "Role",
    "ReceivingDraft", "StockOrder", "Supplier", "SupplyAgreement", "TagBinding", "TrackingMode", "IN_STOCK_STATUSES", "UNIT_TRANSITIONS", "Unit", "UnitStatus",
    "User",
    "StockReservation",
    # Picking, dispatch and receipt (inventory/models/picking.py)
    "Delivery", "DeliveryItem", "PickedItem", "PickList", "PickListLine",
    # Processing (inventory/models/processing.py)
    "LabelPrint", "Pack", "PackDefinition", "PackDefinitionLine", "PackMember",
    "ClosedPeriod", "PeriodBalance", "PeriodFlow", "PeriodPlaceBalance",
    "StocktakeFinding", "StocktakeLine", "StocktakeSession",
    "VbpAllocation", "VbpContract", "VbpExtension", "AdvanceShippingNotice", "AsnLine", "PriceChange", "PurchaseOrder", "PurchaseOrderLine", "PurchasePlan", "PurchasePlanLine", "PlanDemandSource",
    # Master-data history (inventory/models/history.py)
    "CertificateChange", "DepartmentChange", "DeviceChange", "HospitalChange", "LocationChange",
    "ManufacturerChange", "ParLevelChange", "ProductChange", "SupplierChange", "SupplyAgreementChange",
    "UserRoleChange",
    # Distribution (inventory/models/distribution.py)
    "ParLevelProposal", "ReplenishmentSuggestion", "Requisition", "RequisitionLine",
    # Units of measure (inventory/models/catalog.py)
    "PackagingUnit", "PackagingUnitChange",
    # Consumable review (inventory/models/review.py)
    "ClinicalTeam", "ClinicalTeamMember", "DepartmentRevenue", "RatioRedLine", "WatchedItem",
    # Recalls (inventory/models/recall.py)
    "Recall", "RecallItem",
    # Complaints and suspensions (inventory/models/complaints.py)
    "Complaint", "Suspension",
    # County alliance catalog (inventory/models/alliance.py)
    "AllianceAgreement", "AllianceEntry", "AlliancePriceChange", "AllianceAgreementChange", "AllianceEntryChange",
    # County alliance transfers, central purchasing, settlement (inventory/models/alliance_transfers.py)
    "AllianceTransfer", "AllianceTransferLine", "AllocationStatement", "CentralOrder", "CentralOrderAllocation",
    # Supplier evaluation (inventory/models/evaluation.py)
    "EvaluatedSupplier", "EvaluationRun", "EvaluationValue", "EvaluationWeight", "Indicator", "IndicatorSet",
]
