"""A minimal HTTP/1.1 client for the bench's open-loop load: keep-alive connections to one server, JSON bodies.

Why not httpx there: under an open loop the requests in flight pile up whenever the services fall behind,
and httpcore's pool goes through every connection at each request's start and end (`has_expired`,
`is_idle`, a `getpeername` each): the load process spent 45-56% of its CPU there, 7-11 ms per request, on
the two cores the services under test share (BENCHMARKS.md, "The end-to-end phase profiled"). This client
keeps idle connections in a list and speaks only what the services answer: a status line, headers and a
Content-Length body (uvicorn's answers). The requests are the same bytes on the same sockets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


class RawHttpError(Exception):
    """The connection failed, closed early, timed out, or answered what this client does not read."""


@dataclass
class Answer:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class RawHttp:
    """Requests to one `http://host:port`, each on an idle keep-alive connection or a new one."""

    def __init__(self, base_url: str, timeout: float) -> None:
        split = urlsplit(base_url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: dict, headers: dict[str, str]) -> Answer:
        return await self.request("POST", path, json.dumps(body).encode(), headers)

    async def get(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Answer:
        return await self.request("GET", f"{path}?{urlencode(params)}" if params else path, None, headers)

    async def request(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        reused = bool(self._idle)
        try:
            return await asyncio.wait_for(self._exchange(message), self.timeout)
        except _ClosedBeforeAnswer:
            if not reused:
                raise RawHttpError("connection closed before the answer") from None
            # a kept connection the server had closed meanwhile (its keep-alive timeout): it read nothing
            return await asyncio.wait_for(self._exchange(message, fresh=True), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            raise RawHttpError(repr(exc)) from exc

    async def _exchange(self, message: bytes, fresh: bool = False) -> Answer:
        reader, writer = (self._idle.pop() if self._idle and not fresh
                          else await asyncio.open_connection(self.host, self.port))
        keep = False
        try:
            try:
                writer.write(message)
                status_line = await reader.readline()
            except ConnectionError:  # reset or broken pipe before any answer: as closed
                status_line = b""
            if not status_line:
                raise _ClosedBeforeAnswer()
            status = int(status_line.split(b" ", 2)[1])
            length, keep = None, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
                elif name == b"transfer-encoding":
                    raise ValueError("chunked answers are not read here")
            if length is None:
                raise ValueError("an answer without Content-Length")
            content = await reader.readexactly(length)
            return Answer(status, content)
        except BaseException:
            keep = False
            raise
        finally:
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class _ClosedBeforeAnswer(Exception):
    pass
