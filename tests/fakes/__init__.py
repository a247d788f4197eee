"""Fake upstream servers (and the thread that serves them) for tests and benchmarks."""
