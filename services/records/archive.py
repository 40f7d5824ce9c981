"""A campaign's archive (issue 5, retention): one signed, encrypted file with everything the campaign has
in the log, so that the log can be purged and the campaign imported again for an audit.

The file (format 1):

    PASSPRO-ARCHIVE\\n
    <header: one line of JSON>\\n      format, version, académie, campaign, created_at, salt, nonce, counts
    hmac-sha256 <64 hex>\\n            HMAC-SHA256, under the audit key, of the magic line, header line and body
    <body>                            AES-256-GCM(gzip(document)), with the header line as associated data

The body's key is derived from the master key (HKDF-SHA256, a random salt per archive, info
"passpro-archive-v1"), so opening an archive needs the master key — which the wrapped data keys inside
need anyway — and trusting it needs the audit key (PASSPRO_CHECKPOINT_KEY), which Redis never sees.
The signature is checked before anything is decrypted.

The document (JSON) holds every key under `passpro:{<académie>}:<campaign>:` with its whole content —
each stream entry with its original id and its fields in stored order, so that the hash chains, the
student streams and the checkpoints verify after an import —, the rectorat stream from its start to the
campaign's last entry (its chain needs the prefix) with those entries' event-id index, the signed
checkpoints of these streams, and the campaign's wrapped data keys (a destroyed key stays destroyed).
Key names are stored relative to the académie, so an archive can be imported into another one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hashlib
import hmac
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis
from sqlalchemy import Engine, select

from services.records.audit import Checkpoint
from services.records.checkpoints import entry_fields, load_checkpoints, stream_pages, text
from services.scoring.views import checkpoints as checkpoints_table
from shared.contracts.streams import HASH, StreamKeys
from shared.runtime.keys.crypto import MasterKey
from shared.runtime.keys.store import KeyStore

MAGIC = b"PASSPRO-ARCHIVE\n"
FORMAT = "passpro-archive"
VERSION = 1
KDF_INFO = b"passpro-archive-v1"
SIGNATURE = b"hmac-sha256 "
SALT_BYTES, NONCE_BYTES = 16, 12
MAX_HEADER = 64 * 1024
PIPELINE = 1000  # commands per round trip when an archive is imported


class ArchiveError(ValueError):
    """An archive that cannot be made, read or imported; the message is French, for the user."""


# --- the file: pure ---------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _signature(audit_key: bytes, header_line: bytes, body: bytes) -> str:
    return hmac.new(audit_key, MAGIC + header_line + b"\n" + body, hashlib.sha256).hexdigest()


def seal_archive(document: dict[str, Any], master: MasterKey, audit_key: bytes) -> bytes:
    """The archive file of `document`: compressed, encrypted under a key derived from the master key, signed."""
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "academie": document["academie"],
        "campaign": document["campaign"],
        "created_at": document["created_at"],
        "counts": document["counts"],
        "compression": "gzip",
        "cipher": "AES-256-GCM",
        "kdf": "HKDF-SHA256",
        "salt": _b64(salt),
        "nonce": _b64(nonce),
        "signature": "HMAC-SHA256",
    }
    header_line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii")
    # ensure_ascii keeps any byte Redis held (surrogate-escaped) as a \\u escape, so JSON is always valid.
    plain = gzip.compress(json.dumps(document, separators=(",", ":")).encode("ascii"), compresslevel=6, mtime=0)
    body = AESGCM(master.derive(KDF_INFO, salt)).encrypt(nonce, plain, header_line)
    signature = _signature(audit_key, header_line, body).encode("ascii")
    return MAGIC + header_line + b"\n" + SIGNATURE + signature + b"\n" + body


@dataclass(frozen=True)
class Parts:
    header: dict[str, Any]
    header_line: bytes
    signature: str
    body: bytes


def split_archive(data: bytes) -> Parts:
    """The parts of an archive file, without checking its signature (for its header only)."""
    not_an_archive = ArchiveError("ce fichier n'est pas une archive Passpro.")
    if not data.startswith(MAGIC):
        raise not_an_archive
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER)
    if end < 0:
        raise not_an_archive
    header_line = data[len(MAGIC) : end]
    sig_end = data.find(b"\n", end + 1, end + 1 + len(SIGNATURE) + 80)
    signature_line = data[end + 1 : sig_end] if sig_end > 0 else b""
    if not signature_line.startswith(SIGNATURE):
        raise not_an_archive
    try:
        header = json.loads(header_line)
    except ValueError:
        raise not_an_archive from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise not_an_archive
    if header.get("version") != VERSION:
        raise ArchiveError(
            f"archive au format {header.get('version')!r}, que cette version de Passpro ne sait pas lire "
            f"(format {VERSION})."
        )
    return Parts(header, header_line, signature_line[len(SIGNATURE) :].decode("ascii", "replace"), data[sig_end + 1 :])


def open_archive(data: bytes, master: MasterKey, audit_key: bytes) -> dict[str, Any]:
    """The document of an archive file: refused unless its signature and its encryption tag hold."""
    parts = split_archive(data)
    if not hmac.compare_digest(_signature(audit_key, parts.header_line, parts.body), parts.signature):
        raise ArchiveError(
            "la signature de l'archive est invalide : le fichier a été modifié, ou signé avec une autre "
            "clé d'audit (PASSPRO_CHECKPOINT_KEY)."
        )
    try:
        salt = base64.b64decode(parts.header["salt"], validate=True)
        nonce = base64.b64decode(parts.header["nonce"], validate=True)
        plain = AESGCM(master.derive(KDF_INFO, salt)).decrypt(nonce, parts.body, parts.header_line)
    except (InvalidTag, KeyError, binascii.Error, ValueError):
        raise ArchiveError(
            "l'archive ne s'ouvre pas avec cette clé maîtresse (PASSPRO_MASTER_KEY) : elle a été faite avec "
            "une autre, ou modifiée."
        ) from None
    try:
        document = json.loads(gzip.decompress(plain))
    except (OSError, EOFError, zlib.error, ValueError):
        raise ArchiveError("le contenu de l'archive est illisible.") from None
    same = all(document.get(k) == parts.header.get(k) for k in ("format", "version", "academie", "campaign"))
    if not same:
        raise ArchiveError("l'en-tête de l'archive ne correspond pas à son contenu.")
    return document


# --- the document: pure ------------------------------------------------------------------------------


def relative(keys: StreamKeys, key: str) -> str:
    """A key's name without its académie (`2027:registration`), as archives store them."""
    return keys.stream_name(key)


def absolute(keys: StreamKeys, name: str) -> str:
    return f"{keys.prefix}:{name}"


def campaign_pattern(keys: StreamKeys, campaign: str) -> str:
    """Every key of one campaign (académie tags and years hold no glob character)."""
    return f"{keys.prefix}:{campaign}:*"


def _student_streams(document: dict[str, Any]) -> set[str]:
    marker = f"{document['campaign']}:student:"
    return {i["name"].removeprefix(marker) for i in document["keys"] if i["name"].startswith(marker)}


def students_of(document: dict[str, Any]) -> set[str]:
    """The INEs of the archived campaign's students: those with a student stream or a key."""
    return _student_streams(document) | set(document["wrapped_keys"])


def summary_of(item: dict[str, Any]) -> tuple:
    """What tells two copies of a key apart cheaply: a stream's length and last id, another key's size."""
    if item["type"] == "stream":
        entries = item["entries"]
        return ("stream", len(entries), entries[-1][0] if entries else None)
    content = {"hash": "fields", "string": "value", "list": "items", "set": "members", "zset": "members"}
    value = item[content[item["type"]]]
    return (item["type"], len(value))


def not_covered(document: dict[str, Any], live: dict[str, tuple]) -> list[str]:
    """The keys of the campaign (by relative name) whose live content the archive does not hold."""
    archived = {item["name"]: summary_of(item) for item in document["keys"]}
    return sorted(name for name, summary in live.items() if archived.get(name) != summary)


def _stream_positions(entries: list) -> dict[str, tuple[int, str | None]]:
    """entry id -> (its 1-based place in the stream, its hash)."""
    return {entry_id: (n, dict(fields).get(HASH)) for n, (entry_id, fields) in enumerate(entries, start=1)}


def checkpoint_problems(document: dict[str, Any], audit_key: bytes) -> list[str]:
    """Each archived checkpoint must be authentic under its original stream's name and sign an entry of
    the archive at its place with its hash: an import re-signs only what it checked (see `checkpoints_for`)."""
    keys = StreamKeys(document["academie"])
    streams = {item["name"]: _stream_positions(item["entries"]) for item in document["keys"] if item["type"] == "stream"}
    streams[relative(keys, keys.rectorat)] = _stream_positions(document["rectorat"]["entries"])
    problems = []
    for row in document["checkpoints"]:
        cp = Checkpoint(**row)
        place = streams.get(relative(keys, cp.stream), {}).get(cp.entry_id)
        if not cp.is_authentic(audit_key):
            problems.append(f"le point de contrôle {cp.stream} {cp.entry_id} n'a pas une signature valide")
        elif place != (cp.length, cp.hash):
            problems.append(f"le point de contrôle {cp.stream} {cp.entry_id} ne correspond pas aux entrées archivées")
    return problems


def checkpoints_for(document: dict[str, Any], target: StreamKeys, audit_key: bytes) -> list[Checkpoint]:
    """The archived checkpoints as the target académie names its streams. A checkpoint signs its stream's
    full key, académie included: into another académie it is signed again under the new name, with its own
    time, entry, hash and length — only after `checkpoint_problems` found it authentic and matching."""
    source = StreamKeys(document["academie"])
    found = []
    for row in document["checkpoints"]:
        cp = Checkpoint(**row)
        if target != source:
            cp = Checkpoint(absolute(target, relative(source, cp.stream)), cp.entry_id, cp.hash, cp.length,
                            cp.recorded_at).signed(audit_key)
        found.append(cp)
    return found


# --- reading the log: I/O -----------------------------------------------------------------------------


async def _key_content(redis: Redis, key: str, kind: str) -> dict[str, Any]:
    if kind == "stream":
        entries = []
        async for page in stream_pages(redis, key):
            entries += [[entry_id, list(fields.items())] for entry_id, fields in page]
        return {"entries": entries}
    if kind == "hash":
        return {"fields": sorted([[text(k), text(v)] async for k, v in redis.hscan_iter(key, count=1000)])}
    if kind == "string":
        return {"value": text(await redis.get(key))}
    if kind == "list":
        return {"items": [text(v) for v in await redis.lrange(key, 0, -1)]}
    if kind == "set":
        return {"members": sorted(text(v) for v in await redis.smembers(key))}
    if kind == "zset":
        return {"members": [[text(m), s] for m, s in await redis.zrange(key, 0, -1, withscores=True)]}
    raise ArchiveError(f"la clé {key} est de type {kind}, qu'une archive ne sait pas garder.")


async def campaign_keys(redis: Redis, keys: StreamKeys, campaign: str) -> list[str]:
    return sorted({text(k) async for k in redis.scan_iter(match=campaign_pattern(keys, campaign), count=1000)})


SIZE_COMMANDS = {"hash": "hlen", "list": "llen", "set": "scard", "zset": "zcard"}


async def live_summary(redis: Redis, keys: StreamKeys, campaign: str) -> dict[str, tuple]:
    """`summary_of` of each key the campaign has now, by relative name."""
    found: dict[str, tuple] = {}
    for key in await campaign_keys(redis, keys, campaign):
        kind = text(await redis.type(key))
        if kind == "stream":
            last = await redis.xrevrange(key, "+", "-", count=1)
            found[relative(keys, key)] = ("stream", await redis.xlen(key), text(last[0][0]) if last else None)
        elif kind == "string":
            found[relative(keys, key)] = (kind, len(text(await redis.get(key))))
        elif kind in SIZE_COMMANDS:
            found[relative(keys, key)] = (kind, await getattr(redis, SIZE_COMMANDS[kind])(key))
        elif kind != "none":
            raise ArchiveError(f"la clé {key} est de type {kind}, qu'une archive ne sait pas garder.")
    return found


async def rectorat_prefix(redis: Redis, keys: StreamKeys, campaign: str) -> list[list]:
    """The rectorat stream from its start to the campaign's last entry; refused if it never opened."""
    entries: list[list] = []
    last = -1
    async for page in stream_pages(redis, keys.rectorat):
        for entry_id, fields in page:
            entries.append([entry_id, list(fields.items())])
            if fields.get("campaign") == campaign and fields.get("event_type") == "CampaignOpened":
                last = len(entries) - 1
    if last < 0:
        raise ArchiveError(f"aucune campagne {campaign} n'a été ouverte dans l'académie {keys.academie}.")
    return entries[: last + 1]


def _checkpoint_rows(engine: Engine, keys: StreamKeys, campaign: str, rectorat_ids: set[str]) -> list[dict]:
    prefix = f"{keys.prefix}:{campaign}:"
    rows = []
    for cp in load_checkpoints(engine):
        if cp.stream.startswith(prefix) or (cp.stream == keys.rectorat and cp.entry_id in rectorat_ids):
            rows.append({"stream": cp.stream, "entry_id": cp.entry_id, "hash": cp.hash, "length": cp.length,
                         "recorded_at": cp.recorded_at, "hmac": cp.hmac})
    return rows


async def collect(
    redis: Redis, keys: StreamKeys, engine: Engine, keystore: KeyStore, campaign: str, *, created_by: str,
    now: datetime,
) -> dict[str, Any]:
    """The archive document of one campaign, read from the log, scoring's database and the key store.
    `redis` must keep every byte (checkpoints.audit_client)."""
    rectorat = await rectorat_prefix(redis, keys, campaign)
    items = []
    for key in await campaign_keys(redis, keys, campaign):
        kind = text(await redis.type(key))
        if kind == "none":  # gone between SCAN and TYPE
            continue
        items.append({"name": relative(keys, key), "type": kind, **await _key_content(redis, key, kind)})
    rectorat_ids = [entry_id for entry_id, _ in rectorat]
    event_ids = [dict(fields).get("event_id", "") for _, fields in rectorat]
    indexed = await redis.hmget(keys.event_ids(None), event_ids) if event_ids else []
    checkpoints = await asyncio.to_thread(_checkpoint_rows, engine, keys, campaign, set(rectorat_ids))
    # Only this académie's students: a key store may serve several académies, with the same campaigns.
    ines = _student_streams({"campaign": campaign, "keys": items})
    wrapped = {ine: k for ine, k in (await asyncio.to_thread(keystore.wrapped_keys, campaign)).items() if ine in ines}
    streams = [i for i in items if i["type"] == "stream"]
    counts = {
        "keys": len(items),
        "streams": len(streams),
        "student_streams": sum(1 for i in streams if i["name"].startswith(f"{campaign}:student:")),
        "entries": sum(len(i["entries"]) for i in streams),
        "rectorat_entries": len(rectorat),
        "checkpoints": len(checkpoints),
        "wrapped_keys": sum(1 for k in wrapped.values() if k),
        "destroyed_keys": sum(1 for k in wrapped.values() if not k),
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "academie": keys.academie,
        "campaign": campaign,
        "created_at": now.isoformat(),
        "created_by": created_by,
        "counts": counts,
        "keys": items,
        "rectorat": {
            "entries": rectorat,
            "event_ids": [[e, text(v)] for e, v in zip(event_ids, indexed, strict=True) if v is not None],
        },
        "checkpoints": checkpoints,
        "wrapped_keys": wrapped,
    }


# --- importing: I/O -----------------------------------------------------------------------------------


def _writes(redis_key: str, item: dict[str, Any]) -> Iterable[tuple]:
    """The commands that rebuild one key, as (method name, args...)."""
    kind = item["type"]
    if kind == "stream":
        for entry_id, fields in item["entries"]:
            yield ("xadd", redis_key, dict(fields), entry_id)
    elif kind == "hash":
        for start in range(0, len(item["fields"]), 500):
            yield ("hset", redis_key, dict(item["fields"][start : start + 500]))
    elif kind == "string":
        yield ("set", redis_key, item["value"])
    elif kind == "list":
        for start in range(0, len(item["items"]), 500):
            yield ("rpush", redis_key, *item["items"][start : start + 500])
    elif kind == "set":
        for start in range(0, len(item["members"]), 500):
            yield ("sadd", redis_key, *item["members"][start : start + 500])
    elif kind == "zset":
        for start in range(0, len(item["members"]), 500):
            yield ("zadd", redis_key, dict(item["members"][start : start + 500]))
    else:
        raise ArchiveError(f"l'archive contient une clé de type {kind} inconnu.")


async def _run(redis: Redis, commands: Iterable[tuple]) -> None:
    batch: list[tuple] = []

    async def flush() -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for name, key, *args in batch:
                if name == "xadd":  # the original id: chains, student versions and checkpoints still hold
                    pipe.xadd(key, args[0], id=args[1])
                elif name == "hset":
                    pipe.hset(key, mapping=args[0])
                elif name == "zadd":
                    pipe.zadd(key, args[0])
                else:
                    getattr(pipe, name)(key, *args)
            await pipe.execute()
        batch.clear()

    for command in commands:
        batch.append(command)
        if len(batch) >= PIPELINE:
            await flush()
    if batch:
        await flush()


@dataclass
class Imported:
    academie: str
    campaign: str
    keys: int = 0
    entries: int = 0
    rectorat_entries_added: int = 0
    checkpoints: int = 0
    resigned: bool = False
    wrapped_keys: int = 0


async def _rectorat_plan(redis: Redis, keys: StreamKeys, document: dict[str, Any]) -> bool:
    """True if the archived rectorat entries must be added (the target's rectorat stream is empty),
    False if the target already holds them, unchanged; refused otherwise."""
    archived = document["rectorat"]["entries"]
    if not await redis.xlen(keys.rectorat):
        return True
    for entry_id, fields in archived:
        found = await redis.xrange(keys.rectorat, entry_id, entry_id)
        if not found or entry_fields(found[0][1]).get(HASH) != dict(fields).get(HASH):
            raise ArchiveError(
                f"le flux rectorat de l'académie {keys.academie} ne porte pas l'ouverture de la campagne "
                f"{document['campaign']} telle qu'archivée : importez l'archive dans une académie vide (--academie)."
            )
    return False


def _existing_checkpoints(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return {(r.stream, r.entry_id, r.hmac) for r in conn.execute(select(checkpoints_table))}


def _save_checkpoints(engine: Engine, found: list[Checkpoint]) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for cp in found:
            result = conn.execute(
                checkpoints_table.insert().values(stream=cp.stream, entry_id=cp.entry_id, hash=cp.hash,
                                                   length=cp.length, recorded_at=cp.recorded_at, hmac=cp.hmac)
            )
            ids.append(result.inserted_primary_key[0])
    return ids


def _drop_checkpoints(engine: Engine, ids: list[int]) -> None:
    if ids:
        with engine.begin() as conn:
            conn.execute(checkpoints_table.delete().where(checkpoints_table.c.id.in_(ids)))


async def restore(
    redis: Redis, target: StreamKeys, engine: Engine, keystore: KeyStore, document: dict[str, Any], audit_key: bytes
) -> Imported:
    """Put an archived campaign back into the `target` académie: its keys with their original entry ids,
    the rectorat entries if the target has none, the checkpoints and the wrapped keys. Refused, with
    nothing written, if the campaign already has keys, key-store rows or checkpoints there; undone if a
    write fails half-way."""
    campaign = document["campaign"]
    source = StreamKeys(document["academie"])
    done = Imported(target.academie, campaign, resigned=target != source)
    if existing := await campaign_keys(redis, target, campaign):
        raise ArchiveError(
            f"la campagne {campaign} existe déjà dans l'académie {target.academie} ({len(existing)} clés) : "
            "purgez-la d'abord, ou importez dans une autre académie (--academie)."
        )
    problems = checkpoint_problems(document, audit_key)
    if problems:
        raise ArchiveError("points de contrôle incohérents : " + " ; ".join(problems) + ".")
    prefix = f"{target.prefix}:{campaign}:"
    present = await asyncio.to_thread(_existing_checkpoints, engine)
    if any(stream.startswith(prefix) for stream, _, _ in present):
        raise ArchiveError(f"la base de scoring a déjà des points de contrôle de la campagne {campaign}.")
    add_rectorat = await _rectorat_plan(redis, target, document)
    # A key store shared with the archived académie holds the same keys: only a different one is refused
    # (a key destroyed since stays destroyed: the row is kept as it is).
    stored = await asyncio.to_thread(keystore.wrapped_keys, campaign)
    if any(stored.get(ine) and key and stored[ine] != key for ine, key in document["wrapped_keys"].items()):
        raise ArchiveError(f"le magasin de clés a d'autres clés pour des élèves de la campagne {campaign}.")
    wanted = [cp for cp in checkpoints_for(document, target, audit_key) if (cp.stream, cp.entry_id, cp.hmac) not in present]

    commands: list[tuple] = []
    for item in document["keys"]:
        commands += _writes(absolute(target, item["name"]), item)
    if add_rectorat:
        commands += _writes(target.rectorat, {"type": "stream", "entries": document["rectorat"]["entries"]})
        if document["rectorat"]["event_ids"]:
            commands.append(("hset", target.event_ids(None), dict(document["rectorat"]["event_ids"])))
    saved: list[int] = []
    try:
        await _run(redis, commands)
        saved = await asyncio.to_thread(_save_checkpoints, engine, wanted)
        await asyncio.to_thread(keystore.restore, campaign, document["wrapped_keys"])
    except Exception:
        await _undo(redis, target, campaign, document if add_rectorat else None)
        await asyncio.to_thread(_drop_checkpoints, engine, saved)
        raise
    done.keys = len(document["keys"])
    done.entries = sum(len(i["entries"]) for i in document["keys"] if i["type"] == "stream")
    done.rectorat_entries_added = len(document["rectorat"]["entries"]) if add_rectorat else 0
    done.checkpoints = len(wanted)
    done.wrapped_keys = sum(1 for k in document["wrapped_keys"].values() if k)
    return done


async def _undo(redis: Redis, target: StreamKeys, campaign: str, added_rectorat: dict[str, Any] | None) -> None:
    """Remove what a failed import wrote: the campaign's keys (there were none), and the rectorat entries
    and index fields it added to a rectorat stream that was empty."""
    keys = await campaign_keys(redis, target, campaign)
    for start in range(0, len(keys), 500):
        await redis.unlink(*keys[start : start + 500])
    if added_rectorat is not None:
        await redis.unlink(target.rectorat)  # it was empty: the import made it
        fields = [event_id for event_id, _ in added_rectorat["rectorat"]["event_ids"]]
        if fields:
            await redis.hdel(target.event_ids(None), *fields)
