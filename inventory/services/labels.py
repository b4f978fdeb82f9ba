"""Printed labels (标签): the label of a pack and internal labels (院内码) for units and lots, as a PDF
sized for thermal label stock, with a GS1 DataMatrix or GS1-128 symbol.

Identity scheme. A label carries a GS1 element string — (01) GTIN, (17) expiry, (10) lot, (21)
serial — so that a scanned label goes through `devices.identification.parse_udi` and
`inventory.selectors.units.resolve_scans` exactly like a supplier's UDI, with nothing to teach the
scanners or the resolver. A pack product (one per pack/kit/set definition code) gets an internal
GTIN-14 in GS1's restricted-circulation range (GTIN-13 prefix 2…, reserved by GS1 for numbers a
company assigns for its own use, never on goods from outside): `SPD_INTERNAL_GTIN_PREFIX` (default
"029": indicator 0, then "29") followed by the product's id on 10 digits and the GS1 check digit.
A pack's serial is "P" and the pack's id on 9 digits. A supplier's unit or lot keeps its own GTIN.

The symbols are drawn by zxing-cpp (a maintained encoder and decoder: the tests decode what was
printed), the text in reportlab's CID font STSong-Light like the other PDFs. Every print is logged
(`LabelPrint`); printing a label that was printed before is recorded as a reprint.
"""
import io
from dataclasses import dataclass

import zxingcpp
from django.conf import settings
from django.db import transaction
from PIL import Image
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from devices.identification import gtin_check_digit, is_valid_gtin
from inventory.errors import Refusal, Refused
from inventory.models import LabelPrint, LotBalance, Unit, User

FONT = "STSong-Light"
SYMBOLOGIES = {
    LabelPrint.Symbology.DATAMATRIX: zxingcpp.BarcodeFormat.DataMatrix,
    LabelPrint.Symbology.GS1_128: zxingcpp.BarcodeFormat.Code128,
}


def internal_gtin(number: int) -> str:
    """The internal GTIN-14 of `number` (a pack product's id) in the restricted-circulation range."""
    prefix = settings.SPD_INTERNAL_GTIN_PREFIX
    width = 13 - len(prefix)
    if number < 0 or number >= 10**width:
        raise ValueError(f"{number} does not fit the {width} digits after the internal GTIN prefix {prefix}")
    body = f"{prefix}{number:0{width}d}"
    return body + gtin_check_digit(body)


def pack_serial(pack_id: int) -> str:
    return f"P{pack_id:09d}"


@dataclass(frozen=True)
class Label:
    """What one label shows: the GS1 data (human-readable form) and the lines of text."""

    gs1: str
    title: str
    lines: tuple[str, ...]


def unit_label(unit: Unit) -> Label:
    """The label of a unit (a pack's or any unit whose UDI-DI is a GTIN)."""
    if not is_valid_gtin(unit.di):
        raise Refused(Refusal.LABEL_NEEDS_GTIN, item=unit.serial, di=unit.di)
    data = f"(01){unit.di.zfill(14)}"
    if unit.expiry:
        data += f"(17){unit.expiry:%y%m%d}"
    if unit.lot:
        data += f"(10){unit.lot}"
    data += f"(21){unit.serial}"
    product = unit.product
    # Expiry and lot first: a GS1-128 label has room for three lines only.
    lines = [f"效期：{unit.expiry or '—'}", f"批号：{unit.lot or '—'}", f"序列号：{unit.serial}"]
    pack = getattr(unit, "pack", None)
    if pack is not None:
        lines.append(f"内含：{pack.members.count()} 项  版本 v{pack.definition.version}")
    lines.append(f"规格：{product.specification}" if product.specification else f"院内码：{product.internal_code}")
    return Label(data, product.name, tuple(lines))


def lot_label(balance: LotBalance) -> Label:
    """The internal label of a lot (院内码 for items received without a usable label of their own)."""
    product = balance.product
    if not is_valid_gtin(product.udi_di):
        raise Refused(Refusal.LABEL_NEEDS_GTIN, item=product.internal_code, di=product.udi_di)
    data = f"(01){product.udi_di.zfill(14)}"
    if balance.expiry:
        data += f"(17){balance.expiry:%y%m%d}"
    data += f"(10){balance.lot}"
    lines = (f"效期：{balance.expiry or '—'}", f"批号：{balance.lot}", f"院内码：{product.internal_code}",
             f"规格：{product.specification or '—'}")
    return Label(data, product.name, lines)


def barcode_image(gs1: str, symbology: str, *, scale: int = 6) -> Image.Image:
    """The symbol of the GS1 data `gs1` (human-readable form) as a greyscale image with quiet zones."""
    barcode = zxingcpp.create_barcode(gs1, SYMBOLOGIES[symbology], gs1=True)
    image = memoryview(zxingcpp.write_barcode_to_image(barcode, scale=scale, add_quiet_zones=True))
    height, width = image.shape[:2]
    return Image.frombytes("L", (width, height), bytes(image))


def label_size_mm() -> tuple[float, float]:
    width, _, height = settings.SPD_LABEL_SIZE_MM.lower().partition("x")
    return float(width), float(height)


def render_labels_pdf(labels: list[Label], *, symbology: str, copies: int = 1) -> bytes:
    """One page per label copy, each page the size of the label stock (SPD_LABEL_SIZE_MM)."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    width, height = (size * mm for size in label_size_mm())
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height))
    pdf.setTitle("SPD labels")
    margin = 2 * mm
    for label in labels:
        for _ in range(copies):
            _draw_label(pdf, label, symbology, width, height, margin)
            pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _draw_label(pdf: canvas.Canvas, label: Label, symbology: str, width: float, height: float, margin: float) -> None:
    image = barcode_image(label.gs1, symbology)
    pdf.setFont(FONT, 8)
    pdf.drawString(margin, height - margin - 7, _fit(label.title, width - 2 * margin, 8))
    if symbology == LabelPrint.Symbology.DATAMATRIX:
        side = min(height * 0.55, width * 0.4)
        ratio = image.height / image.width
        pdf.drawImage(ImageReader(image), margin, margin + 6, width=side, height=side * ratio)
        text_x, text_top = margin + side + 2 * mm, height - margin - 17
        for index, line in enumerate(label.lines):
            pdf.setFont(FONT, 6.5)
            pdf.drawString(text_x, text_top - index * 8, _fit(line, width - text_x - margin, 6.5))
    else:
        bar_height = height * 0.35
        pdf.drawImage(ImageReader(image), margin, margin + 6, width=width - 2 * margin, height=bar_height)
        text_top = height - margin - 16
        for index, line in enumerate(label.lines[:3]):
            pdf.setFont(FONT, 6.5)
            pdf.drawString(margin, text_top - index * 7.5, _fit(line, width - 2 * margin, 6.5))
    pdf.setFont(FONT, 5)
    pdf.drawString(margin, margin, _fit(label.gs1, width - 2 * margin, 5))


def _fit(text: str, room: float, size: float) -> str:
    while text and pdfmetrics.stringWidth(text, FONT, size) > room:
        text = text[:-1]
    return text


def print_unit_labels(
    *, units: list[Unit], user: User, symbology: str = LabelPrint.Symbology.DATAMATRIX, copies: int = 1,
    reason: str = "",
) -> bytes:
    """The PDF of the labels of `units`, each print logged (a unit printed before is a reprint)."""
    labels = [unit_label(unit) for unit in units]
    pdf = render_labels_pdf(labels, symbology=symbology, copies=copies)
    with transaction.atomic():
        printed = set(LabelPrint.objects.filter(unit__in=units).values_list("unit_id", flat=True))
        LabelPrint.objects.bulk_create([
            LabelPrint(hospital_id=unit.hospital_id, unit=unit, content=label.gs1, symbology=symbology, copies=copies,
                       is_reprint=unit.pk in printed, reason=reason[:200], printed_by=user)
            for unit, label in zip(units, labels, strict=True)
        ])
    return pdf


def print_lot_label(
    *, balance: LotBalance, user: User, symbology: str = LabelPrint.Symbology.DATAMATRIX, copies: int = 1,
    reason: str = "",
) -> bytes:
    """The PDF of `copies` internal labels of one lot at one place, logged like a unit's."""
    label = lot_label(balance)
    pdf = render_labels_pdf([label], symbology=symbology, copies=copies)
    LabelPrint.objects.create(
        hospital_id=balance.hospital_id, lot_balance=balance, content=label.gs1, symbology=symbology, copies=copies,
        is_reprint=LabelPrint.objects.filter(lot_balance=balance).exists(), reason=reason[:200], printed_by=user,
    )
    return pdf
