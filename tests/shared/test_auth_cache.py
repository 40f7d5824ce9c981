"""Verified tokens are remembered until they expire, and only what was verified is."""

from __future__ import annotations

import time

import pytest

from shared.contracts.reference import default_reference_text, parse_reference
from shared.runtime.http import auth
from shared.runtime.http.auth import InvalidToken, issue_token, read_token

SECRET = "s" * 48
REFERENCE = parse_reference(default_reference_text())
COLLEGE = next(e.uai for e in REFERENCE.establishments if e.type == "college")
LYCEE = next(e.uai for e in REFERENCE.establishments if e.type == "lycee")


@pytest.fixture(autouse=True)
def empty_cache():
    auth._verified.clear()
    yield
    auth._verified.clear()


def token(**overrides) -> str:
    claims = {"user_id": "principal.a", "role": "principal", "uai": COLLEGE, "reference": REFERENCE} | overrides
    return issue_token(SECRET, **claims)


def test_a_token_read_twice_gives_the_same_principal():
    t = token()
    assert read_token(t, SECRET, REFERENCE) == read_token(t, SECRET, REFERENCE)
    assert read_token(t, SECRET, REFERENCE).uai == COLLEGE


def test_a_remembered_token_is_refused_once_it_expires():
    issued = int(time.time())
    t = token(ttl_seconds=60, now=issued)
    read_token(t, SECRET, REFERENCE, now=issued + 59)
    assert len(auth._verified._entries) == 1
    with pytest.raises(InvalidToken, match="expired"):
        read_token(t, SECRET, REFERENCE, now=issued + 60)  # exp itself: refused, as PyJWT does
    assert len(auth._verified._entries) == 0


def test_a_token_met_first_after_its_exp_is_refused_and_not_remembered():
    issued = int(time.time())
    t = token(ttl_seconds=60, now=issued)
    with pytest.raises(InvalidToken, match="expired"):
        read_token(t, SECRET, REFERENCE, now=issued + 61)
    assert len(auth._verified._entries) == 0


def test_a_remembered_entry_is_not_used_past_its_exp():
    t = token(ttl_seconds=60)
    read_token(t, SECRET, REFERENCE)
    [(key, (exp, *_))] = auth._verified._entries.items()
    assert auth._verified.get(key, exp - 1) is not None
    assert auth._verified.get(key, exp) is None  # as PyJWT: refused once exp <= now


def test_a_remembered_token_is_refused_with_another_secret_or_issuer():
    t = token()
    read_token(t, SECRET, REFERENCE)
    with pytest.raises(InvalidToken):
        read_token(t, "x" * 48, REFERENCE)
    with pytest.raises(InvalidToken):
        read_token(t, SECRET, REFERENCE, issuer="other")


def test_a_bad_token_is_never_remembered():
    t = token()
    tampered = t[:-2] + ("AA" if not t.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            read_token(tampered, SECRET, REFERENCE)
    assert len(auth._verified._entries) == 0


def test_the_role_is_checked_against_the_reference_on_every_read():
    t = token()
    read_token(t, SECRET, REFERENCE)
    moved = REFERENCE.model_copy(update={"establishments": [e for e in REFERENCE.establishments if e.uai != COLLEGE]})
    with pytest.raises(InvalidToken):
        read_token(t, SECRET, moved)


def test_the_cache_is_bounded_and_drops_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(auth._verified, "size", 3)
    tokens = [token(user_id=f"principal.{n}") for n in range(4)]
    for t in tokens[:3]:
        read_token(t, SECRET, REFERENCE)
    read_token(tokens[0], SECRET, REFERENCE)  # used again: now the most recent
    read_token(tokens[3], SECRET, REFERENCE)
    remembered = {key[0] for key in auth._verified._entries}
    assert remembered == {tokens[0], tokens[2], tokens[3]}
