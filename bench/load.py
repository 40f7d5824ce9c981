"""HTTP load, driven from separate worker processes (each an asyncio loop of light keep-alive clients, `raw_http`).

Every function named `*_worker` runs in a child process of the bench's pool
(`bench/workers.py`), so the load generator never shares an interpreter with the
service it measures. Workers start together at an agreed wall-clock instant
and report counts and latencies; the harness merges them.

A client plays a collège principal: it registers its own students, gives the
collège avis and schedules an interview, so every write is accepted (201) and
no two clients touch the same student.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.raw_http import RawHttp, RawHttpError
from bench.workers import start_when


@dataclass
class ClientPlan:
    """What one worker process needs to know: where to write, as whom, and its place in the plan."""

    registration_url: str
    scoring_url: str | None
    tokens: dict[str, str]  # collège UAI -> a principal's token
    rectorat_token: str
    voeux: list[tuple[str, str]]
    worker: int
    workers: int
    clients: int  # concurrent clients in this worker (saturation)
    start_at: float  # time.time() at which every worker starts
    seconds: float
    rate_per_s: float = 0.0  # steady load: writes per second of this worker (0: as fast as it can)


@dataclass
class WorkerReport:
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    write_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)  # every read-back, visible or not, and those cut off
    e2e_not_visible: int = 0  # read-backs that came back without the change (counted in e2e_ms too)
    late_starts: int = 0  # steady load: writes sent more than 5 ms after their scheduled time
    late_s: float = 0.0  # how late the worker itself started (it then measured from its own start)
    unanswered: int = 0  # steady load: writes (or their read-back) still waiting at the cut-off, counted at it


def _writes_of_student(plan: ClientPlan, client: int, k: int) -> tuple[str, str, list[tuple[str, dict, str]]]:
    """The INE, the collège and the writes (path, body, what the bonus then shows) of one student."""
    ine = f"{plan.worker:02d}{client:02d}{k:05d}HT"
    colleges = sorted(plan.tokens)
    college = colleges[(plan.worker * max(plan.clients, 1) + client) % len(colleges)]
    rng = random.Random(ine)
    lycee, formation = rng.choice(plan.voeux)
    when = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0).isoformat()
    writes = [
        ("/api/students", {
            "student_ine": ine, "college_uai": college, "last_name": f"Charge{k}", "first_name": "Alex",
            "class_name": "3e B", "referent": {"user_id": "ref.bench", "name": "Référente", "email": "ref@ac-paris.fr"},
        }, "registered"),
        (f"/api/students/{ine}/college-avis", {
            "college_uai": college, "avis": "favorable", "comment": "Élève motivé.",
        }, "registered"),
        (f"/api/students/{ine}/interviews", {
            "lycee_uai": lycee, "formation_code": formation, "scheduled_at": when, "mode": "presentiel",
        }, f"voeu:{lycee}:{formation}"),
    ]
    return ine, college, writes


def _visible(body: dict, expect: str) -> bool:
    if expect == "registered":
        return body.get("ine") is not None
    _, lycee, formation = expect.split(":")
    return any(v["lycee_uai"] == lycee and v["formation_code"] == formation for v in body.get("voeux", []))


def _refused(report: WorkerReport, what: str) -> None:
    report.refused[what] = report.refused.get(what, 0) + 1


async def _saturate(plan: ClientPlan) -> WorkerReport:
    report = WorkerReport()
    began = start_when(plan.start_at)
    report.late_s = began - plan.start_at
    end = began + plan.seconds
    # The same light client as the steady phase's, so that "half the saturation rate" is measured with the
    # load generator's cost the steady phase pays (httpx took ~6 ms of CPU per request on the shared cores).
    http = RawHttp(plan.registration_url, 30)
    try:

        async def client(c: int) -> None:
            k = 0
            while True:
                _, college, writes = _writes_of_student(plan, c, k)
                k += 1
                for path, body, _ in writes:
                    if time.time() >= end:
                        return
                    sent = time.perf_counter()
                    try:
                        answer = await http.post(path, body, {"Authorization": f"Bearer {plan.tokens[college]}"})
                    except RawHttpError as exc:
                        _refused(report, repr(exc)[:120])
                        continue
                    if answer.status_code == 201 and time.time() <= end:
                        report.accepted += 1
                        report.write_ms.append((time.perf_counter() - sent) * 1000)
                    elif answer.status_code != 201:
                        _refused(report, f"{answer.status_code} {answer.text[:120]}")

        await asyncio.gather(*(client(c) for c in range(plan.clients)))
    finally:
        await http.aclose()
    return report


def saturation_worker(plan: ClientPlan) -> WorkerReport:
    """Closed loop: each client writes again as soon as its previous write is answered."""
    return asyncio.run(_saturate(plan))


STEADY_TIMEOUT_S = 10.0  # a write or read-back slower than this counts as failed
# When the offered rate exceeds what the system absorbs, the backlog would take minutes to drain: requests
# still waiting this long after the last one was due are cut off, and counted with the time they had waited
# then (so a p99 with many of them is a lower bound, and the report says how many there were).
STEADY_GRACE_S = 3.0


async def _steady(plan: ClientPlan) -> WorkerReport:
    report = WorkerReport()
    rectorat = {"Authorization": f"Bearer {plan.rectorat_token}"}
    total = int(plan.seconds * plan.rate_per_s)
    # Two writes per student here (registration, then the interview): both show in the bonus. A student's
    # interview comes half a second of schedule after their registration, as a separate request would.
    students = [_writes_of_student(plan, 0, k) for k in range((total + 1) // 2)]
    lag = max(1, int(plan.rate_per_s / 2))
    sequence = []
    for k in range(len(students) + lag):
        if k < len(students):
            ine, college, writes = students[k]
            sequence.append((ine, college, writes[0]))
        if lag <= k < len(students) + lag:
            earlier_ine, earlier_college, earlier_writes = students[k - lag]
            sequence.append((earlier_ine, earlier_college, earlier_writes[2]))
    # Not httpx here: its pool's cost per request grows with the requests in flight (raw_http.py's docstring).
    registration = RawHttp(plan.registration_url, STEADY_TIMEOUT_S)
    scoring = RawHttp(plan.scoring_url, STEADY_TIMEOUT_S) if plan.scoring_url else None
    try:
        stored: dict[str, asyncio.Event] = {}

        answered_at: dict[int, float] = {}  # task number -> when its write was answered

        async def one(n: int, ine: str, college: str, write: tuple[str, dict, str], due: float, first: bool) -> None:
            if not first:
                await stored[ine].wait()  # a student's second write needs the first one stored
            path, body, expect = write
            now = time.time()
            if now - due > 0.005:
                report.late_starts += 1
            try:
                answer = await registration.post(path, body, {"Authorization": f"Bearer {plan.tokens[college]}"})
            except RawHttpError as exc:
                _refused(report, repr(exc)[:120])
                return
            finally:
                if first:
                    stored[ine].set()
            done = answered_at[n] = time.time()
            if answer.status_code != 201:
                _refused(report, f"{answer.status_code} {answer.text[:120]}")
                return
            # Open loop: latency counts from when the write was due, so a slow answer delays no later write.
            report.write_ms.append((done - min(due, now)) * 1000)
            report.accepted += 1
            if scoring is None:
                return
            position = answer.json()["positions"]["service"]
            # Every read counts in the percentiles: one that came back without the change (scoring's view
            # not there within the wait, an error) counts with the time it took, a lower bound of the real
            # one, and is counted apart too (e2e_not_visible), so the slowest reads are never left out.
            try:
                seen = await scoring.get(f"/api/bonuses/{ine}", {"min_position": position}, rectorat)
                visible = seen.status_code == 200 and _visible(seen.json(), expect)
            except RawHttpError:
                visible = False
            report.e2e_ms.append((time.time() - done) * 1000)
            if not visible:
                report.e2e_not_visible += 1

        tasks: list[asyncio.Task] = []
        dues: list[float] = []
        began = start_when(plan.start_at)
        report.late_s = began - plan.start_at
        interval = 1.0 / plan.rate_per_s
        # Spread the workers' schedules so that together they send at an even pace.
        offset = interval * plan.worker / max(plan.workers, 1)
        for i, (ine, college, write) in enumerate(sequence):
            due = began + offset + i * interval
            await asyncio.sleep(max(0.0, due - time.time()))
            first = ine not in stored
            if first:
                stored[ine] = asyncio.Event()
            tasks.append(asyncio.create_task(one(i, ine, college, write, due, first)))
            dues.append(due)
        cutoff = began + plan.seconds + STEADY_GRACE_S
        await asyncio.wait(tasks, timeout=max(0.0, cutoff - time.time()))
        cut_at = time.time()
        for n, task in enumerate(tasks):
            if task.done():
                continue
            task.cancel()
            report.unanswered += 1
            if n in answered_at:  # written, its read-back still waiting: not visible in time
                report.e2e_ms.append((cut_at - answered_at[n]) * 1000)
                report.e2e_not_visible += 1
            else:
                report.write_ms.append((cut_at - dues[n]) * 1000)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await registration.aclose()
        if scoring is not None:
            await scoring.aclose()
    return report


def steady_worker(plan: ClientPlan) -> WorkerReport:
    """Open loop at `rate_per_s`: writes leave on schedule whatever the answers; each 201 is then read back
    from scoring with `min_position`, which answers once scoring's view holds the write."""
    return asyncio.run(_steady(plan))


async def _queries(scoring_url: str, token: str, requests: int, filtered: dict[str, Any]) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"summary": [], "bonuses_filtered": []}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        for name, path, params in (("summary", "/api/reports/summary", {}), ("bonuses_filtered", "/api/bonuses", filtered)):
            for _ in range(3):  # warm the connection and the database's caches
                (await http.get(scoring_url + path, params=params)).raise_for_status()
            for _ in range(requests):
                sent = time.perf_counter()
                answer = await http.get(scoring_url + path, params=params)
                times[name].append((time.perf_counter() - sent) * 1000)
                answer.raise_for_status()
    return times


def query_worker(scoring_url: str, token: str, requests: int, filtered: dict[str, Any]) -> dict[str, list[float]]:
    """One reader, one request at a time: the queries' own latency, no queueing behind other readers."""
    return asyncio.run(_queries(scoring_url, token, requests, filtered))


def merge(reports: list[WorkerReport]) -> WorkerReport:
    merged = WorkerReport()
    for r in reports:
        merged.accepted += r.accepted
        for k, v in r.refused.items():
            merged.refused[k] = merged.refused.get(k, 0) + v
        merged.write_ms += r.write_ms
        merged.e2e_ms += r.e2e_ms
        merged.e2e_not_visible += r.e2e_not_visible
        merged.late_starts += r.late_starts
        merged.late_s = max(merged.late_s, r.late_s)
        merged.unanswered += r.unanswered
    return merged


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank; None when nothing was measured."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
