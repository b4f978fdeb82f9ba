"""Department expensing (科室领用即消耗) over the API: a department count that expenses what was used,
and the department's consumable cost (科室耗材成本) of a period.

- `POST department-expenses/` {location, counted?: [{product, lot, quantity, unit?}], note?,
  idempotency_key}: `services.expensing.expense_department_stock`; a count's quantity may be given
  in a packaging unit of the product (converted exactly, else 400 naming the field).
- `GET department-cost/?start=&end=&department=`: quantity (base units) and value per department ×
  product; a nurse sees her departments. The CSV/XLSX export is the web page's (`/expensing/`).
"""
import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.fields import (
    BoundedDateField,
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    idempotency_key,
    validated,
)
from inventory.api.permissions import STOCK_HANDLERS
from inventory.api.stock import StockOrderSerializer
from inventory.errors import Problem, Refused
from inventory.models import Department, Location, Product, Role
from inventory.selectors.expensing import department_cost
from inventory.selectors.stock import StockScope
from inventory.services.expensing import CountedLot, expense_department_stock
from inventory.services.reconciliation import check_period
from inventory.services.units_of_measure import to_base_quantity


class CountedLotSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    lot = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(
        max_digits=12, decimal_places=3, min_value=0,
        help_text="What is left, in `unit` (default: the base unit); must be a whole number of base units",
    )
    unit = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)


class DepartmentExpenseInputSerializer(IdempotentInputSerializer):
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    counted = CountedLotSerializer(
        many=True, required=False, allow_null=True, default=None,
        help_text="The count: lots left of the products it names. Absent: everything on hand is expensed.",
    )
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class DepartmentExpenseView(APIView):
    """Expense to the department what its count says was used of items expensed on issue (no HIS charge)."""

    write_roles = (*STOCK_HANDLERS, Role.NURSE)

    @extend_schema(request=DepartmentExpenseInputSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        data = validated(DepartmentExpenseInputSerializer, request)
        counted = None if data["counted"] is None else _counted_in_base_units(data["counted"])
        order = expense_department_stock(
            actor=Actor(user=request.user), location=data["location"], counted=counted, note=data["note"],
            idempotency_key=idempotency_key(request, data),
        )
        return Response(StockOrderSerializer(order).data, status=status.HTTP_201_CREATED)


def _counted_in_base_units(lines: list[dict]) -> list[CountedLot]:
    problems: list[Problem] = []
    counted = []
    for index, line in enumerate(lines):
        try:
            quantity = to_base_quantity(product=line["product"], quantity=line["quantity"], unit=line["unit"],
                                        field=f"counted[{index}].quantity", unit_field=f"counted[{index}].unit")
        except Refused as refused:
            problems += refused.problems
            continue
        counted.append(CountedLot(line["product"], line["lot"], quantity))
    if problems:
        raise Refused(problems)
    return counted


class DepartmentCostQuerySerializer(serializers.Serializer):
    start = BoundedDateField(required=False, help_text="First day (default: the first of this month)")
    end = BoundedDateField(required=False, help_text="Last day, included (default: today)")
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all(), required=False)


class DepartmentCostRowSerializer(serializers.Serializer):
    department = serializers.IntegerField(source="department_id")
    department_code = serializers.CharField()
    department_name = serializers.CharField()
    product = serializers.IntegerField(source="product.pk")
    product_code = serializers.CharField(source="product.internal_code")
    product_name = serializers.CharField(source="product.name")
    unit = serializers.CharField(source="product.unit_of_measure", help_text="The base unit of `quantity`")
    quantity = serializers.IntegerField()
    quantity_described = serializers.CharField(source="described", help_text='In packaging units: "3 盒 4 支"')
    value = serializers.DecimalField(max_digits=18, decimal_places=2)


class DepartmentCostSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    total = serializers.DecimalField(max_digits=18, decimal_places=2)
    rows = DepartmentCostRowSerializer(many=True)


class DepartmentCostView(APIView):
    """科室耗材成本: what each department had expensed in the period, per product, at cost."""

    @extend_schema(
        parameters=[
            OpenApiParameter("start", datetime.date), OpenApiParameter("end", datetime.date),
            OpenApiParameter("department", int),
        ],
        responses={200: DepartmentCostSerializer},
    )
    def get(self, request: Request) -> Response:
        query = DepartmentCostQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        today = timezone.localdate()
        start = query.validated_data.get("start", today.replace(day=1))
        end = query.validated_data.get("end", max(today, start))
        check_period(start, end)
        department = query.validated_data.get("department")
        report = department_cost(StockScope.of(request.user), start=start, end=end,
                                 department_id=department.pk if department else None)
        return Response(DepartmentCostSerializer(report).data)
