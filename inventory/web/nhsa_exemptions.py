"""The 医保 code exemption reasons a planning page takes (国家医保编码 missing: bought only with a
reason): a hospital's plan from demand (`views.purchase_plans`) and the alliance's central plan
(`views.central_purchasing`) offer one field per product not planned for want of a 医保 code
(`web/purchasing/_nhsa_exemptions.html`), then propose again with the reasons typed."""
from collections.abc import Iterable

from django.http import HttpRequest

from inventory.errors import Problem, Refusal
from inventory.models import Product

FIELD = "nhsa_exemption"  # the form field of a product: nhsa_exemption-<product pk>


def typed_exemptions(request: HttpRequest) -> dict[int, str]:
    """The exemption reasons typed, by product (`nhsa_exemption-<pk>`; blank ones left out)."""
    return {int(product): value.strip()[:500] for key, value in request.POST.items()
            for kind, _dash, product in [key.rpartition("-")]
            if kind == FIELD and product.isdigit() and value.strip()}


def products_to_exempt(problems: Iterable[Problem]) -> list[Product]:
    """The products of the NHSA_CODE_MISSING problems among `problems`, each once, by name: the page
    offers an exemption reason for each."""
    products = {problem.params["product"].pk: problem.params["product"] for problem in problems
                if problem.refusal is Refusal.NHSA_CODE_MISSING}
    return sorted(products.values(), key=lambda product: (product.name, product.pk))
