"""The alliance benchmark end to end on the tiny alliance (`alliance-small`: six members), in CI.

The dataset is generated (COPY, PostgreSQL only) into the test database, with the same generator
and the same consistency check as the 18-member one; then `bench/alliance.py` runs once: a real
Celery worker (prefork, on Redis) reconciles every member's last day in parallel and renders the
reports, and the alliance dashboard is read beside its bare SQL. No timing is asserted (CI
machines vary; bench/README.md holds the figures of a real run): figures are produced, the night's
runs are done and find no INVENTORY_MISMATCH, the bare SQL finds the dashboard's figures.
"""
import json

import pytest

from bench.harness import Options, run_benchmarks

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_the_alliance_benchmark_runs_on_the_tiny_alliance(tmp_path, settings, redis_left_as_found):
    from inventory.models import (
        AllianceTransfer,
        CentralOrder,
        Finding,
        Hospital,
        Movement,
        Product,
        ReconciliationRun,
    )
    from inventory.selectors.reconciliation import ledger_against_stock

    settings.MEDIA_ROOT = tmp_path / "media"  # the worker stores the reports there (it is given MEDIA_ROOT)
    report = run_benchmarks(Options(size="alliance-small", only=("alliance",), results_dir=tmp_path,
                                    raise_errors=True, progress=lambda line: None))
    report.write(tmp_path / "latest.json")
    written = json.loads((tmp_path / "latest.json").read_text())

    members = written["dataset"]["members"]
    assert len(members) == 6
    hospitals = Hospital.objects.filter(pk__in=[member["hospital_id"] for member in members])
    assert {hospital.alliance for hospital in hospitals} == {written["dataset"]["alliance"]}
    assert sum(hospital.is_lead for hospital in hospitals) == 1
    for hospital in hospitals:  # every member's ledger reconciles with its stock
        assert ledger_against_stock(hospital) == []
        assert Product.objects.filter(hospital=hospital, alliance_entry__isnull=True).count() == 0
    # The alliance's flows are in both books: the lead's ALLIANCE_OUT equal the members' ALLIANCE_IN.
    out = Movement.objects.filter(kind=Movement.Kind.ALLIANCE_OUT).values_list("document_id", "quantity")
    into = Movement.objects.filter(kind=Movement.Kind.ALLIANCE_IN).values_list("document_id", "quantity")
    assert sorted(out) == sorted(into) and out
    assert AllianceTransfer.objects.filter(kind=AllianceTransfer.Kind.DISTRIBUTION).exists()
    assert AllianceTransfer.objects.filter(status=AllianceTransfer.Status.IN_TRANSIT).exists()
    assert CentralOrder.objects.exists()

    figures = {figure["figure"]: figure for figure in written["figures"]}
    assert all(figure["available"] for figure in figures.values())
    night = next(figure for name, figure in figures.items() if name.startswith("night:"))
    assert len(night["samples"]) == 1 and night["ratio"] is not None
    per_member = [figure for name, figure in figures.items() if "its run" in name]
    assert len(per_member) == 6 and all(figure["ratio"] is not None for figure in per_member)
    assert "0 INVENTORY_MISMATCH" in night["note"]
    dashboard = next(figure for name, figure in figures.items() if name.startswith("dashboard"))
    assert dashboard["ratio"] is not None and "bare SQL figures equal" in dashboard["note"]

    runs = ReconciliationRun.objects.filter(hospital__in=hospitals, is_current=True)
    assert runs.count() == 6 and all(run.status == "DONE" and run.has_reports for run in runs)
    assert not Finding.objects.filter(run__in=runs, kind=Finding.Kind.INVENTORY_MISMATCH).exists()


def test_seed_scale_builds_the_tiny_alliance_then_reuses_it(capsys):
    from django.core.management import call_command

    from inventory.models import AllianceEntry, Hospital

    call_command("seed_scale", "--alliance", "--size", "small")
    built = capsys.readouterr().out
    assert "alliance dataset alliance-small" in built and "members 6" in built
    assert Hospital.objects.filter(alliance__startswith="建德医共体").count() == 6
    assert AllianceEntry.objects.count() == 240
    call_command("seed_scale", "--alliance", "--size", "small")
    assert "reused" in capsys.readouterr().out
