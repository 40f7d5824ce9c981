"""A service's pages added to its app: the shared sign-in routes, its own pages, static files, error pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from shared.web.errors import install_error_pages
from shared.web.pages import STATIC, Web
from shared.web.oidc import oidc
from shared.web.signin import signin


def install_pages(app: FastAPI, pages: Web, router: APIRouter) -> None:
    app.state.web = pages
    app.include_router(signin)
    app.include_router(oidc)  # the académie's OpenID Connect sign-in (SPEC §8), when configured
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_error_pages(app, pages)
