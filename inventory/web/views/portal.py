"""The supplier portal's pages (供应商门户), for a supplier's own users: the orders addressed to their
supplier across hospitals, and advance shipping notices (电子送货单) built by pasting UDIs, one per
line, and the consignment settlement statements the hospitals issued to the supplier (confirm,
dispute with a reason, download). Every rule is `services.portal` / `services.settlement_workflow`; another supplier's order or notice is a 404 here too, and
the hospital's pages stay closed to portal users (they have no hospital: `access.may`).
"""
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AsnLine, PurchaseOrderLine, Role
from inventory.selectors.portal_statements import portal_statements, statement_events, statement_lines
from inventory.services.portal import (
    AsnLineInput,
    RefusedLine,
    add_asn_lines,
    create_asn,
    portal_notices,
    portal_orders,
    remove_asn_line,
    submit_asn,
)
from inventory.services.settlement_workflow import dispute_statement, supplier_confirm_statement
from inventory.services.statement_files import FORMATS, statement_file
from inventory.web.access import LOGIN_URL
from inventory.web.problems import flash_problems

MAX_PASTED_LINES = 2000


def is_portal_user(user: object) -> bool:
    return bool(
        getattr(user, "is_authenticated", False) and getattr(user, "supplier_id", None) is not None
        and not user.is_superuser and user.groups.filter(name=Role.SUPPLIER.value).exists()
    )


def portal_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in required, then a supplier's own user (else 403)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not is_portal_user(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(guarded, login_url=LOGIN_URL)


def pasted_lines(text: str) -> list[AsnLineInput]:
    """One UDI per pasted line; blank lines skipped. A HIBC code keeps its trailing space (its check
    character may be one); other codes are trimmed."""
    lines = []
    for raw in text.splitlines()[:MAX_PASTED_LINES]:
        if not raw.strip():
            continue
        lines.append(AsnLineInput(udi=raw if raw.lstrip().startswith("+") else raw.strip()))
    return lines


def _flash_refused(request: HttpRequest, refused: list[RefusedLine]) -> None:
    for line in refused:
        for problem in line.problems:
            messages.error(
                request, _("Line %(position)s (%(udi)s): %(detail)s") % {
                    "position": line.position, "udi": line.udi, "detail": problem.detail,
                }, extra_tags=f"problem {problem.code}",
            )


@portal_page
def home(request: HttpRequest) -> HttpResponse:
    orders = portal_orders(request.user).select_related("hospital").order_by("-ordered_at", "-pk")[:200]
    notices = portal_notices(request.user).select_related("hospital", "purchase_order").order_by(
        "-created_at", "-pk"
    )[:200]
    statements = portal_statements(request.user)[:200]
    return render(request, "web/portal/home.html", {"orders": orders, "notices": notices, "statements": statements})


@portal_page
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lines = PurchaseOrderLine.objects.select_related("product").order_by("line_no")
    order = get_object_or_404(
        portal_orders(request.user).select_related("hospital").prefetch_related(Prefetch("lines", lines)), pk=pk
    )
    if request.method == "POST":
        try:
            asn, refused = create_asn(
                actor=Actor(user=request.user), order=order, number=request.POST.get("number", ""),
                lines=pasted_lines(request.POST.get("udis", "")),
            )
        except Refused as error:
            flash_problems(request, error)
            return redirect("web:portal-order", pk=order.pk)
        _flash_refused(request, refused)
        return redirect("web:portal-notice", pk=asn.pk)
    return render(request, "web/portal/order.html", {
        "order": order, "lines": order.lines.all(), "notices": order.shipping_notices.order_by("created_at", "pk"),
    })


@portal_page
def notice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    asn = get_object_or_404(
        portal_notices(request.user).select_related("hospital", "purchase_order", "delivery_note").prefetch_related(
            Prefetch("lines", AsnLine.objects.select_related("product").order_by("line_no"))
        ),
        pk=pk,
    )
    if request.method == "POST":
        try:
            _, refused = add_asn_lines(
                actor=Actor(user=request.user), asn=asn, lines=pasted_lines(request.POST.get("udis", ""))
            )
        except Refused as error:
            flash_problems(request, error)
        else:
            _flash_refused(request, refused)
        return redirect("web:portal-notice", pk=asn.pk)
    return render(request, "web/portal/notice.html", {"asn": asn, "lines": asn.lines.all()})


@require_POST
@portal_page
def notice_remove_line(request: HttpRequest, pk: int, line_no: int) -> HttpResponse:
    asn = get_object_or_404(portal_notices(request.user), pk=pk)
    try:
        remove_asn_line(actor=Actor(user=request.user), asn=asn, line_no=line_no)
    except Refused as error:
        flash_problems(request, error)
    return redirect("web:portal-notice", pk=asn.pk)


@require_POST
@portal_page
def notice_submit(request: HttpRequest, pk: int) -> HttpResponse:
    asn = get_object_or_404(portal_notices(request.user), pk=pk)
    try:
        submit_asn(actor=Actor(user=request.user), asn=asn)
    except Refused as error:
        flash_problems(request, error)
    else:
        messages.success(request, _("Shipping notice %(number)s is submitted: the hospital will accept it on arrival.")
                         % {"number": asn.number})
    return redirect("web:portal-notice", pk=asn.pk)


@portal_page
def statement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One statement: its lines (no encounter, no department), its steps, and the supplier's answer."""
    statement = get_object_or_404(portal_statements(request.user), pk=pk)
    return render(request, "web/portal/statement.html", {
        "statement": statement, "lines": statement_lines(statement), "events": statement_events(statement),
        "formats": FORMATS,
    })


@require_POST
@portal_page
def statement_answer(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm the statement, or dispute it with a reason (`answer` = confirm | dispute)."""
    statement = get_object_or_404(portal_statements(request.user), pk=pk)
    actor = Actor(user=request.user)
    try:
        if request.POST.get("answer") == "dispute":
            dispute_statement(settlement=statement, actor=actor, reason=request.POST.get("reason", ""))
            messages.success(request, _("Your dispute is sent to the hospital."))
        else:
            supplier_confirm_statement(settlement=statement, actor=actor)
            messages.success(request, _("You confirmed the statement: the hospital may now settle it."))
    except Refused as error:
        flash_problems(request, error)
    return redirect("web:portal-statement", pk=statement.pk)


@portal_page
def statement_download(request: HttpRequest, pk: int, file_format: str) -> HttpResponse:
    statement = get_object_or_404(portal_statements(request.user), pk=pk)
    if file_format not in FORMATS:
        raise Http404
    file = statement_file(statement, file_format)
    response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    return response
