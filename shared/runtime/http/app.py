"""The skeleton every service shares: connections, the view's consumer, health checks and the HTTP edge.

A service's `create_app(settings)` hands its routers, view and migrations to
`build_app`; nothing is connected before the app starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.asyncio import Redis
from sqlalchemy import Engine, Table, text
from sqlalchemy.exc import SQLAlchemyError

from shared.contracts.reference import ReferenceData
from shared.contracts.streams import StreamKeys
from shared.runtime import commands, tries
from shared.runtime.http.auth import Principal, VerifiedTokens
from shared.runtime.http.calendar import CampaignCalendar
from shared.runtime.commands import Decide, DecideWith, Outcome, RelatedOf
from shared.runtime.projection.consumer import Consumer
from shared.runtime.projection.lease import view_lease
from shared.runtime.db import make_engine
from shared.runtime.http.guard import ApiGuard, HttpMethods, ViewBehind, install_error_handlers
from shared.runtime.log.client import EventLog
from shared.runtime.redis_connect import redis_client, replication
from shared.runtime.migrations import is_up_to_date
from shared.runtime.http.openapi import API_DESCRIPTION
from shared.runtime.http.provider_tokens import ProviderTokens
from shared.runtime.reference_store import load_reference
from shared.runtime.http.requests import WriteBody
from shared.runtime.settings import ServiceSettings
from shared.runtime.projection.protocol import View

log = logging.getLogger(__name__)

FINGERPRINT_KEY_INFO = b"passpro-request-fingerprint-v1"


@dataclass
class Runtime:
    """Everything a running service's routes need."""

    name: str
    settings: ServiceSettings
    keys: StreamKeys
    redis: Redis
    engine: Engine
    log: EventLog
    reference: ReferenceData
    consumer: Consumer
    view: Any
    fingerprint_key: bytes  # keys the request digests kept in Redis (commands.run)
    verified_tokens: VerifiedTokens  # the app's verified signatures: the guard's and the pages' token reads
    # The service's clock: the moment its commands are decided at and its pages' « à faire » lists are computed
    # for (SPEC §7 deadlines); a test sets it to drive time.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @functools.cached_property
    def address_secret(self) -> bytes:
        """Keys the sign-in counts' address digests (tries.address_key), derived once from the master key."""
        return self.settings.master().derive(tries.ADDRESS_KEY_INFO, b"")

    def address_key(self, request: Request) -> str:
        """The sign-in starts' count key of the request's browser address (tries.address_key)."""
        return tries.address_key(self.address_secret, request.client.host if request.client else None)

    async def wait_for(self, min_position: str | None) -> None:
        """Return once the view has read the log up to `min_position`; 503 `view_behind` if it has not
        within the bounded wait: a read is up to date with the caller's own writes, or refused (SPEC §5.1)."""
        if min_position and not await self.consumer.wait_for(min_position, self.settings.read_wait_seconds):
            raise ViewBehind()

    async def command(
        self, who: Principal, action: str, ine: str | None, campaign: str | None, body: WriteBody,
        decide: Decide | DecideWith, related: RelatedOf | None = None,
    ) -> Outcome:
        """A handler's command, appended at the version its decision was read at (commands.run), identified by
        this service, who asked, the student, the campaign (the one in force by default) and the body; with
        `related`, also at the versions of the other streams it reads (e.g. a slot's, SPEC §7 rule 9)."""
        return await commands.run(
            self.log,
            service=self.name,
            key=self.fingerprint_key,
            actor=who.actor,
            action=action,
            campaign=campaign or self.settings.campaign,
            ine=ine,
            event_id=body.event_id,
            request=body.request_fields(),
            decide=decide,
            related=related,
            clock=self.clock,
        )


async def answer_of(command: Awaitable[Outcome]) -> JSONResponse:
    """A command's answer once its handler has run: 201 with the event and its positions, or 200 for a
    retried request (its original event). The API's routes and the pages' forms answer through it."""
    outcome = await command
    return JSONResponse(outcome.body(), status_code=outcome.status)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


# Work a service does for as long as it runs, beside its consumer: started once its Runtime is built, asked
# to end by `stop` when the app shuts down (and cancelled then, if it is waiting on anything else).
BackgroundTask = Callable[[Runtime, asyncio.Event], Awaitable[None]]


def forgetting_old_tries(tables: Sequence[Table]) -> BackgroundTask:
    """The task deleting the tries (shared/runtime/tries.py) past their hour with no lock running, at the start and
    every FORGET_EVERY_SECONDS by the runtime's clock until `stop`: an address's digest or an INE's count goes
    without waiting for another try. It runs once when `stop` is already set."""
    async def run(rt: Runtime, stop: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.to_thread(tries.forget_old_tries, rt.engine, tables, rt.clock())
            except SQLAlchemyError as exc:  # the next round tries again
                log.warning("old sign-in tries not deleted this round: database unreachable (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tries.FORGET_EVERY_SECONDS)
            if stop.is_set():
                return

    return run


def build_app(
    *,
    name: str,
    title: str,
    settings: ServiceSettings,
    database_url: str,
    migrations_dir: Path,
    make_view: Callable[[], View],
    routers: list[APIRouter],
    background: Mapping[str, BackgroundTask] | None = None,
    tries_tables: Sequence[Table] = (tries.sign_in_starts,),
) -> FastAPI:
    """The service's app; `background` names the tasks it runs beside its consumer while it runs, besides the one
    deleting the old rows of its `tries_tables` (every page service counts its sign-in starts)."""
    background = {"forget-old-tries": forgetting_old_tries(tries_tables), **(background or {})}
    schema = settings.database_schema or name
    verified_tokens = VerifiedTokens()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        redis = redis_client(settings, decode_responses=True)  # through the Sentinels when set (SPEC §9)
        engine = make_engine(database_url, schema)  # a connection PostgreSQL dropped is replaced at checkout
        keys = StreamKeys(settings.academie)
        reference = await load_reference(redis, keys)
        keystore = await asyncio.to_thread(settings.open_keystore)
        view = make_view()
        consumer = Consumer(redis, engine, keys, view, keystore=keystore, page_size=settings.consumer_page_size,
                            lease=view_lease(engine, view.name),  # one active consumer among replicas (SPEC §9)
                            replication=replication(settings))  # and never ahead of the log's replicas
        event_log = EventLog(redis, keys, keystore, replication(settings))
        fingerprint_key = settings.master().derive(FINGERPRINT_KEY_INFO, b"")
        rt = app.state.runtime = Runtime(
            name, settings, keys, redis, engine, event_log, reference, consumer, view, fingerprint_key, verified_tokens
        )
        stop = asyncio.Event()
        tasks = [asyncio.create_task(consumer.run(stop), name=f"{name}-consumer")]
        if os.environ.get("PASSPRO_WORKER_INDEX", "0") == "0":  # `passpro serve --workers N`: in worker 0 only
            tasks += [asyncio.create_task(run(rt, stop), name=f"{name}-{task}")
                      for task, run in background.items()]
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await redis.aclose()
            engine.dispose()
            keystore.close()

    # Passpro configures no OpenTelemetry: FastAPI's own (0.165) otherwise looks for a provider at every request,
    # reading the environment three times (about 10 µs of CPU per request, issue 16).
    no_telemetry = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title=title, description=API_DESCRIPTION, lifespan=lifespan, docs_url="/docs",
                  openapi_url="/openapi.json", telemetry=no_telemetry)
    app.state.background_tasks = background  # by name, as worker 0 runs them (a test runs one at its own clock)
    app.add_middleware(
        ApiGuard,
        secret=lambda: settings.jwt_secret,
        reference=lambda: app.state.runtime.reference,
        issuer=settings.jwt_issuer,
        verified=verified_tokens,
        provider_tokens=ProviderTokens.from_settings(settings),
    )
    app.add_middleware(CampaignCalendar)  # the calendar's band on the pages (SPEC §7)
    app.add_middleware(HttpMethods)  # outermost: OPTIONS needs no token, HEAD is a GET to everything inside
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        rt = runtime(request)
        checks: dict[str, str] = {}
        try:
            await rt.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["redis"] = f"unreachable: {exc}"

        def database() -> str:
            with rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return "ok" if is_up_to_date(migrations_dir, rt.engine) else "migrations not applied"

        try:
            checks["database"] = await asyncio.to_thread(database)
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"unreachable: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> PlainTextResponse:
        rt = runtime(request)
        lines = [
            "# TYPE passpro_view_events_applied_total counter",
            f'passpro_view_events_applied_total{{service="{name}"}} {rt.consumer.applied}',
        ]
        return PlainTextResponse("\n".join(lines) + "\n")

    for router in routers:
        app.include_router(router)
    return app
