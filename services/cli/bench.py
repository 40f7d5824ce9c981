"""`passpro bench [--quick] [--json FILE]`: the benchmarks of issue 7 against the machine's own limits.

The harness lives in the `bench` package and is imported only when the
command runs, so the rest of the `passpro` command starts as fast as before.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path


def bench(args: argparse.Namespace) -> int:
    from bench.figures import table, write_json
    from bench.harness import DEFAULT_DATABASE_URL, FULL, QUICK, run_bench

    for noisy in ("alembic", "httpx"):  # one line per migration, per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = QUICK if args.quick else FULL
    if args.events:
        sizes = sizes.with_events(args.events)
    database_url = os.environ.get("PASSPRO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    figures, context = run_bench(sizes, redis_url=os.environ.get("PASSPRO_REDIS_URL") or None, database_url=database_url)
    print(table(figures, context))
    print(f"\n{context['log_events']:,} events, {context['log_students']:,} students, "
          f"{context['total_seconds']:.0f} s in all. Figures are noisy on a shared machine: compare ratios within one run.")
    if args.json:
        write_json(Path(args.json), figures, context)
    if args.chart:
        from bench.chart import draw

        draw(context["series"], Path(args.chart), context.get("peer") if isinstance(context.get("peer"), dict) else None)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure throughput and latency against the machine's own limits")
    p.add_argument("--quick", action="store_true", help="100,000 events and short loads (under 3 minutes)")
    p.add_argument("--json", metavar="FILE", help="write the figures (and how they were measured) to FILE")
    p.add_argument("--events", type=int, metavar="N", help="size of the bench log (default: 1,000,000, or 100,000 with --quick)")
    p.add_argument("--chart", metavar="PNG", help="draw the projection's rate against the log size (needs matplotlib)")
    p.set_defaults(func=bench)
