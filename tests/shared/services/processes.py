"""Several processes started together, for the tests of state shared across gateway instances: each gets
its own store client, as a Lambda execution environment would."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

SPAWN = multiprocessing.get_context("spawn")  # a clean interpreter each, like separate Lambda instances


def run_together(target: Callable[..., None], args: tuple[Any, ...], count: int) -> list[Any]:
    """Start `count` processes of `target(*args, ready, results)`; they wait on `ready` (a barrier) so that
    they begin at once, and each puts one report on `results`. Returns the reports."""
    ready, results = SPAWN.Barrier(count + 1), SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*args, ready, results), daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    ready.wait(timeout=60)
    reports = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    return reports
