"""The figures `passpro bench` reports (names fixed by issue 7, two added by issue 16), what each means, and the
targets they are held to: every target reads its figures from one run's file (figures and `context`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    meaning: str


FIGURES = [
    Figure("raw_xadd_per_s", "/s", "redis-py XADD from one client, no pipeline: the single-writer limit of the log server"),
    Figure("append_per_s", "/s", "the project's append (EventLog.append: keys from the key store, sealing, the atomic script) from one client, one call at a time, whole student histories in order (one append in ~7.8 makes a new student's key)"),
    Figure("append_per_s_concurrent", "/s", "the same append from 16 clients (separate processes), each on its own students"),
    Figure("append_per_s_plaintext", "/s", "append_per_s without sealing (no key store, personal fields in clear): the cost of encryption on append"),
    Figure("http_writes_per_s", "/s", "accepted writes (201) per second through registration's API, 32 concurrent clients"),
    Figure("http_write_ms_p99_at_200", "ms", "p99 latency of a write through registration's API at a steady 200 writes/s"),
    Figure("e2e_latency_ms_p50", "ms", "from a write's 201 to scoring's GET /api/bonuses/{ine}?min_position= answering, at 200 writes/s (p50 over every read; those without the change counted too: context.http_steady.e2e_not_visible)"),
    Figure("e2e_latency_ms_p99", "ms", "the same, p99"),
    Figure("e2e_latency_ms_p99_at_half_saturation", "ms", "the same p99 at half the HTTP saturation rate measured just before in the same run (the rate: context.http_half_saturation.offered_per_s)"),
    Figure("read_parse_limit_events_per_s", "/s", "XRANGE over the bench log, the page's keys, and opening and turning each entry into its event, nothing else"),
    Figure("read_parse_limit_events_per_s_plaintext", "/s", "the same pages with sealing ignored (no keys fetched, `sealed` not opened): the cost of encryption on reading"),
    Figure("read_bare_limit_events_per_s", "/s", "XRANGE of the same pages, bytes only (no decoding, no keys, no parsing): the read the parsing is measured against"),
    Figure("upsert_limit_rows_per_s_sqlite", "/s", "bare batched upserts of the projection's rows (student files, totals, vœux) of the same 1,000 students round after round (inserted once, then updated), SQLite; in events: context.upsert_limit_events_per_s"),
    Figure("upsert_limit_rows_per_s_postgres", "/s", "the same, PostgreSQL"),
    Figure("projection_events_per_s_sqlite", "/s", "scoring's projection catching up from the start of the bench log (inside `passpro rebuild`), SQLite"),
    Figure("projection_events_per_s_postgres", "/s", "the same, PostgreSQL"),
    Figure("rebuild_seconds_sqlite", "s", "`passpro rebuild` over the same log (catch-up into a workspace, then the swap), SQLite"),
    Figure("rebuild_seconds_postgres", "s", "the same, PostgreSQL"),
    Figure("query_ms_p99_summary", "ms", "p99 of scoring's GET /api/reports/summary over the projected students"),
    Figure("query_ms_p99_bonuses_filtered", "ms", "p99 of scoring's GET /api/bonuses filtered by lycée and min_points"),
    Figure("rss_mb_scoring", "MB", "peak resident memory of the process running the scoring projection's catch-up (`passpro rebuild`)"),
    Figure("peer_eventsourcing_events_per_s", "/s", "the eventsourcing library's projection (PostgreSQL, tracking records) on the same workload"),
]
NAMES = [f.name for f in FIGURES]


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[dict[str, Any]], bool | None]  # given the run (figures and "context"); None: a figure is missing
    ratio: Callable[[dict[str, Any]], float | None] | None = None  # the share it is judged on, for the ratio targets


def _ratio_target(db: str) -> Target:
    """Both limits in events/s: the upsert limit's rows turned into the events they stand for (context)."""

    def ratio(f: dict[str, Any]) -> float | None:
        try:
            upsert = f["context"]["upsert_limit_events_per_s"][db]
            return f[f"projection_events_per_s_{db}"] / min(f["read_parse_limit_events_per_s"], upsert)
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    return Target(f"projection on {db} >= 50% of min(read-parse limit, upsert limit in events/s)",
                  lambda f: None if ratio(f) is None else ratio(f) >= 0.5, ratio)


def _ratio(name: str, of: str, share: float, text: str) -> Target:
    def ratio(f: dict[str, Any]) -> float | None:
        if not f.get(name) or not f.get(of):
            return None
        return f[name] / f[of]

    return Target(text, lambda f: None if ratio(f) is None else ratio(f) >= share, ratio)


def _at_most(name: str, bound: float, text: str) -> Target:
    return Target(text, lambda f: None if f.get(name) is None else f[name] <= bound)


def _at_least(name: str, bound: float, text: str) -> Target:
    return Target(text, lambda f: None if f.get(name) is None else f[name] >= bound)


TARGETS = [
    _ratio_target("sqlite"),
    _ratio_target("postgres"),
    _ratio("read_parse_limit_events_per_s", "read_bare_limit_events_per_s", 0.5, "read-parse limit >= 50% of the bare read limit"),
    _ratio("projection_events_per_s_postgres", "peer_eventsourcing_events_per_s", 10, "projection on postgres >= 10 x the eventsourcing peer"),
    _ratio("http_writes_per_s", "append_per_s_concurrent", 0.6, "HTTP writes at saturation >= 60% of the append from 16 clients"),
    _at_least("http_writes_per_s", 1000, ">= 1,000 HTTP writes/s at saturation"),
    _at_most("http_write_ms_p99_at_200", 50, "HTTP write p99 <= 50 ms at 200 writes/s"),
    _at_most("e2e_latency_ms_p99", 100, "end-to-end p99 <= 100 ms at 200 writes/s (every read counted)"),
    _at_most("e2e_latency_ms_p99_at_half_saturation", 100, "end-to-end p99 <= 100 ms at half the saturation rate (every read counted)"),
    _at_most("query_ms_p99_summary", 100, "summary query p99 <= 100 ms"),
    _at_most("query_ms_p99_bonuses_filtered", 100, "filtered bonus list p99 <= 100 ms"),
    _at_most("rebuild_seconds_sqlite", 60, "rebuild of the log <= 60 s on SQLite (the target is for 1M events)"),
    _at_most("rss_mb_scoring", 300, "scoring under 300 MB"),
]


def verdicts(figures: dict[str, Any], context: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Each target's verdict on one run: its figures and its context (the ratio targets read both)."""
    run = {**figures, "context": context or {}}
    out = []
    for target in TARGETS:
        ok = target.check(run)
        verdict = "not measured" if ok is None else "met" if ok else "missed"
        share = target.ratio(run) if target.ratio else None
        out.append((target.text, verdict if share is None else f"{verdict} ({share:.2f})"))
    return out


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def table(figures: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    """The figures and the targets as a Markdown table (it reads well in a terminal too)."""
    lines = ["| figure | value | unit |", "| --- | ---: | --- |"]
    for f in FIGURES:
        lines.append(f"| `{f.name}` | {_fmt(figures.get(f.name), f.unit)} | {f.unit} |")
    lines += ["", "| target | verdict |", "| --- | --- |"]
    lines += [f"| {text} | {verdict} |" for text, verdict in verdicts(figures, context)]
    return "\n".join(lines)


def write_json(path: Path, figures: dict[str, Any], context: dict[str, Any]) -> None:
    path.write_text(json.dumps({**figures, "context": context}, indent=2, sort_keys=False) + "\n", encoding="utf-8")
