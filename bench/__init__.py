"""Benchmarks of the SPD system on PostgreSQL at hospital scale (see bench/README.md)."""
