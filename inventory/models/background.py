from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BackgroundJob(models.Model):
    """Work a person asked for that can take more than a second (a big export, a reconciliation,
    a report): queued, run by a Celery worker, watched from the page with its progress, its result
    a file to download or an object to open.

    `inventory.services.background` queues and runs them; each kind's work is a function named in
    `inventory.services.background.WORK`.
    """

    class Kind(models.TextChoices):
        STOCK_EXPORT = "STOCK_EXPORT", _("Stock export")
        FINDINGS_EXPORT = "FINDINGS_EXPORT", _("Findings with dispositions")
        RECONCILIATION = "RECONCILIATION", _("Reconciliation")
        REVIEW_EXPORT = "REVIEW_EXPORT", _("Consumable review report")

    class Status(models.TextChoices):
        QUEUED = "QUEUED", _("Queued")
        RUNNING = "RUNNING", _("Running")
        READY = "READY", _("Ready")
        FAILED = "FAILED", _("Failed")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    result_file = models.FileField(_("result file"), upload_to="jobs/", blank=True)
    result_name = models.CharField(_("file name"), max_length=200, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("background job")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_percent"),
        ]
        indexes = [models.Index(fields=["status"], condition=models.Q(status="QUEUED"), name="job_queued")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.get_status_display()}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)
