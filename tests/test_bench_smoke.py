"""`make bench` end to end on a tiny workload, so that CI proves the harness works.

The small dataset is generated (COPY, PostgreSQL only) into the test database, then every benchmark
runs once with a handful of operations — gunicorn included — and the report is written. No timing
is asserted: CI machines vary; bench/README.md holds the figures of a real run.
"""
import json

import pytest

from bench.harness import HOSPITAL_BENCHMARKS, Options, run_benchmarks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_every_benchmark_runs_once_and_reports_its_figures(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    report = run_benchmarks(Options(size="small", workload="smoke", results_dir=tmp_path, raise_errors=True,
                                    progress=lambda line: None))
    report.write(tmp_path / "latest.json")

    written = json.loads((tmp_path / "latest.json").read_text())
    figures = written["figures"]
    assert {figure["benchmark"] for figure in figures} == set(HOSPITAL_BENCHMARKS)
    # Once each, except the monthly close: one sample per month of the dataset's history.
    once = [figure for figure in figures if "median of the months" not in figure["figure"]]
    missing = [(figure["benchmark"], figure["figure"], figure.get("note")) for figure in figures
               if not figure["available"] or (figure in once and len(figure["samples"]) != 1)]
    assert not missing
    assert all(figure["ratio"] is not None for figure in figures if figure["baseline"])
    assert written["dataset"]["counts"]["movements"] > 10_000
    table = report.table()
    assert "cabinet" in table and "median" in table


def test_the_dataset_is_reused_when_it_is_there(settings):
    from inventory.simulation.scale_data import SIZES, ensure_dataset

    first = ensure_dataset(SIZES["small"], progress=lambda line: None)
    again = ensure_dataset(SIZES["small"], progress=lambda line: None)
    assert again["built_at"] == first["built_at"]


def test_the_datasets_issued_statements_have_their_issued_step(settings):
    from inventory.models import SupplierSettlement
    from inventory.simulation.scale_data import SIZES, ensure_dataset

    ensure_dataset(SIZES["small"], progress=lambda line: None)
    issued = SupplierSettlement.objects.exclude(stage="DRAFT")
    assert issued.exists()
    assert not issued.exclude(events__kind="ISSUED").exists()
