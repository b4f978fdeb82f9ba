"""A product's packaging units (包装单位) on the web: `/products/<id>/packaging/`.

Everyone who reads the books sees them; warehouse staff, SPD operators and administrators edit
them. The page checks them exactly as the API does (`api.master_data.PackagingUnitSerializer` and
`_check_packaging_units`: a whole factor of at least 2, names and factors unique and not the base
unit, at most one purchase and one billing unit) and replaces them the same way, so their history
(pghistory, `/history/?kind=packaging-units`) reads the same whichever way they were changed.
Stock and the ledger are in base units: changing a packaging unit moves nothing.
"""
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from rest_framework import serializers

from inventory.api.master_data import PackagingUnitSerializer, _check_packaging_units, _replace_packaging_units
from inventory.models import Product
from inventory.selectors.scope import visible_to
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.problems import ShownProblem

BLANK_ROWS = 2


@dataclass
class UnitRow:
    index: int
    name: str = ""
    factor: str = ""
    is_purchase_unit: bool = False
    is_billing_unit: bool = False


def _rows_of(product: Product) -> list[UnitRow]:
    units = sorted(product.packaging_units.all(), key=lambda unit: -unit.factor)
    rows = [UnitRow(index, unit.name, str(unit.factor), unit.is_purchase_unit, unit.is_billing_unit)
            for index, unit in enumerate(units)]
    return rows + [UnitRow(len(rows) + extra) for extra in range(BLANK_ROWS)]


def _posted_rows(request: HttpRequest) -> list[UnitRow]:
    count = min(int(request.POST.get("rows", "0") or 0) if request.POST.get("rows", "").isdigit() else 0, 50)
    purchase, billing = request.POST.get("purchase", ""), request.POST.get("billing", "")
    return [UnitRow(index, request.POST.get(f"name-{index}", "").strip(), request.POST.get(f"factor-{index}", "").strip(),
                    purchase == str(index), billing == str(index)) for index in range(count)]


def _flatten(detail: object, where: str) -> list[ShownProblem]:
    """DRF validation errors as problems naming the field (`packaging_units[1].factor`)."""
    if isinstance(detail, dict):
        return [problem for key, value in detail.items()
                for problem in _flatten(value, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}")]
    if isinstance(detail, list) and detail and all(isinstance(item, dict) for item in detail):
        return [problem for index, item in enumerate(detail) for problem in _flatten(item, f"{where}[{index}]")]
    if isinstance(detail, list):
        return [problem for item in detail for problem in _flatten(item, where)]
    return [ShownProblem("INVALID_REQUEST", f"{where}: {detail}", where)]


@web_page(READERS)
def product_packaging(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(visible_to(request.user, Product.objects.all()).prefetch_related("packaging_units"),
                                pk=pk)
    may_edit = may(request.user, STOCK_HANDLERS)
    rows, problems = _rows_of(product), []
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        rows = _posted_rows(request)
        filled = [row for row in rows if row.name or row.factor]
        data = [{"name": row.name, "factor": row.factor, "is_purchase_unit": row.is_purchase_unit,
                 "is_billing_unit": row.is_billing_unit} for row in filled]
        units = PackagingUnitSerializer(data=data, many=True)
        try:
            if not units.is_valid():
                raise serializers.ValidationError({"packaging_units": units.errors})
            _check_packaging_units(units.validated_data, product.unit_of_measure)
        except serializers.ValidationError as invalid:
            problems = _flatten(invalid.detail["packaging_units"], "packaging_units")
        else:
            with transaction.atomic():
                locked = Product.objects.select_for_update().get(pk=product.pk)
                _replace_packaging_units(locked, units.validated_data)
            messages.success(request, _("The packaging units are saved."))
            return redirect("web:product-packaging", pk=product.pk)
    return render(request, "web/purchasing/packaging.html", {
        "product": product, "rows": rows, "may_edit": may_edit, "problems": problems,
        "base_purchase": not any(row.is_purchase_unit for row in rows),
        "base_billing": not any(row.is_billing_unit for row in rows),
    }, status=400 if problems else 200)
