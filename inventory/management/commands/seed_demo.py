"""`manage.py seed_demo`: load the demo county alliance (医共体). Safe to run again."""
import time
from collections import Counter

from django.core.management.base import BaseCommand
from django.utils import timezone

from inventory.models import AcceptanceRecord, Certificate, DeliveryNote
from inventory.simulation.demo import (
    ALLIANCE,
    EXPIRED_CERTIFICATE,
    EXPIRING_CERTIFICATE,
    HOSPITALS,
    demo_logins,
    seed_demo,
)


class Command(BaseCommand):
    help = (
        "Load demo data: a county alliance of two hospitals, departments, smart cabinets, suppliers, "
        "manufacturers with certificates, a catalog of 250+ consumables with supply agreements, one user "
        "per role and a few delivery notes received and accepted through the real services. "
        "Running it again changes nothing."
    )

    def handle(self, *args: object, **options: object) -> None:
        started = time.monotonic()
        counts = seed_demo()
        elapsed = time.monotonic() - started
        write = self.stdout.write

        write(self.style.SUCCESS(f"Demo alliance {ALLIANCE} ready in {elapsed:.1f} s."))
        width = max(len(name) for name in counts)
        for name, value in counts.items():
            write(f"  {name:<{width}}  {value}")

        write("")
        write("Certificates to watch:")
        today = timezone.localdate()
        for label, (kind, number) in (
            ("expiring soon", EXPIRING_CERTIFICATE), ("expired", EXPIRED_CERTIFICATE)
        ):
            certificate = Certificate.objects.select_related("supplier", "manufacturer").get(kind=kind, number=number)
            holder = certificate.supplier or certificate.manufacturer
            products = ", ".join(sorted({p.name for p in certificate.products.all()}))
            covers = f" — covers {products}" if products else ""
            write(
                f"  {label}: {certificate} of {holder}, valid to {certificate.valid_to} "
                f"({(certificate.valid_to - today).days:+d} days){covers}"
            )

        write("")
        write("Delivery notes:")
        codes = [spec.code for spec in HOSPITALS]
        for note in DeliveryNote.objects.filter(hospital__code__in=codes).select_related("hospital", "supplier").order_by(
            "hospital__code", "delivered_at"
        ):
            records = AcceptanceRecord.objects.filter(line__note=note)
            accepted = records.filter(decision=AcceptanceRecord.Decision.ACCEPTED).count()
            reasons = Counter(
                records.filter(decision=AcceptanceRecord.Decision.REJECTED).values_list("reason_code", flat=True)
            )
            why = ", ".join(code if n == 1 else f"{code} ×{n}" for code, n in sorted(reasons.items()))
            outcome = (
                f"{accepted} accepted, {reasons.total()} rejected" + (f" ({why})" if why else "")
                if note.status == DeliveryNote.Status.ACCEPTED
                else f"{note.lines.count()} lines awaiting acceptance"
            )
            write(f"  {note.hospital.code} {note.number:<14} {note.supplier.name}: {outcome}")

        write("")
        write("Demo logins (username / password):")
        for login in demo_logins():
            department = f", {login.department}" if login.department else ""
            write(f"  {login.username:<10} {login.password:<20} {login.role:<13} {login.hospital_name}{department}")
