"""The access log as the rectorat's commands use it (privacy): a command's read recorded on channel `cli`,
and who read a student's file, with the establishments' names to show it."""

from __future__ import annotations

import getpass
from collections.abc import Iterable

from redis.asyncio import Redis

from shared.contracts.streams import StreamKeys
from shared.runtime import access_log
from shared.runtime.reference_store import load_reference


def cli_user(user: str | None = None) -> str:
    return user or f"cli:{getpass.getuser()}"


async def log_cli_read(redis: Redis, keys: StreamKeys, campaign: str, ines: Iterable[str], what: str,
                       user: str | None = None) -> int:
    """Log a read made by a rectorat command (channel `cli`); raises if the log cannot be written."""
    return await access_log.record(
        redis, keys, campaign, ines,
        user_id=cli_user(user), role="rectorat", uai=None, service="scoring", what=what, channel="cli",
    )


async def accesses_of(redis: Redis, keys: StreamKeys, campaign: str, ine: str) -> tuple[bool, list[dict], dict[str, str]]:
    """(whether the campaign knows the student, who read its file — oldest first —, the establishments' names)."""
    entries = await access_log.read(redis, keys, campaign, ine)
    known = bool(entries) or bool(await redis.exists(keys.student(campaign, ine)))
    reference = await load_reference(redis, keys)
    return known, [e.as_dict() for e in entries], {e.uai: e.name for e in reference.establishments}
