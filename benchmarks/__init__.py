"""Benchmarks of the training library and the study runner (not part of the test suite).

Each module is a script, `python -m benchmarks.<name> [--flags]`, that prints one JSON line per
figure to stdout; see `benchmarks/README.md`.
"""
