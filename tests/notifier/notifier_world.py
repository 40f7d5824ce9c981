"""The notifier's test world: a real SMTP server (aiosmtpd, on a free port, in a thread) that collects what it
receives and can refuse on demand; events appended to the test's own académie; a notifier on SQLite."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.shared.event_factories import CAMPAIGN, make_event

SERVICE_OF = {
    "StudentRegistered": "registration", "InterviewScheduled": "registration", "InterviewRescheduled": "registration",
    "InterviewCancelled": "registration", "CollegeAvisGiven": "registration", "StudentWithdrawn": "registration",
    "InterviewHeld": "evaluation", "LyceeAvisGiven": "evaluation", "StudentForgotten": "scoring",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Inbox:
    """What the SMTP server received (parsed), and how many times it should still refuse."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: int = 0  # the next N messages are answered 451 (a temporary failure)
    refused: int = 0
    delay: float = 0.0  # seconds between receiving the data and answering 250
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import asyncio

        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused += 1
                return "451 4.3.0 Service momentanément indisponible"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"

    def keys(self) -> list[str]:
        with self.lock:
            return ["".join(str(m["X-Passpro-Notification"]).split()) for m in self.messages]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.messages)} messages received, {count} expected within {timeout} s")


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def text_of(message: EmailMessage) -> str:
    """The plain text part, its no-break spaces (French typography: « 10 h 00 ») read as spaces."""
    return message.get_body(("plain",)).get_content().replace("\u00a0", " ").replace("\u202f", " ")


def subject_of(message: EmailMessage) -> str:
    return str(message["Subject"]).replace("\u00a0", " ").replace("\u202f", " ")


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


class Student:
    """One student's events appended as the services do, each at the version it expects."""

    def __init__(self, log, ine: str) -> None:
        self.log = log
        self.ine = ine
        self.version = 0

    async def add(self, payload, at: datetime | None = None) -> str:
        event = make_event(payload, ine=self.ine, occurred_at=at)
        appended = await self.log.append(event, SERVICE_OF[payload.EVENT_TYPE], self.version, str(event.event_id))
        assert appended.status == "ok", appended
        self.version += 1
        return str(event.event_id)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings_for(academie: str, redis_url: str, data_dir: Path, smtp_url: str = "", **more):
    from services.notifier.settings import NotifierSettings

    return NotifierSettings(redis_url=redis_url, academie=academie, campaign=CAMPAIGN, data_dir=data_dir,
                            smtp_url=smtp_url, **more)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")


async def wait_async(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")
