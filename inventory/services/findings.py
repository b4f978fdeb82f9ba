"""What auditors made of the reconciliation's findings (处理意见): the one thing an auditor writes.

A finding gets a disposition — confirmed, explained, corrected or a false alarm — with a note, who
and when. Dispositions are append-only: a new one supersedes the finding's current one and both are
kept, so the history of a finding reads as it happened. A finding without a disposition is open.

The signed reports of a run (its CSV, XLSX and PDF with their SHA-256) are never rewritten: the
findings with their dispositions are a separate export, generated on demand (`export_findings`, a
background job), as of when it is asked for.
"""
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from inventory.errors import Problem, Refusal, Refused
from inventory.models import BackgroundJob, Finding, FindingDisposition, ReconciliationRun, Role, User
from inventory.services.background import JobResult, Progress, counted, scratch_file
from inventory.spreadsheets import WRITERS
from inventory.validators import personal_id_problems

# Who records dispositions: auditors (it is the one thing they write), SPD operators, administrators.
DISPOSERS = (Role.AUDITOR, Role.SPD_OPERATOR, Role.ADMIN)
Outcome = FindingDisposition.Outcome


def record_disposition(*, finding: Finding, outcome: str, note: str, recorded_by: User) -> FindingDisposition:
    """Record what `finding` turned out to be. The new disposition supersedes the finding's current
    one (kept, as every earlier one); two people recording at once are serialised on the finding's
    row, so the history stays one chain. Refused, with every problem at once, when the person may
    not record dispositions, the finding is another hospital's, the outcome is unknown or the note
    is empty."""
    if not recorded_by.has_role(*DISPOSERS):
        raise Refused(Refusal.DISPOSITION_NOT_AUTHORISED)
    if recorded_by.hospital_id is not None and finding.run.hospital_id != recorded_by.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="finding")
    problems = []
    if outcome not in Outcome.values:
        problems.append(Problem(Refusal.DISPOSITION_UNKNOWN_OUTCOME, {"outcome": outcome or "—"}))
    note = (note or "").strip()
    if not note:
        problems.append(Problem(Refusal.DISPOSITION_NOTE_REQUIRED))
    problems += personal_id_problems(note=note)
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        locked = Finding.objects.select_for_update().get(pk=finding.pk)
        current = FindingDisposition.objects.filter(finding=locked, superseded_by__isnull=True).first()
        return FindingDisposition.objects.create(
            finding=locked, outcome=outcome, note=note, recorded_by=recorded_by, recorded_at=timezone.now(),
            supersedes=current,
        )


# --- reading --------------------------------------------------------------------------------------


def with_current_disposition(findings: QuerySet[Finding]) -> QuerySet[Finding]:
    """`findings` annotated with their current disposition (None when open): current_outcome,
    current_note, current_by (username), current_at and the number of dispositions recorded."""
    current = FindingDisposition.objects.filter(finding=OuterRef("pk"), superseded_by__isnull=True)
    return findings.annotate(
        current_outcome=Subquery(current.values("outcome")[:1]),
        current_note=Subquery(current.values("note")[:1]),
        current_by=Subquery(current.values("recorded_by__username")[:1]),
        current_at=Subquery(current.values("recorded_at")[:1]),
    )


def open_findings(run: ReconciliationRun) -> QuerySet[Finding]:
    """The run's findings nobody has recorded a disposition for yet."""
    return run.findings.filter(dispositions__isnull=True)


def history(finding: Finding) -> QuerySet[FindingDisposition]:
    """The finding's dispositions, first recorded first (the last one is current)."""
    return finding.dispositions.select_related("recorded_by").order_by("recorded_at", "pk")


# --- the export -----------------------------------------------------------------------------------

FINDINGS_COLUMNS = (
    gettext_lazy("No."), gettext_lazy("Type"), gettext_lazy("Product code"), gettext_lazy("Product"),
    gettext_lazy("Serial or lot"), gettext_lazy("Location"), gettext_lazy("Encounter"),
    gettext_lazy("HIS charge code"), gettext_lazy("Expected"), gettext_lazy("Actual"),
    gettext_lazy("Amount at stake"), gettext_lazy("What was found"), gettext_lazy("Disposition"),
    gettext_lazy("Note"), gettext_lazy("Recorded by"), gettext_lazy("Recorded at"),
    gettext_lazy("Dispositions recorded"),
)


def findings_rows(run: ReconciliationRun):
    """One row per finding in report order (numbered as the signed reports number them), with its
    current disposition and how many were recorded; open findings have empty disposition cells."""
    kinds, outcomes = dict(Finding.Kind.choices), dict(Outcome.choices)
    findings = with_current_disposition(
        run.findings.select_related("product", "unit", "location").order_by("pk")
    ).annotate(recorded=Subquery(
        FindingDisposition.objects.filter(finding=OuterRef("pk")).order_by().values("finding")
        .annotate(count=Count("pk")).values("count")[:1]
    ))
    for number, finding in enumerate(findings.iterator(chunk_size=1000), start=1):
        yield (
            number, str(kinds.get(finding.kind, finding.kind)),
            finding.product.internal_code if finding.product else "", finding.product.name if finding.product else "",
            finding.unit.serial if finding.unit else finding.lot, finding.location.name if finding.location else "",
            finding.encounter, finding.his_charge_code, finding.expected, finding.actual, finding.amount,
            finding.message, str(outcomes[finding.current_outcome]) if finding.current_outcome else gettext("Open"),
            finding.current_note or "", finding.current_by or "",
            timezone.localtime(finding.current_at).replace(tzinfo=None) if finding.current_at else None,
            finding.recorded or 0,
        )


def export_findings(job: BackgroundJob, progress: Progress) -> JobResult:
    """The findings of run `params["run"]` with their dispositions, as CSV or XLSX: generated when
    asked for, beside the run's signed reports (which stay as they were stored)."""
    run = ReconciliationRun.objects.get(pk=job.params["run"], hospital=job.hospital)
    file_format = job.params["format"]
    path = scratch_file(f".{file_format}")
    total = run.findings.count()
    WRITERS[file_format](path, FINDINGS_COLUMNS, counted(findings_rows(run), total=total, progress=progress,
                                                         every=200))
    name = f"findings-{run.pk}-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}.{file_format}"
    return JobResult(file_name=name, path=path, result={"rows": total, "run": run.pk})
