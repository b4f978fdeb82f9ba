from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    """The first outcome of an operation sent with an idempotency key.

    Inserted first in the operation's transaction, so a concurrent request with the same key waits
    on the unique index and then replays this outcome instead of doing the work again.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=128)
    operation = models.CharField(_("operation"), max_length=64)
    fingerprint = models.CharField(_("request fingerprint (SHA-256)"), max_length=64)
    result_model = models.CharField(max_length=64, blank=True)
    result_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("idempotency record")
        constraints = [models.UniqueConstraint(fields=["hospital", "key"], name="idempotency_key_per_hospital")]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"
