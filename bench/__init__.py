"""Benchmarks that print measured figures (run from the repository root: `python -m bench.<name>`)."""
