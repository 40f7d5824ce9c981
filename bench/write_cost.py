"""One HTTP write's CPU, component by component (issue 16): registration's app served N writes — the bench's
saturation writes (a student registered, the collège's avis, an interview), several students at once — and the
CPU it spent per write split into categories from py-spy's samples of the service.

    python bench/write_cost.py --mode asgi --students 300 --concurrency 8
    python bench/write_cost.py --mode socket --students 300 --concurrency 8 --port 9400

`asgi`: the app in this process, each request one raw ASGI call (no HTTP parsing, no client in the way); the
CPU is this process's (`time.process_time`, every thread: the key store's calls in `asyncio.to_thread` and the
view's consumer included), less the driver's share of the samples. `socket`: `passpro serve registration` in
its own process (uvicorn, httptools, uvloop as it runs), driven over 127.0.0.1 by httpx from this process; the
CPU is the service's, from /proc. Each mode measures the writes after a warm-up (FastAPI builds its routes'
contexts and the pools their connections at the first requests). The view, the key store (schema `keystore`,
the rows this run made deleted at the end) are on PostgreSQL, as `bench/write_path.py`'s runs.

The categories (`CATEGORIES`) are decided per sample by the first rule that its stack matches: the specific
pieces of work first (a frame anywhere in the stack), then the layer of its innermost known frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import load
from bench.harness import DEFAULT_DATABASE_URL, QUICK, Bench
from bench.log_client import log_client
from bench.workload import LogWriter, Places
from bench.write_path import REPO, Config, clean_redis, cpu_seconds, forget_keys, start, use_postgres_keystore
from shared.contracts.streams import StreamKeys

DRIVER = "driver (this script, not the service)"

Frames = list[str]  # one sample's stack, outermost first: "function (path/to/file.py:line)"


def _any(*parts: str) -> Callable[[Frames], bool]:
    return lambda frames: any(part in frame for frame in frames for part in parts)


def _under(outer: str, *inner: str) -> Callable[[Frames], bool]:
    """A frame with `outer` and, deeper in the same stack, one with any of `inner`."""

    def match(frames: Frames) -> bool:
        for n, frame in enumerate(frames):
            if outer in frame:
                return any(part in deeper for deeper in frames[n + 1:] for part in inner)
        return False

    return match


# Pieces of work, in priority order: a sample goes to the first whose rule its stack matches.
WORK: list[tuple[str, Callable[[Frames], bool]]] = [
    ("view's consumer (the writes projected)", _any("shared/runtime/projection/")),
    (DRIVER, lambda f: _any("drive.<locals>", "Driver.", "writes (bench/", "httpx/", "httpcore/")(f)
     and not _any("starlette/", "fastapi/", "shared/", "services/", "uvicorn/")(f)),
    ("JWT verification", _any("shared/runtime/http/auth.py", "jwt/")),
    ("key store call (PostgreSQL, in a thread)", _any("shared/runtime/keys/store.py", "psycopg", "sqlalchemy/")),
    ("sealing (AES-GCM)", _any("shared/runtime/keys/crypto.py", "cryptography/", "Keyring.seal", "StudentKeys.")),
    ("Redis: append script round trip", _under("EventLog._run_append", "redis/", "asyncio/")),
    ("the entry's fields (event_to_fields, hash)", _any("EventLog.append ", "event_to_fields", "entry_hash")),
    ("Redis: the fold cache's read round trip", _under("FoldCache.read ", "redis/", "asyncio/")),
    ("fold: entries parsed, file moved forward", _any("FoldCache.", "_student_step", "_rectorat_step",
                                                      "_as_read_without_key")),
    ("decision (domain rules)", _any("shared/domain/", "services/registration/domain.py")),
    ("request fingerprint (HMAC)", _any(" fingerprint (shared/runtime/commands.py")),
    ("the event built (pydantic), the command's loop", _any("shared/runtime/commands.py")),
    ("handler's checks (reference, role)", _any("services/registration/handlers.py")),
    ("answer JSON (model_dump, JSONResponse)", _any("answer_of", "Outcome.body", "starlette/responses.py")),
    ("body read and validation (FastAPI, pydantic)", _any("request_body_to_args", "_validate_value_with_model_field",
                                                          "Request.json", "Request.body", "_extract_form_body",
                                                          "solve_dependencies")),
]
# Else the layer of the innermost frame that names one (the event loop's own frames are seen through).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("middleware (ApiGuard, HttpMethods, CampaignCalendar)", ("shared/runtime/http/guard.py",
                                                               "shared/runtime/http/calendar.py")),
    ("Starlette/FastAPI routing and dependencies", ("starlette/", "fastapi/", "services/registration/api.py",
                                                    "shared/runtime/http/app.py")),
    ("uvicorn (HTTP parsing, transport)", ("uvicorn/", "httptools", "h11/")),
    # redis-py sends each command in a task of its own (asyncio.wait_for on Python 3.11): which round trip
    # it serves is not in the stack.
    ("Redis: sends and connection pool (either round trip)", ("redis/",)),
    ("logging", ("logging/",)),
]
LOOP = ("asyncio/", "concurrent/futures", "threading.py", "selectors.py", "contextvars")
# A thread or the loop waiting (py-spy's idle test misses some): not CPU.
IDLE = ("_worker (concurrent/futures/thread.py", "Condition.wait (threading.py", "EpollSelector.select (selectors.py")


def category(frames: Frames) -> str | None:
    if not frames or frames[-1].startswith(IDLE):
        return None
    for name, rule in WORK:
        if rule(frames):
            return name
    for frame in reversed(frames):
        for name, parts in LAYERS:
            if any(part in frame for part in parts):
                return name
    return "event loop, threads (asyncio)" if _any(*LOOP)(frames) else "other"


def read_samples(path: Path) -> Counter:
    """py-spy's raw output (collapsed stacks, `frame;frame;… count`) as samples per category."""
    counts: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            name = category(stack.split(";"))
            if name is not None:
                counts[name] += int(count)
    return counts


def spy(pid: int, output: Path, rate: int) -> subprocess.Popen:
    """py-spy on `pid` until stopped with SIGINT (then it writes its samples): active threads only."""
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--gil",
                             "--nonblocking", "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_spy(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(60)


def writes(plan: load.ClientPlan, client: int, students: range) -> list[tuple[str, str, bytes]]:
    """The saturation's writes of one client, in order: (collège, path, JSON body)."""
    out = []
    for k in students:
        _, college, student_writes = load._writes_of_student(plan, client, k)
        out += [(college, path, json.dumps(body).encode()) for path, body, _ in student_writes]
    return out


class AsgiDriver:
    """Each write one ASGI call of the app, as uvicorn would make it after parsing the request."""

    def __init__(self, app, tokens: dict[str, str]) -> None:
        self.app, self.tokens = app, tokens

    async def post(self, college: str, path: str, body: bytes) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"authorization", f"Bearer {self.tokens[college]}".encode())],
        }
        sent = False
        status = 0

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            return {}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


class SocketDriver:
    def __init__(self, http: httpx.AsyncClient, url: str, tokens: dict[str, str]) -> None:
        self.http, self.url, self.tokens = http, url, tokens

    async def post(self, college: str, path: str, body: bytes) -> int:
        answer = await self.http.post(self.url + path, content=body, headers={
            "Authorization": f"Bearer {self.tokens[college]}", "Content-Type": "application/json"})
        return answer.status_code


async def drive(driver, plan: load.ClientPlan, concurrency: int, students: range) -> Counter:
    """`concurrency` clients, each writing its share of the students in order; the statuses counted."""
    statuses: Counter = Counter()
    share = len(students) // concurrency

    async def client(c: int) -> None:
        for college, path, body in writes(plan, c, students[c * share:(c + 1) * share]):
            statuses[await driver.post(college, path, body)] += 1

    await asyncio.gather(*(client(c) for c in range(concurrency)))
    return statuses


def plan_for(bench: Bench, url: str, order: int) -> load.ClientPlan:
    principals, rectorat = bench.tokens()
    return load.ClientPlan(url, None, principals, rectorat, Places.from_reference().voeux, 10 * order, 1, 1, 0, 0)


async def open_campaign(bench: Bench, academie: str) -> None:
    redis = log_client(bench.redis_url)
    await LogWriter(redis, StreamKeys(academie), bench.campaign, bench.keystore).open_campaign()
    await redis.aclose()


async def measure_asgi(bench: Bench, args, order: int, profile: Path) -> dict:
    from services.cli.common import app_factory, env_settings

    academie = f"{bench.http_academie}{order}"
    await open_campaign(bench, academie)
    url, schema = bench.database("postgres", f"registration_wc_{order}")
    bench.migrate("registration", url, schema)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(bench.env(academie, url, schema))
    try:
        create_app, _ = app_factory("registration")
        app = create_app(env_settings("registration"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    plan = plan_for(bench, "", order)
    driver = AsgiDriver(app, plan.tokens)
    async with app.router.lifespan_context(app):
        warm = await drive(driver, plan, args.concurrency, range(0, args.warmup))
        await asyncio.sleep(1)  # the consumer's catch-up of the warm-up, before the measurement
        spying = spy(os.getpid(), profile, args.rate)
        await asyncio.sleep(1)  # py-spy attached
        cpu, wall = time.process_time(), time.perf_counter()
        statuses = await drive(driver, plan, args.concurrency, range(args.warmup, args.warmup + args.students))
        await asyncio.sleep(0.5)  # the view's consumer projects the last writes (its CPU is the writes')
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stop_spy(spying)
    return report("asgi", statuses, warm, cpu, wall, read_samples(profile))


async def measure_socket(bench: Bench, args, order: int, profile: Path) -> dict:
    academie = f"{bench.http_academie}{order}"
    await open_campaign(bench, academie)
    service = start(bench, Config("new", REPO, 1), academie, args.port + order)
    try:
        plan = plan_for(bench, service.url, order)
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            driver = SocketDriver(http, service.url, plan.tokens)
            warm = await drive(driver, plan, args.concurrency, range(0, args.warmup))
            await asyncio.sleep(1)
            spying = spy(service.process.pid, profile, args.rate)
            await asyncio.sleep(1)
            cpu, wall = cpu_seconds(service.process.pid), time.perf_counter()
            statuses = await drive(driver, plan, args.concurrency, range(args.warmup, args.warmup + args.students))
            await asyncio.sleep(0.5)
            cpu, wall = cpu_seconds(service.process.pid) - cpu, time.perf_counter() - wall
            stop_spy(spying)
    finally:
        bench.services.running.append(service)
        bench.stop_service(service)
    return report("socket", statuses, warm, cpu, wall, read_samples(profile))


def report(mode: str, statuses: Counter, warm: Counter, cpu: float, wall: float, samples: Counter) -> dict:
    """CPU per write, and its split by category in µs per write (the driver's samples taken out)."""
    accepted = statuses.get(201, 0)
    driver = samples.pop(DRIVER, 0)
    total = sum(samples.values())
    service_cpu = cpu * (total / (total + driver)) if mode == "asgi" and total + driver else cpu
    per_write = service_cpu / accepted * 1e6 if accepted else 0.0
    split = {name: round(per_write * n / total) for name, n in samples.most_common()} if total else {}
    return {"mode": mode, "accepted": accepted, "other_statuses": {str(k): v for k, v in statuses.items() if k != 201},
            "warmup_statuses": {str(k): v for k, v in warm.items()}, "cpu_us_per_write": round(per_write),
            "wall_s": round(wall, 2), "writes_per_cpu_s": round(accepted / service_cpu, 1) if service_cpu else None,
            "samples": total, "driver_samples": driver, "us_per_write": split}


def table(runs: list[dict]) -> str:
    names = list(dict.fromkeys(name for run in runs for name in run["us_per_write"]))
    head = "| category | " + " | ".join(f"{r['mode']} ({n + 1})" for n, r in enumerate(runs)) + " |"
    lines = [head, "| --- |" + " ---: |" * len(runs)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(str(r["us_per_write"].get(name, 0)) for r in runs) + " |")
    lines.append("| **CPU per write (µs)** | " + " | ".join(f"**{r['cpu_us_per_write']}**" for r in runs) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", action="append", choices=("asgi", "socket"), required=True,
                        help="repeat to alternate (e.g. --mode asgi --mode socket --mode asgi)")
    parser.add_argument("--students", type=int, default=300, help="measured students (3 writes each)")
    parser.add_argument("--warmup", type=int, default=16, help="students written before the measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="py-spy's samples per second")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--redis-url", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--profiles", metavar="DIR", type=Path, help="keep py-spy's raw samples there")
    args = parser.parse_args()
    args.students -= args.students % args.concurrency
    args.warmup -= args.warmup % args.concurrency
    workdir = Path(tempfile.mkdtemp(prefix="passpro-write-cost-"))
    since = datetime.now(UTC)
    bench = Bench(QUICK, args.redis_url, args.database_url, workdir)
    use_postgres_keystore(bench, args.database_url)
    runs: list[dict] = []
    try:
        for order, mode in enumerate(args.mode):
            measure = measure_asgi if mode == "asgi" else measure_socket
            profiles = args.profiles or workdir
            profiles.mkdir(parents=True, exist_ok=True)
            runs.append(asyncio.run(measure(bench, args, order, profiles / f"{order}-{mode}.txt")))
            print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
    finally:
        bench.services.stop_all()
        asyncio.run(clean_redis(bench, [f"{bench.http_academie}{n}" for n in range(len(args.mode))]))
        bench.keystore.close()
        bench._drop_schemas()
        print(f"key store rows removed: {forget_keys(args.database_url, bench.campaign, since, len(args.mode))}",
              file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
