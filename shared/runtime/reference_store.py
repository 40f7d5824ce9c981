"""Where the services find the reference data: Redis when it was imported, else the file shipped in the repo."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.contracts.streams import StreamKeys


async def load_reference(redis: Redis, keys: StreamKeys) -> ReferenceData:
    stored = await redis.get(keys.reference)
    text = stored.decode() if isinstance(stored, bytes) else stored
    return parse_reference(text or default_reference_text())


async def import_reference(redis: Redis, keys: StreamKeys, text: str) -> ReferenceData:
    """Validate and store a new reference file for every service of the académie."""
    data = parse_reference(text)
    await redis.set(keys.reference, data.model_dump_json())
    return data
