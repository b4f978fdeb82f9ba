"""Labels: what is printed decodes, and the decoded scan resolves like a supplier's UDI to the same item."""
import base64
import re
import zlib

import pytest
import zxingcpp
from PIL import Image

from devices.identification import is_valid_gtin
from inventory.errors import Refused
from inventory.models import LabelPrint, LotBalance
from inventory.selectors.units import resolve_scan
from inventory.services.labels import internal_gtin, print_lot_label, print_unit_labels
from tests.conftest import stock_units
from tests.inventory.test_processing import (  # noqa: F401 (fixtures)
    EARLY,
    assemble,
    lot_scan,
    station,
    stocked_station,
    syringe_pack,
)
from tests.pdf_text import shown_strings

pytestmark = pytest.mark.django_db

_IMAGE = re.compile(rb"<<([^>]*?/Subtype /Image[^>]*?)>>\s*stream\r?\n", re.S)


def images_in(pdf: bytes) -> list[Image.Image]:
    """The greyscale images a reportlab PDF holds (ASCII85 + Flate, 8 bits per pixel)."""
    images = []
    for match in _IMAGE.finditer(pdf):
        header = match.group(1)
        width, height, length = (int(re.search(rb"/%s (\d+)" % name, header).group(1))
                                 for name in (b"Width", b"Height", b"Length"))
        assert b"/DeviceGray" in header and b"/BitsPerComponent 8" in header
        data = pdf[match.end():match.end() + length].strip().removesuffix(b"~>")
        images.append(Image.frombytes("L", (width, height), zlib.decompress(base64.a85decode(data))))
    return images


def scanned(image: Image.Image) -> str:
    """What a scanner configured to send GS and its symbology identifier would send."""
    result = zxingcpp.read_barcode(image, text_mode=zxingcpp.TextMode.Plain)
    assert result is not None and result.valid
    return result.symbology_identifier + result.text


@pytest.fixture
def pack(keeper_actor, syringe_pack, stocked_station, lot_product):  # noqa: F811
    return assemble(keeper_actor, syringe_pack, stocked_station, [lot_scan(lot_product, "L-EARLY", 10, EARLY)])


@pytest.mark.parametrize(("symbology", "identifier"), [("DATAMATRIX", "]d2"), ("GS1_128", "]C1")])
def test_a_printed_pack_label_decodes_and_resolves_to_the_same_pack(hospital, keeper, pack, symbology, identifier):
    pdf = print_unit_labels(units=[pack.unit], user=keeper, symbology=symbology)
    assert b"/MediaBox [ 0 0 170.0787 113.3858 ]" in pdf  # 60 × 40 mm
    assert any("注射器定数包" in text for text in shown_strings(pdf))
    assert any(str(EARLY) in text for text in shown_strings(pdf)), shown_strings(pdf)
    [image] = images_in(pdf)
    code = scanned(image)
    assert code.startswith(identifier)
    resolution = resolve_scan(hospital, code)
    assert resolution.unit == pack.unit and resolution.product == pack.definition.pack_product
    assert resolution.udi.expiry == EARLY


def test_an_internal_lot_label_and_a_suppliers_unit_relabelled_resolve_too(
    hospital, keeper, keeper_actor, supplier, warehouse, product, stocked_station, lot_product  # noqa: F811
):
    balance = LotBalance.objects.get(lot="L-EARLY", location=stocked_station)
    [image] = images_in(print_lot_label(balance=balance, user=keeper, symbology="GS1_128"))
    resolution = resolve_scan(hospital, scanned(image))
    assert (resolution.product, resolution.udi.lot, resolution.udi.expiry) == (lot_product, "L-EARLY", EARLY)
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["RELABEL1"], lot="LX")[0]
    [image] = images_in(print_unit_labels(units=[unit], user=keeper))
    assert resolve_scan(hospital, scanned(image)).unit == unit


def test_reprints_are_logged_as_reprints(keeper, pack):
    print_unit_labels(units=[pack.unit], user=keeper)
    print_unit_labels(units=[pack.unit], user=keeper, copies=2, reason="label torn")
    assert list(LabelPrint.objects.order_by("pk").values_list("is_reprint", "copies", "reason", "printed_by")) == [
        (False, 1, "", keeper.pk), (True, 2, "label torn", keeper.pk)]


def test_a_unit_without_a_gtin_cannot_get_a_gs1_label(keeper, pack):
    unit = pack.unit
    unit.di = "MA.156.M0.100000.ABC"
    with pytest.raises(Refused) as refused:
        print_unit_labels(units=[unit], user=keeper)
    assert refused.value.code == "LABEL_NEEDS_GTIN"


def test_internal_gtins_are_valid_gtin14_in_the_restricted_range(settings):
    settings.SPD_INTERNAL_GTIN_PREFIX = "029"
    assert internal_gtin(1).startswith("0290000000001") and is_valid_gtin(internal_gtin(1))
    with pytest.raises(ValueError):
        internal_gtin(10**10)
