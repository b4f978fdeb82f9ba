"""The SPD domain model. Each module holds one part of it; import from here."""
from inventory.models.alerts import Alert
from inventory.models.background import BackgroundJob
from inventory.models.billing import HisSettlementLine, SupplierSettlement, SupplierSettlementLine
from inventory.models.cabinets import CabinetSession
from inventory.models.catalog import Product, SupplyAgreement, TrackingMode
from inventory.models.clinical import Charge, ChargeDelivery, Consumption
from inventory.models.documents import AcceptanceRecord, DeliveryLine, DeliveryNote, ReceivingDraft, StockOrder
from inventory.models.history import (
    CertificateChange,
    DepartmentChange,
    DeviceChange,
    HospitalChange,
    LocationChange,
    ManufacturerChange,
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
from inventory.models.portal import AdvanceShippingNotice, AsnLine
from inventory.models.procurement import (
    PriceChange,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchasePlan,
    PurchasePlanLine,
)
from inventory.models.reconciliation import Finding, FindingDisposition, ReconciliationRun
from inventory.models.stock import (
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
from inventory.models.vbp import VbpAllocation, VbpContract, VbpExtension

__all__ = [
    "Alert", "BackgroundJob", "Finding", "FindingDisposition", "ParLevel", "ReconciliationRun",
    "CabinetSession", "Charge", "ChargeDelivery", "Consumption", "HisSettlementLine", "SupplierSettlement",
    "SupplierSettlementLine",
    "AcceptanceRecord", "Certificate", "DeliveryLine", "DeliveryNote", "Department", "Hospital",
    "IdempotencyRecord", "Location", "LotBalance", "LotCostLayer", "LotMovementLayer", "Manufacturer", "Movement", "Notification", "NotificationRule", "Owner", "Product", "Role",
    "ReceivingDraft", "StockOrder", "Supplier", "SupplyAgreement", "TagBinding", "TrackingMode", "UNIT_TRANSITIONS", "Unit", "UnitStatus",
    "User",
    "VbpAllocation", "VbpContract", "VbpExtension", "AdvanceShippingNotice", "AsnLine", "PriceChange", "PurchaseOrder", "PurchaseOrderLine", "PurchasePlan", "PurchasePlanLine",
    # Master-data history (inventory/models/history.py)
    "CertificateChange", "DepartmentChange", "DeviceChange", "HospitalChange", "LocationChange",
    "ManufacturerChange", "ParLevelChange", "ProductChange", "SupplierChange", "SupplyAgreementChange",
    "UserRoleChange",
]
