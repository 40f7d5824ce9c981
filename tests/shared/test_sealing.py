"""Crypto-shredding (issue 5): personal fields sealed per student in the log, opened by the key store.

Real Redis (and Valkey) for the log, SQLite and PostgreSQL for the key store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.contracts.events import UnreadableEntry, event_from_fields, event_to_fields
from shared.contracts.personal import ERASED, PERSONAL_FIELDS, SEALED, ErasedKeyring, SealedWithoutKeys
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import CryptoError, MasterKey, decrypt, encrypt, new_key
from shared.runtime.keys.store import KeyStore, StudentErased
from shared.runtime.log.client import EventLog

from event_factories import CAMPAIGN, INE, college_avis, held, make_event, registered, sample_payloads

NAME = "Zyrkowska"
OTHER_INE = "987654321ZZ"


@pytest.fixture(params=["sqlite", "postgresql"])
def keystore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        store = KeyStore.open(f"sqlite:///{tmp_path / 'keys.sqlite3'}", MasterKey(new_key()))
    else:
        store = KeyStore.open(request.getfixturevalue("postgres_url"), MasterKey(new_key()),
                              schema=request.getfixturevalue("pg_schema"))
    yield store
    store.close()


@pytest.fixture
async def log(log_url: str, academie: str, keystore: KeyStore) -> AsyncIterator[EventLog]:
    redis = Redis.from_url(log_url)
    yield EventLog(redis, StreamKeys(academie), keystore)
    await redis.aclose()


def _named_registration():
    payload = registered()
    return payload.model_copy(update={"last_name": NAME})


# --- the format --------------------------------------------------------------------


def test_every_personal_path_names_a_field_of_its_event() -> None:
    samples = sample_payloads()
    for event_type, paths in PERSONAL_FIELDS.items():
        dumped = samples[event_type].model_dump()
        for path in paths:
            node = dumped
            for name in path.split("."):
                assert name in node, f"{event_type}: no field {path}"
                node = node[name]


def test_a_sealed_entry_holds_no_personal_field_in_clear(keystore: KeyStore) -> None:
    event = make_event(_named_registration())
    ring = keystore.keyring_for_writing(CAMPAIGN, INE)
    fields = event_to_fields(event, ring)
    assert NAME not in json.dumps(fields)
    payload = json.loads(fields["payload"])
    assert "last_name" not in payload and "name" not in payload["referent"]
    assert payload["college_uai"] == event.payload.college_uai  # identifiers stay in clear
    assert event_from_fields(fields, ring) == event


def test_levels_and_identifiers_stay_in_clear(keystore: KeyStore) -> None:
    ring = keystore.keyring_for_writing(CAMPAIGN, INE)
    fields = event_to_fields(make_event(held()), ring)
    payload = json.loads(fields["payload"])
    assert payload["report"]["motivation"] and "advice" not in payload["report"]
    assert fields["student_ine"] == INE
    avis = event_to_fields(make_event(college_avis()), ring)
    assert json.loads(avis["payload"])["avis"] and "comment" not in json.loads(avis["payload"])


def test_a_sealed_text_cannot_be_moved_to_another_entry(keystore: KeyStore) -> None:
    ring = keystore.keyring_for_writing(CAMPAIGN, INE)
    first = event_to_fields(make_event(_named_registration()), ring)
    second = event_to_fields(make_event(registered()), ring)
    moved = {**second, SEALED: first[SEALED]}  # bound to the first event's id
    with pytest.raises(UnreadableEntry):
        event_from_fields(moved, ring)


def test_a_tampered_sealed_text_is_unreadable(keystore: KeyStore) -> None:
    ring = keystore.keyring_for_writing(CAMPAIGN, INE)
    fields = event_to_fields(make_event(_named_registration()), ring)
    sealed = fields[SEALED]
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(UnreadableEntry):
        event_from_fields({**fields, SEALED: flipped}, ring)


def test_without_a_keyring_a_sealed_entry_is_a_programming_error(keystore: KeyStore) -> None:
    fields = event_to_fields(make_event(_named_registration()), keystore.keyring_for_writing(CAMPAIGN, INE))
    with pytest.raises(SealedWithoutKeys):
        event_from_fields(fields)


def test_the_erased_keyring_reads_every_personal_field_as_erased(keystore: KeyStore) -> None:
    fields = event_to_fields(make_event(_named_registration()), keystore.keyring_for_writing(CAMPAIGN, INE))
    payload = event_from_fields(fields, ErasedKeyring()).payload
    assert (payload.last_name, payload.first_name, payload.class_name) == (ERASED, ERASED, ERASED)
    assert (payload.referent.name, payload.referent.email) == (ERASED, ERASED)
    assert payload.college_uai  # the rest is intact


def test_older_plaintext_entries_are_still_read() -> None:
    event = make_event(_named_registration())
    fields = event_to_fields(event)  # no keyring: the format before sealing
    assert SEALED not in fields and NAME in fields["payload"]
    assert event_from_fields(fields, ErasedKeyring()) == event


def test_an_erased_address_is_accepted_only_when_reading_the_log() -> None:
    from pydantic import ValidationError

    from shared.contracts.events import Referent

    with pytest.raises(ValidationError):
        Referent(user_id="r", name="Paul", email=ERASED)


# --- keys --------------------------------------------------------------------------


def test_a_sealed_text_with_a_character_outside_base64_does_not_open() -> None:
    key = new_key()
    sealed = encrypt(key, b"x", b"aad")
    assert decrypt(key, sealed, b"aad") == b"x"
    for stray in ("\n", " ", "!", "="):  # a lenient decoder would skip them and open the rest
        with pytest.raises(CryptoError):
            decrypt(key, sealed[:10] + stray + sealed[10:], b"aad")


def test_a_data_key_only_opens_with_its_master_key_and_student() -> None:
    master, other = MasterKey(new_key()), MasterKey(new_key())
    wrapped = master.wrap(b"k" * 32, CAMPAIGN, INE)
    assert master.unwrap(wrapped, CAMPAIGN, INE) == b"k" * 32
    with pytest.raises(CryptoError):
        other.unwrap(wrapped, CAMPAIGN, INE)
    with pytest.raises(CryptoError):
        master.unwrap(wrapped, CAMPAIGN, OTHER_INE)
    with pytest.raises(CryptoError):
        decrypt(new_key(), encrypt(new_key(), b"x", b"aad"), b"aad")


def test_one_key_per_student_made_once(keystore: KeyStore) -> None:
    first = keystore.keyring_for_writing(CAMPAIGN, INE).keys[(CAMPAIGN, INE)]
    assert keystore.keyring_for_writing(CAMPAIGN, INE).keys[(CAMPAIGN, INE)] == first
    assert keystore.keyring([(CAMPAIGN, INE)]).keys[(CAMPAIGN, INE)] == first
    assert keystore.keyring([(CAMPAIGN, OTHER_INE)]).keys == {}


def test_a_destroyed_key_is_gone_and_never_made_again(keystore: KeyStore) -> None:
    keystore.keyring_for_writing(CAMPAIGN, INE)
    assert keystore.destroy(CAMPAIGN, INE) is True
    assert keystore.keyring([(CAMPAIGN, INE)]).keys == {(CAMPAIGN, INE): None}
    with pytest.raises(StudentErased):
        keystore.keyring_for_writing(CAMPAIGN, INE)
    assert keystore.destroy(CAMPAIGN, INE) is False  # again: nothing left to destroy
    assert keystore.is_destroyed(CAMPAIGN, INE)


def test_a_student_erased_before_any_key_gets_none_later(keystore: KeyStore) -> None:
    keystore.destroy(CAMPAIGN, OTHER_INE)
    with pytest.raises(StudentErased):
        keystore.keyring_for_writing(CAMPAIGN, OTHER_INE)


# --- through the log ---------------------------------------------------------------


async def test_the_log_seals_on_append_and_opens_on_read(log: EventLog) -> None:
    event = make_event(_named_registration())
    appended = await log.append(event, "registration", 0, "fp")
    assert appended.status == "ok"
    raw = await log.redis.xrange(log.keys.student(CAMPAIGN, INE))
    assert NAME.encode() not in b"".join(v for _, f in raw for v in f.values())
    [read] = await log.read_student(CAMPAIGN, INE)
    assert read.event.payload.last_name == NAME


async def test_after_the_key_is_destroyed_the_log_reads_erased_and_the_chain_stands(log: EventLog) -> None:
    await log.append(make_event(_named_registration()), "registration", 0, "fp")
    before = await log.redis.xrange(log.keys.service(CAMPAIGN, "registration"))
    log.keystore.destroy(CAMPAIGN, INE)
    [read] = await log.read_student(CAMPAIGN, INE)
    assert read.event.payload.last_name == ERASED
    assert await log.redis.xrange(log.keys.service(CAMPAIGN, "registration")) == before  # nothing rewritten


def test_request_digests_kept_in_redis_are_keyed() -> None:
    from shared.runtime.commands import fingerprint

    request = {"last_name": NAME, "ine": INE}
    keyed = fingerprint("register", request, b"k" * 32)
    assert keyed == fingerprint("register", request, b"k" * 32)  # a retry is recognised
    assert keyed != fingerprint("register", request)  # a plain SHA-256 would confirm a guessed name
    assert keyed != fingerprint("register", request, b"j" * 32)


def test_writers_racing_for_a_students_first_key_all_get_the_one_stored(keystore: KeyStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    others = [KeyStore(keystore.engine, keystore.master) for _ in range(8)]  # eight processes' worth
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda store: store.keyring_for_writing(CAMPAIGN, OTHER_INE).keys[(CAMPAIGN, OTHER_INE)], others))
    assert len(set(keys)) == 1
    assert keystore.keyring([(CAMPAIGN, OTHER_INE)]).keys[(CAMPAIGN, OTHER_INE)] == keys[0]


def test_a_writer_forgets_a_key_it_destroyed_at_once(keystore: KeyStore) -> None:
    keystore.keyring_for_writing(CAMPAIGN, INE)  # now kept in memory for writing
    keystore.destroy(CAMPAIGN, INE)
    with pytest.raises(StudentErased):
        keystore.keyring_for_writing(CAMPAIGN, INE)


# --- a reader's keys across pages ----------------------------------------------------


async def _read_as_the_consumer(log: EventLog, keystore: KeyStore) -> list:
    """The registration stream's entries opened as the consumer opens a page (its bytes, the page's keyring)."""
    from redis.client import NEVER_DECODE

    from shared.runtime.projection.consumer import page_keyring, parse_entries, stream_entries

    stream = log.keys.service(CAMPAIGN, "registration")
    reply = await log.redis.execute_command("XRANGE", stream, "-", "+", keys=[stream], **{NEVER_DECODE: True})
    entries = stream_entries(stream, reply)
    parse_entries(entries, await page_keyring(keystore, entries))
    return [entry.logged.event.payload for entry in entries]


async def test_a_reader_unwraps_a_key_once_across_pages_and_an_erasure_still_wins_at_once(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await log.append(make_event(_named_registration()), "registration", 0, "fp")
    reader = KeyStore(log.keystore.engine, log.keystore.master)  # a consumer's process: nothing held for writing
    unwrapped = []
    unwrap = reader.master.unwrap
    monkeypatch.setattr(reader.master, "unwrap", lambda *args: unwrapped.append(args) or unwrap(*args))
    assert [p.last_name for p in await _read_as_the_consumer(log, reader)] == [NAME]
    assert [p.last_name for p in await _read_as_the_consumer(log, reader)] == [NAME]
    assert len(unwrapped) == 1  # the next page took the key unwrapped already
    KeyStore(log.keystore.engine, log.keystore.master).destroy(CAMPAIGN, INE)  # erased by another process
    assert [p.last_name for p in await _read_as_the_consumer(log, reader)] == [ERASED]  # its kept key not used


def test_a_readers_unwrapped_keys_are_bounded_the_least_recently_used_dropped(
    keystore: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.runtime.keys.store as store

    monkeypatch.setattr(store, "UNWRAPPED_KEYS_KEPT", 2)
    first, second, third = INE, OTHER_INE, "111111111AA"
    for ine in (first, second, third):
        keystore.keyring_for_writing(CAMPAIGN, ine)
    keystore.keyring([(CAMPAIGN, first)])
    keystore.keyring([(CAMPAIGN, second)])
    keystore.keyring([(CAMPAIGN, first)])  # used again: the second is now the least recently used
    keystore.keyring([(CAMPAIGN, third)])
    assert [kept[:2] for kept in keystore._unwrapped] == [(CAMPAIGN, first), (CAMPAIGN, third)]
    assert keystore.keyring([(CAMPAIGN, second)]).keys[(CAMPAIGN, second)] is not None  # unwrapped again when asked
