"""A read answered again once when its database connection was found dropped, instead of a 503.

The views' engine pings no connection at checkout (issue 16: the ping was 8-29% of scoring's read threads):
after PostgreSQL restarted or killed its backends, the first statement on each pooled connection fails, and
SQLAlchemy then replaces every connection the pool held. A GET reads only, so running it once more, on a fresh
connection, is safe; a write is not run again here (it answers 503, and its retry with the same event_id is safe).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DROPPED = "passpro_connection_dropped"  # in the request's state, set by the 503 handler (guard.py)


def note_dropped_connection(request: Request, exc: Exception) -> None:
    """Mark a request that failed on a connection found dropped (not on a database out of reach)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        setattr(request.state, DROPPED, True)


class ReadAgainOnDroppedConnection:
    """Runs a GET once more when its first run ended on a dropped connection (its 503 is never sent).

    Added before the other middleware, so inside them: the token is not checked twice."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":  # HEAD is a GET here (HttpMethods, outermost)
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict the handler's request.state writes to, even in a copy of scope
        dropped = False

        async def send_unless_dropped(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start" and state.pop(DROPPED, False):
                dropped = True
            if not dropped:
                await send(message)

        await self.app(scope, receive, send_unless_dropped)
        if dropped:
            await self.app(scope, _empty_body_then(receive), send)


def _empty_body_then(receive: Receive) -> Receive:
    """A GET's body (none) again for its second run, then whatever the client sends (its disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return again
