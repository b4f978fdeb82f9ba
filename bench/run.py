"""`make bench`: build (or reuse) the benchmark dataset on PostgreSQL, run the benchmarks several times,
print the table of figures and write bench/results/latest.json. See bench/README.md.

    .venv/bin/python bench/run.py                      # full size (first run builds the dataset, ~3 min)
    .venv/bin/python bench/run.py --size small         # the small dataset, a quick run
    .venv/bin/python bench/run.py --only cabinet,ui --repeat 3
    .venv/bin/python bench/run.py --alliance           # the alliance of 18 hospitals and its benchmark
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bench.harness import ALLIANCE_BENCHMARKS, BENCHMARKS, HOSPITAL_BENCHMARKS, WORKLOADS

    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["small", "full", "alliance", "alliance-small"], default="full",
                        help="the dataset (default: full)")
    parser.add_argument("--alliance", action="store_true", help="the alliance dataset (18 members; with --size "
                        "small its tiny version) and the alliance benchmark")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), help="how much each benchmark does (default: the size's)")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)} (default: those of the dataset)")
    parser.add_argument("--repeat", type=int, help="repetitions of each benchmark (default: the workload's)")
    parser.add_argument("--rebuild", action="store_true", help="generate the dataset again even if it exists")
    parser.add_argument("--years", type=int, default=1, help="years of history in the dataset (default 1; 5 makes "
                        "the full ledger ~10 M movements, for the reconciliation's growth figure)")
    parser.add_argument("--profile", default="", help="comma-separated profile names to record with pyinstrument, "
                        "e.g. cabinet,reconciliation-year,api-consumption,ui-stock (bench/results/profile-*.txt)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="a PostgreSQL database of its own: it is emptied when the dataset is (re)built "
                        f"(default: $BENCH_DATABASE_URL or {DEFAULT_DATABASE_URL})")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/latest.json")
    args = parser.parse_args(argv)
    if args.alliance or args.size.startswith("alliance"):
        args.size = "alliance-small" if args.size in ("small", "alliance-small") else "alliance"
    if args.only is None:
        args.only = ",".join(ALLIANCE_BENCHMARKS if args.size.startswith("alliance") else HOSPITAL_BENCHMARKS)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if urlparse(args.database_url).scheme not in ("postgres", "postgresql"):
        parser.error("the benchmarks need PostgreSQL: --database-url postgres://…")
    return args


def configure_environment(database_url: str, results_dir: Path) -> None:
    """Production-like settings for the in-process benchmarks, before Django is set up."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "spd.settings"
    os.environ["DEBUG"] = "0"  # no query log, no debug toolbar of any kind: what production runs
    os.environ.setdefault("SECRET_KEY", f"bench-{secrets.token_hex(24)}")
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    os.environ["MEDIA_ROOT"] = str(results_dir / "media")  # reconciliation reports


def ensure_database(database_url: str) -> None:
    """Create the database if it does not exist (connecting to the server's `postgres` database)."""
    import psycopg
    from psycopg import sql

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    maintenance = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    args = parse_args(argv)
    results_dir = args.output.parent
    configure_environment(args.database_url, results_dir)
    ensure_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    from bench.harness import Options, run_benchmarks

    call_command("migrate", interactive=False, verbosity=0)
    options = Options(
        size=args.size, workload=args.workload, only=tuple(args.only.split(",")), rebuild=args.rebuild,
        repeat=args.repeat, years=args.years, database_url=args.database_url, results_dir=results_dir,
        profile=tuple(name for name in args.profile.split(",") if name), progress=lambda line: print(line, flush=True),
    )
    report = run_benchmarks(options)
    print()
    print(report.table())
    report.write(args.output)
    print(f"\nwritten: {args.output}")
    failed = [figure for figure in report.figures if not figure.available and figure.name == "benchmark failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
