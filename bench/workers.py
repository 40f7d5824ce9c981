"""The bench's pool of worker processes, and the agreed start every worker waits for.

Every load (`bench/load.py`, `bench/limits.py`, the peer) runs in these processes, so the load
generator never shares an interpreter with what it measures. This module imports none of them:
the pool is told which modules to import at start-up, by name, so no measurement waits for an
import and no bench module imports another in a circle.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _warm(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional extra not installed (the peer): the harness says so and skips it
            pass


def worker_pool(processes: int, warm: tuple[str, ...] = ()) -> ProcessPoolExecutor:
    """The bench's worker processes, started once (spawned: nothing of the harness's state leaks in),
    each having imported `warm` first."""
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm, initargs=(warm,))
    list(pool.map(time.sleep, [0.2] * processes))  # start them all now, not during a measurement
    return pool


def run_workers(pool: ProcessPoolExecutor, function, plans: list[Any]) -> list[Any]:
    """Run `function(plan)` for each plan, each in its own worker process, and return their reports."""
    return list(pool.map(function, plans))


def start_when(at: float) -> float:
    """Wait for the agreed start; a worker that is late starts at once. Returns the actual start."""
    time.sleep(max(0.0, at - time.time()))
    return time.time()
