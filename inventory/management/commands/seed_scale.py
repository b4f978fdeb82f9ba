"""`manage.py seed_scale`: the benchmark dataset, a large hospital's year (PostgreSQL only).

Reuses the dataset already in the database when it has the size asked for; `--rebuild` empties
the database's application tables and generates it again. See inventory/services/scale_data.py.
"""
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.simulation.alliance_data import ALLIANCE_SIZES, ensure_alliance
from inventory.simulation.scale_data import SIZES, ensure_dataset


class Command(BaseCommand):
    help = (
        "Generate the benchmark dataset on PostgreSQL: --size small (CI) or full (20,000 products, 60 locations, "
        "~2,000,000 movements, ~300,000 HIS lines, 200,000 units in stock); --movements N scales the ledger. "
        "--alliance: a county alliance of 18 hospitals sharing a 12,000-entry catalog (~2,000,000 movements; with "
        "--size small, six tiny members). An existing dataset of the same size is reused. THIS EMPTIES THE DATABASE when it (re)builds: use a "
        "database of its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=sorted(SIZES),
                            help="default small; with --alliance the full alliance unless --size small")
        parser.add_argument("--movements", type=int, help="ledger rows to generate (uses and stock scale with it)")
        parser.add_argument("--years", type=int, default=1,
                            help="years of history (the ledger grows with them; the stock held stays)")
        parser.add_argument("--rebuild", action="store_true", help="generate again even if the dataset exists")
        parser.add_argument("--alliance", action="store_true",
                            help="the alliance dataset (bench/README.md): 18 members, one regional warehouse")

    def handle(self, *args: object, size: str | None, movements: int | None, years: int, rebuild: bool,
               alliance: bool = False, **options: object) -> None:
        if alliance:
            self._alliance("alliance-small" if size == "small" else "alliance", rebuild)
            return
        size = size or "small"
        chosen = SIZES[size]
        if years != 1:
            if not 1 <= years <= 10:
                raise CommandError("--years must be 1 to 10")
            chosen = chosen.with_years(years)
        if movements is not None:
            if movements < 1000:
                raise CommandError("--movements must be at least 1000")
            chosen = chosen.with_movements(movements)
        try:
            info = ensure_dataset(chosen, rebuild=rebuild, progress=self.stdout.write)
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        counts = ", ".join(f"{name} {value:,}" for name, value in info["counts"].items())
        self.stdout.write(self.style.SUCCESS(
            f"dataset {chosen.name}: hospital {info['hospital_id']}, {info['period_start']} – {info['period_end']}; {counts}"
        ))

    def _alliance(self, name: str, rebuild: bool) -> None:
        try:
            info = ensure_alliance(ALLIANCE_SIZES[name], rebuild=rebuild, progress=self.stdout.write)
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        counts = ", ".join(f"{key} {value:,}" for key, value in info["counts"].items())
        self.stdout.write(self.style.SUCCESS(
            f"alliance dataset {name}: lead hospital {info['hospital_id']}, {info['period_start']} – "
            f"{info['period_end']}; {counts}"
        ))
