"""`make run`'s set-up on the embedded default — an SQLite file, tasks in process, no service URL —
as a newcomer runs it: migrate, then seed the demo alliance, whose month of history closes cabinet
sessions, records uses and refunds and reconciles the month. The rest of the suite runs on the
database the README's test command names (PostgreSQL in CI), so this is what keeps the SQLite
paths of those services honest (a UNION with a LIMIT inside, a PostgreSQL-only statement)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANTED = {"USED_NOT_BILLED", "BILLED_NOT_USED", "BILLED_QTY_EXCEEDS_USED", "PRICE_ABOVE_PURCHASE",
           "PRICE_NOT_ADJUSTED", "MULTI_SUPPLIER_HIGHEST_PRICE", "ZERO_COST_BILLED", "SUBSTITUTION"}
SUMMARY = """
import json
from inventory.models import Finding, ReconciliationRun
run = ReconciliationRun.objects.order_by("hospital__code", "-period_end").first()
print(json.dumps({"status": run.status, "by_kind": run.summary["findings"]["by_kind"],
                  "findings": Finding.objects.filter(run=run).count(), "rows": run.flow_rows.count()}))
"""


def _manage(*args: str, database: Path) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items()
                   if name not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL",
                                   "REPORTS_DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    environment["DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=1200)


def test_the_demo_is_set_up_and_reconciled_on_the_embedded_sqlite(tmp_path):
    database = tmp_path / "spd.sqlite3"
    migrated = _manage("migrate", "--noinput", "-v0", database=database)
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    seeded = _manage("seed_demo", database=database)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    assert "keeper-demo-123" in seeded.stdout and "reviewer2-demo-123" in seeded.stdout

    shown = _manage("shell", "-c", SUMMARY, database=database)
    assert shown.returncode == 0, shown.stderr[-3000:]
    run = json.loads(shown.stdout.strip().splitlines()[-1])
    assert run["status"] == "DONE"
    found = {kind for kind, figures in run["by_kind"].items() if figures["count"]}
    assert found >= PLANTED, f"planted but not found on SQLite: {PLANTED - found}"
    assert run["findings"] == sum(figures["count"] for figures in run["by_kind"].values())
    assert run["rows"] > 0  # the 进销存 table, written without PostgreSQL's INSERT … SELECT
