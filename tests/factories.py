"""Test data factories. Defaults describe a valid, acceptable delivery so tests state only what differs."""
import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from devices.identification import gtin_check_digit
from inventory import models
from inventory.validators import make_uscc

TODAY = datetime.date.today()


def gtin(n: int) -> str:
    body = f"0695{n:09d}"
    return body + gtin_check_digit(body)


def gs1_udi(di: str, *, serial: str = "", lot: str = "", expiry: datetime.date | None = None) -> str:
    """The UDI as a DataMatrix scanner sends it: ]d2 prefix, GS after variable-length fields."""
    expiry = expiry or TODAY + datetime.timedelta(days=400)
    code = f"]d201{di}17{expiry:%y%m%d}"
    if lot:
        code += f"10{lot}"
    if serial:
        code += ("\x1d" if lot else "") + f"21{serial}"
    return code


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Hospital
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"H{n:03d}")
    name = factory.Sequence(lambda n: f"县第{n}人民医院")
    alliance = "测试县医共体"


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Department

    hospital = factory.SubFactory(HospitalFactory)
    code = factory.Sequence(lambda n: f"D{n:03d}")
    name = factory.Sequence(lambda n: f"科室{n}")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Location

    hospital = factory.SubFactory(HospitalFactory)
    code = factory.Sequence(lambda n: f"L{n:03d}")
    name = factory.Sequence(lambda n: f"库位{n}")
    kind = models.Location.Kind.CENTRAL_WAREHOUSE


class SupplierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Supplier
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"医疗器械供应商{n}")
    uscc = factory.Sequence(lambda n: make_uscc(f"91330100MA{n:07d}"))

    @factory.post_generation
    def licences(self, create: bool, extracted: object, **kwargs: object) -> None:
        if not create or extracted is False:
            return
        for kind in (models.Certificate.Kind.BUSINESS_LICENCE, models.Certificate.Kind.DISTRIBUTION_LICENCE):
            CertificateFactory(supplier=self, kind=kind)


class ManufacturerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Manufacturer

    name = factory.Sequence(lambda n: f"制造商{n}")


class CertificateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Certificate

    kind = models.Certificate.Kind.REGISTRATION
    number = factory.Sequence(lambda n: f"国械注准2024{n:07d}")
    valid_from = TODAY - datetime.timedelta(days=365)
    valid_to = TODAY + datetime.timedelta(days=3 * 365)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Product

    hospital = factory.SubFactory(HospitalFactory)
    internal_code = factory.Sequence(lambda n: f"HV{n:05d}")
    name = factory.Sequence(lambda n: f"药物洗脱冠脉支架{n}")
    manufacturer = factory.SubFactory(ManufacturerFactory)
    registration_certificate = factory.LazyAttribute(lambda o: CertificateFactory(manufacturer=o.manufacturer))
    udi_di = factory.Sequence(gtin)
    nhsa_code = factory.Sequence(lambda n: f"C0201{n:015d}")
    his_charge_code = factory.Sequence(lambda n: f"HIS{n:06d}")
    is_high_value = True
    tracking = models.TrackingMode.UNIT


class SupplyAgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SupplyAgreement

    product = factory.SubFactory(ProductFactory)
    hospital = factory.SelfAttribute("product.hospital")
    supplier = factory.SubFactory(SupplierFactory)
    unit_price = Decimal("1200.00")
    valid_from = TODAY - datetime.timedelta(days=30)
    valid_to = TODAY + datetime.timedelta(days=365)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    hospital = factory.SubFactory(HospitalFactory)
    password = factory.PostGenerationMethodCall("set_password", "pw-Secret-123")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        from django.contrib.auth.models import Group

        for name in extracted or ["warehouse"]:
            self.groups.add(Group.objects.get_or_create(name=name)[0])
        self.save()


def now() -> datetime.datetime:
    return timezone.now()
