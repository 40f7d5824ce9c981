"""Who looked at a student's file (issue 5, « who looked »): one append-only Redis stream per student and campaign.

Every read that shows a student's personal fields appends one entry — when, who, from which
establishment, through which service, what and how (API, page, command) — before the answer
leaves: an unlogged read of a minor's file is not acceptable, so a read whose entry cannot be
written fails. An entry holds no personal field; the INE is only in the key
(`passpro:{<académie>}:<campaign>:access:<INE>`), so the campaign's purge takes the log with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from starlette.requests import Request

from shared.contracts.streams import StreamKeys
from shared.fr.labels import CHANNEL_LABELS
from shared.runtime.http.guard import principal
from shared.runtime.http.app import runtime

CHANNELS = tuple(CHANNEL_LABELS)  # api, page, cli: their French labels are in the catalogue

# What was read, as the rectorat reads it in `passpro access-log` (short French labels).
STUDENT_LIST = "liste des élèves"
STUDENT_PAGE = "page élève"
INTERVIEW_LIST = "liste des entretiens"
INTERVIEW_PAGE = "page entretien"
PRINTED_REPORT = "compte rendu imprimable"
AUDIT_TIMELINE = "chronologie d'audit"
DASHBOARD = "tableau de bord (noms des élèves)"
AFFELNET_EXPORT = "export Affelnet"
FAMILY_COPY = "copie pour la famille"


@dataclass(frozen=True)
class Access:
    """One read of a student's file. `uai` is "" for the rectorat."""

    at: str  # UTC, ISO 8601
    user_id: str
    role: str
    uai: str
    service: str
    what: str
    channel: str
    position: str = ""  # the entry's id in the stream

    def fields(self) -> dict[str, str]:
        found = asdict(self)
        del found["position"]
        return found

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def record(
    redis: Redis,
    keys: StreamKeys,
    campaign: str,
    ines: Iterable[str],
    *,
    user_id: str,
    role: str,
    uai: str | None,
    service: str,
    what: str,
    channel: str,
    at: datetime | None = None,
) -> int:
    """One entry per distinct student of `ines`, in one round trip; the number of entries written.
    Raises whatever Redis raises: the caller's read must fail with it."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown access channel {channel!r}")
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
    students = list(dict.fromkeys(ines))
    if not students:
        return 0
    entry = Access(moment, user_id, role, uai or "", service, what, channel).fields()
    async with redis.pipeline(transaction=False) as pipe:
        for ine in students:
            pipe.xadd(keys.access_log(campaign, ine), entry)
        await pipe.execute()
    return len(students)


async def record_request(request: Request, campaign: str, ines: Iterable[str], what: str) -> int:
    """`record` for a service's route: the caller is the request's verified principal, the channel
    is the API under /api/ and a page elsewhere (a page calling an API route logs as a page)."""
    rt, who = runtime(request), principal(request)
    channel = "api" if request.url.path.startswith("/api/") else "page"
    return await record(
        rt.redis, rt.keys, campaign, ines,
        user_id=who.user_id, role=who.role, uai=who.uai, service=rt.name, what=what, channel=channel,
    )


async def read(redis: Redis, keys: StreamKeys, campaign: str, ine: str) -> list[Access]:
    """The student's access log for the campaign, oldest first."""
    found = []
    for entry_id, raw in await redis.xrange(keys.access_log(campaign, ine), "-", "+"):
        fields = {_text(k): _text(v) for k, v in raw.items()}
        found.append(
            Access(
                at=fields.get("at", ""),
                user_id=fields.get("user_id", ""),
                role=fields.get("role", ""),
                uai=fields.get("uai", ""),
                service=fields.get("service", ""),
                what=fields.get("what", ""),
                channel=fields.get("channel", ""),
                position=_text(entry_id),
            )
        )
    return found


def ines_of_affelnet_file(content: str) -> list[str]:
    """The students an Affelnet file names (its first column, header skipped), in file order."""
    lines = content.splitlines()[1:]
    return list(dict.fromkeys(line.split(";", 1)[0] for line in lines if line.strip()))
