"""The notifier's process (`passpro serve notifier`): the worker in the app's lifespan, and two pages — the
local outbox (/outbox, only with no SMTP configured: the e-mails `passpro up` keeps instead of sending) and
/status (JSON: lag, sent, retrying, last errors)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from html import escape

from services.notifier.settings import NotifierSettings

from services.notifier.process import MIGRATIONS  # noqa: F401 - the CLI finds the migrations here


def create_app(settings: NotifierSettings, *, clock=None):
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    from services.notifier import ledger
    from services.notifier.process import opened
    from services.notifier.worker import status

    state: dict = {}

    @asynccontextmanager
    async def lifespan(_app):
        async with opened(settings, clock=clock) as notifier:
            stop = asyncio.Event()
            task = asyncio.create_task(notifier.run(stop))
            state.update(engine=notifier.engine, redis=notifier.redis)
            try:
                yield
            finally:
                stop.set()
                await asyncio.wait([task], timeout=10)

    app = FastAPI(title="Passpro — notifier", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/readyz")
    async def readyz():
        ready = "engine" in state
        return JSONResponse({"status": "ok" if ready else "starting"}, status_code=200 if ready else 503)

    @app.get("/status")
    async def status_json():
        return JSONResponse(await status(settings, state["redis"], state["engine"]))

    @app.get("/outbox", response_class=HTMLResponse)
    async def outbox_page():
        if settings.smtp_url or settings.environment == "production":
            return HTMLResponse("<!doctype html><html lang=\"fr\"><title>Boîte d'envoi</title><p>Les courriels "
                                "partent par SMTP : pas de boîte d'envoi locale.</p></html>", status_code=404)

        def read():
            with state["engine"].connect() as conn:
                return ledger.outbox_page(conn)

        rows = await asyncio.to_thread(read)
        items = "".join(
            f"<article><h2>{escape(r.subject)}</h2><p>À : {escape(r.recipient)} — gardé le {escape(r.stored_at)}</p>"
            f"<pre>{escape(r.text)}</pre></article>" for r in rows)
        return HTMLResponse(
            "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Boîte d'envoi locale — Passpro"
            "</title></head><body><main><h1>Boîte d'envoi locale</h1><p>Aucun serveur SMTP n'est configuré "
            "(PASSPRO_SMTP_URL) : les courriels sont gardés ici au lieu d'être envoyés.</p>"
            + (items or "<p>Aucun courriel pour l'instant.</p>") + "</main></body></html>")

    return app
