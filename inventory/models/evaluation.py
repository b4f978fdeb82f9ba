"""Supplier evaluation (供应商评价): indicator sets, evaluation runs, their values and results.

An **indicator set** belongs to one hospital and is versioned: once a run has used it, it is frozen
(`frozen_at`) and a change means a new version, so that every finalised run can always be read with
the indicators it was scored on. Its indicators form a two-level tree: first-level indicators
(quality, delivery, service, … price) and the scored indicators under them. An indicator is scored
either from the hospital's own records for the run's period (`Source`: on-time rate, fill rate,
rejections at acceptance, upheld complaints, certificate lapses — never typed in) or by evaluators
with a score in the indicator's range.

An **evaluation run** scores a list of suppliers over a period: it collects one value per supplier
and scored indicator, weighs the indicators (expert weights, the entropy method over the run's
matrix, or AHP over the first level) and scores by linear weighting or TOPSIS. Finalising stores the
weights, scores and ranks and the report files with their SHA-256; nothing of a finalised run
changes again: services.evaluation refuses it, and on PostgreSQL so does the database (migration
0038: a trigger refuses UPDATE and DELETE of a finalised run, but for the one storing its report
files, and any write of its suppliers' scores, its values and its weights).
"""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class IndicatorSet(models.Model):
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="indicator_sets",
                                 verbose_name=_("hospital"))
    name = models.CharField(_("name"), max_length=200)
    version = models.PositiveIntegerField(_("version"), default=1)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Set when a run first uses the set: from then on its indicators and weights never change.
    frozen_at = models.DateTimeField(_("frozen at"), null=True, blank=True)

    class Meta:
        verbose_name = _("indicator set (评价指标体系)")
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "name", "version"], name="indicator_set_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class Indicator(models.Model):
    class Source(models.TextChoices):
        ENTERED = "ENTERED", _("Entered by evaluators")
        ON_TIME_RATE = "ON_TIME_RATE", _("On-time delivery rate % (computed)")
        FILL_RATE = "FILL_RATE", _("Fill rate % (computed)")
        REJECTION_RATE = "REJECTION_RATE", _("Rejected at acceptance % (computed)")
        UPHELD_COMPLAINTS = "UPHELD_COMPLAINTS", _("Upheld complaints (computed)")
        CERTIFICATE_LAPSES = "CERTIFICATE_LAPSES", _("Certificate lapses (computed)")

    class Direction(models.TextChoices):
        BENEFIT = "BENEFIT", _("More is better")
        COST = "COST", _("Less is better")

    indicator_set = models.ForeignKey(IndicatorSet, on_delete=models.CASCADE, related_name="indicators",
                                      verbose_name=_("indicator set"))
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children",
                               verbose_name=_("first-level indicator"))
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveIntegerField(_("position"), default=0)
    # Only a scored indicator (one without children) has a source, a direction and a range.
    source = models.CharField(_("source"), max_length=24, choices=Source.choices, default=Source.ENTERED)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices, default=Direction.BENEFIT)
    # The expert weight: of a first-level indicator within the set, of a scored one within its parent.
    weight = models.DecimalField(_("expert weight"), max_digits=8, decimal_places=3, default=1)
    score_min = models.DecimalField(_("lowest score"), max_digits=10, decimal_places=2, default=0)
    score_max = models.DecimalField(_("highest score"), max_digits=10, decimal_places=2, default=100)

    class Meta:
        verbose_name = _("evaluation indicator")
        ordering = ["indicator_set", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["indicator_set", "code"], name="indicator_code_unique_in_set"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="indicator_weight_not_negative"),
            models.CheckConstraint(condition=Q(score_max__gt=models.F("score_min")), name="indicator_range_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_entered(self) -> bool:
        return self.source == self.Source.ENTERED

    @property
    def is_benefit(self) -> bool:
        return self.direction == self.Direction.BENEFIT


class EvaluationRun(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("Draft: collecting scores")
        FINALISED = "FINALISED", _("Finalised")

    class Weighting(models.TextChoices):
        EXPERT = "EXPERT", _("Expert weights")
        ENTROPY = "ENTROPY", _("Entropy method")
        AHP = "AHP", _("AHP (pairwise comparison)")

    class Scoring(models.TextChoices):
        LINEAR = "LINEAR", _("Linear weighting")
        TOPSIS = "TOPSIS", _("TOPSIS")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="evaluation_runs",
                                 verbose_name=_("hospital"))
    indicator_set = models.ForeignKey(IndicatorSet, on_delete=models.PROTECT, related_name="runs",
                                      verbose_name=_("indicator set"))
    name = models.CharField(_("name"), max_length=200)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    weighting = models.CharField(_("weighting"), max_length=8, choices=Weighting.choices, default=Weighting.EXPERT)
    scoring = models.CharField(_("scoring"), max_length=8, choices=Scoring.choices, default=Scoring.TOPSIS)
    # AHP: the pairwise comparison matrix of the first-level indicators (in their order), and its CR.
    ahp_matrix = models.JSONField(_("AHP pairwise matrix"), default=list, blank=True)
    ahp_cr = models.DecimalField(_("AHP consistency ratio"), max_digits=6, decimal_places=4, null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finalised_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("finalised by"))
    finalised_at = models.DateTimeField(_("finalised at"), null=True, blank=True)
    report_csv = models.FileField(_("report (CSV)"), upload_to="evaluation/", blank=True)
    report_xlsx = models.FileField(_("report (XLSX)"), upload_to="evaluation/", blank=True)
    report_pdf = models.FileField(_("report (PDF)"), upload_to="evaluation/", blank=True)
    csv_sha256 = models.CharField(_("CSV SHA-256"), max_length=64, blank=True)
    xlsx_sha256 = models.CharField(_("XLSX SHA-256"), max_length=64, blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("supplier evaluation run (供应商评价)")
        ordering = ["-period_end", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")),
                                   name="evaluation_period_not_reversed"),
            models.CheckConstraint(
                condition=Q(status="DRAFT", finalised_at=None) | Q(status="FINALISED", finalised_at__isnull=False),
                name="evaluation_finalised_when_dated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.period_start}–{self.period_end})"

    @property
    def is_final(self) -> bool:
        return self.status == self.Status.FINALISED


class EvaluatedSupplier(models.Model):
    """One supplier of a run; its score and rank once the run is finalised."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="participants",
                            verbose_name=_("evaluation run"))
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="evaluations",
                                 verbose_name=_("supplier"))
    score = models.DecimalField(_("score"), max_digits=8, decimal_places=6, null=True, blank=True)
    rank = models.PositiveIntegerField(_("rank"), null=True, blank=True)

    class Meta:
        verbose_name = _("evaluated supplier")
        ordering = ["run", "rank", "supplier__name"]
        constraints = [models.UniqueConstraint(fields=["run", "supplier"], name="evaluated_supplier_once_per_run")]

    def __str__(self) -> str:
        return f"{self.run} · {self.supplier}"


class EvaluationValue(models.Model):
    """One cell of a run's matrix: a supplier's value of one scored indicator (computed or entered)."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="values",
                            verbose_name=_("evaluation run"))
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("supplier"))
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="values",
                                  verbose_name=_("indicator"))
    value = models.DecimalField(_("value"), max_digits=14, decimal_places=4, null=True, blank=True)
    # How a computed value came about (e.g. "7 of 8 lines on time"); the evaluator's note for a score.
    basis = models.CharField(_("basis"), max_length=300, blank=True, default="")
    entered_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("entered by"))
    entered_at = models.DateTimeField(_("entered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("evaluation value")
        constraints = [
            models.UniqueConstraint(fields=["run", "supplier", "indicator"], name="evaluation_value_once"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} {self.indicator.code} = {self.value}"


class EvaluationWeight(models.Model):
    """The weight a finalised run gave one scored indicator (summing to 1 over the run)."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="weights",
                            verbose_name=_("evaluation run"))
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("indicator"))
    weight = models.DecimalField(_("weight"), max_digits=8, decimal_places=6)

    class Meta:
        verbose_name = _("evaluation weight")
        constraints = [models.UniqueConstraint(fields=["run", "indicator"], name="evaluation_weight_once")]

    def __str__(self) -> str:
        return f"{self.indicator.code}: {self.weight}"
