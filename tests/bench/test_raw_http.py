"""bench/raw_http.py, the steady load's HTTP client, against a small server of the test's own (port 9190):
the request's bytes as a server reads them, the answer as sent, a kept connection reused, and one the server
closed meanwhile replaced without losing the request."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.raw_http import RawHttp, RawHttpError

PORT = 9190


class Server:
    """Answers each request with its own method, target, Authorization and JSON body, on the connection it
    came on (keep-alive), or closes the connection after the first answer when `close_after_one`."""

    def __init__(self, close_after_one: bool = False) -> None:
        self.close_after_one = close_after_one
        self.connections = 0
        self.requests: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while line := await reader.readline():
            method, target, _ = line.decode().split(" ")
            headers = {}
            while (h := await reader.readline()) != b"\r\n":
                name, _, value = h.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            seen = {"method": method, "target": target, "authorization": headers.get("authorization"),
                    "body": json.loads(body) if body else None}
            self.requests.append(seen)
            answer = json.dumps(seen).encode()
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(answer)).encode() + b"\r\n\r\n" + answer)
            await writer.drain()
            if self.close_after_one:
                break
        writer.close()


@pytest.fixture
async def serving():
    servers = []

    async def start(server: Server) -> Server:
        servers.append(await asyncio.start_server(server.handle, "127.0.0.1", PORT))
        return server

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


async def test_requests_go_as_sent_and_answers_come_back_on_one_kept_connection(serving) -> None:
    server = await serving(Server())
    http = RawHttp(f"http://127.0.0.1:{PORT}", timeout=5)
    posted = await http.post("/api/students", {"last_name": "Élève", "n": 1}, {"Authorization": "Bearer t"})
    read = await http.get("/api/bonuses/X1", {"min_position": "1-0"}, {"Authorization": "Bearer r"})
    await http.aclose()

    assert posted.status_code == 201
    assert posted.json() == {"method": "POST", "target": "/api/students", "authorization": "Bearer t",
                             "body": {"last_name": "Élève", "n": 1}}
    assert read.json()["target"] == "/api/bonuses/X1?min_position=1-0" and read.json()["method"] == "GET"
    assert server.connections == 1


async def test_a_kept_connection_the_server_closed_is_replaced_and_the_request_sent_once(serving) -> None:
    server = await serving(Server(close_after_one=True))
    http = RawHttp(f"http://127.0.0.1:{PORT}", timeout=5)
    await http.post("/a", {"n": 1}, {})
    second = await http.post("/b", {"n": 2}, {})
    await http.aclose()

    assert second.json()["body"] == {"n": 2}
    assert [r["target"] for r in server.requests] == ["/a", "/b"] and server.connections == 2


async def test_a_server_that_is_not_there_is_an_error_of_the_client() -> None:
    with pytest.raises(RawHttpError):
        await RawHttp(f"http://127.0.0.1:{PORT + 1}", timeout=5).get("/", {}, {})
