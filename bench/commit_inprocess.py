"""The projection's commit side alone: scoring's `BonusProjection` applying the bench's histories page by page
through `ViewTransaction` with a `FileCache`, as the consumer commits them, without Redis, keys or threads.

    python -m bench.commit_inprocess [--db sqlite|postgres] [--students 4000] [--page 1000] [--postgres URL]

The histories are the bench log's (`bench/workload.py`: 64 students interleaved step by step), split into
the registration and evaluation streams and paged as the consumer reads them (up to `--page` entries of
each stream side by side). Prints the CPU time of the commits per event (the thread's own, which a busy
machine moves far less than wall time), the files kept and reused, and the rows inserted through SQLAlchemy
per table (on PostgreSQL, large batches go through COPY and are not counted). Compare two versions of the
code by running it in each tree, alternated (`PYTHONPATH` at each tree). Its SQLite file or PostgreSQL
schema is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, text

from bench.harness import DEFAULT_DATABASE_URL
from bench.workload import STUDENTS_PER_PIPELINE, Places, campaign_opened_fields, entry_fields, student_history
from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import event_from_fields
from shared.contracts.streams import LoggedEvent
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.migrations import upgrade
from shared.runtime.projection.protocol import ViewTransaction
from shared.runtime.projection.views import FileCache


def pages(students: int, page: int) -> list[list[LoggedEvent]]:
    """The campaign's opening, then the two service streams' entries in pages as the consumer reads them."""
    places, rng = Places.from_reference(), random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    opened = LoggedEvent(event_from_fields(campaign_opened_fields("2027", rng, now)), "rectorat", "1-0", None)
    streams: dict[str, list[LoggedEvent]] = {"registration": [], "evaluation": []}
    for first in range(0, students, STUDENTS_PER_PIPELINE):
        histories = [student_history(n, places, rng, now) for n in range(first, min(first + STUDENTS_PER_PIPELINE, students))]
        for version in range(max(len(steps) for _, steps in histories)):
            for ine, steps in histories:
                if version < len(steps):
                    fields = entry_fields(steps[version], ine, "2027", now.isoformat(), str(uuid.uuid4()))
                    stream = streams[steps[version].service]
                    stream.append(LoggedEvent(event_from_fields(fields), steps[version].service, f"{len(stream) + 1}-0", version + 1))
    longest = max(len(s) for s in streams.values())
    return [[opened]] + [[e for s in streams.values() for e in s[at : at + page]] for at in range(0, longest, page)]


def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="passpro-commit-inproc-"))
    if args.db == "sqlite":
        url, schema = f"sqlite:///{workdir / 'view.sqlite3'}", None
    else:
        url, schema = args.postgres, f"bench_commit_{uuid.uuid4().hex[:8]}"
        ensure_schema(url, schema)
    todo = pages(args.students, args.page)
    events = sum(len(p) for p in todo)
    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    inserted: dict[str, int] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO"):
            table = statement.split()[2].strip('"')
            inserted[table] = inserted.get(table, 0) + (len(parameters) if executemany else 1)

    view, files, cpu = BonusProjection(), FileCache(), 0.0
    try:
        for n, page in enumerate(todo):
            started = time.thread_time()
            with ViewTransaction(engine, view, files) as tx:
                tx.apply(page)
                tx.save_positions({"bench": f"{n}-0"})
                tx.commit()
            cpu += time.thread_time() - started
    finally:
        engine.dispose()
        if schema is not None:
            admin = create_engine(url)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.db} {events} events in {len(todo)} pages: commit CPU {cpu / events * 1e6:.1f} µs per event; files kept "
          f"and reused {files.hits}; rows inserted {dict(sorted(inserted.items()))} (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--students", type=int, default=4000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("PASSPRO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    main(parser.parse_args())
