"""Micro-benchmark of the projection's batched writes on PostgreSQL: statements (executemany) against COPY.

    python -m bench.upsert_micro [--students 2000] [--batch 500] [--postgres URL]

The bench's projection rows (`bench.limits._projection_rows`: student files, totals, vœux) of `--students`
students written as the projection writes a page, `--batch` students per transaction: the files and totals
upserted, the vœux deleted then inserted (`shared.runtime.projection.views.upsert`, `insert_rows`, with
`COPY_FROM` set so that every batch goes one way or the other). Twice over the students (inserts, then
updates), best of 3, the two ways alternated so that a busy machine slows each alike. Rows per second, and
this process's CPU per row (the server's excluded): on a loaded machine the steadier of the two.
Works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

from sqlalchemy import create_engine, delete, text

from bench.harness import DEFAULT_DATABASE_URL
from bench.limits import _projection_rows
from services.scoring.app import MIGRATIONS
from services.scoring.views import student_files, student_totals, voeux
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.migrations import upgrade
from shared.runtime.projection import views

SCHEMA = "bench_upsert_micro"


def rate(engine, shapes, batch: int, copy_from: int, rounds: int = 3) -> tuple[float, float]:
    """(rows per second of wall time, microseconds of this process's CPU per row), each the best round."""
    views.COPY_FROM = copy_from
    best, best_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        with engine.begin() as conn:
            for table in (student_files, student_totals, voeux):
                conn.execute(delete(table))
        started, cpu, rows = time.perf_counter(), time.process_time(), 0
        for change in range(2):
            for start in range(0, len(shapes), batch):
                chunk = shapes[start : start + batch]
                files = [f for f, _, _, _ in chunk]
                totals = [{**t, "total_bonus_points": t["total_bonus_points"] + change} for _, t, _, _ in chunk]
                voeu_rows = [v for _, _, vs, _ in chunk for v in vs]
                with engine.begin() as conn:
                    views.upsert(conn, student_files, files, ["campaign", "ine"])
                    views.upsert(conn, student_totals, totals, ["campaign", "ine"])
                    views.delete_students(conn, voeux, [SimpleNamespace(campaign=f["campaign"], ine=f["ine"]) for f in files])
                    views.insert_rows(conn, voeux, voeu_rows)
                rows += len(files) + len(totals) + len(voeu_rows)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / rows * 1e6)
    return rows / best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("PASSPRO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()
    admin = create_engine(args.postgres)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    ensure_schema(args.postgres, SCHEMA)
    upgrade(MIGRATIONS, args.postgres, SCHEMA)
    engine = make_engine(args.postgres, SCHEMA)
    shapes = _projection_rows(args.students)
    default = views.COPY_FROM
    try:
        for name, copy_from in (("statements", 10**9), ("COPY", 0), ("statements", 10**9), ("COPY", 0)):
            per_s, cpu_us = rate(engine, shapes, args.batch, copy_from)
            print(f"{name:<11} {per_s:>9,.0f} rows/s, {cpu_us:5.1f} µs of CPU per row here  (load {os.getloadavg()[0]:.1f})")
    finally:
        views.COPY_FROM = default
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
