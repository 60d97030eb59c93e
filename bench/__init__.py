"""Benchmarks: `python -m bench.NAME --help`. Each ends with one `RESULT name=... k=v` line."""
