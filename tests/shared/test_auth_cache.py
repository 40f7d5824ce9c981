"""Verified tokens are remembered until they expire, and only what was verified is."""

from __future__ import annotations

import time

import pytest

from shared.contracts.reference import default_reference_text, parse_reference
from shared.runtime.http.auth import InvalidToken, VerifiedTokens, issue_token, read_token

SECRET = "s" * 48
REFERENCE = parse_reference(default_reference_text())
COLLEGE = next(e.uai for e in REFERENCE.establishments if e.type == "college")
LYCEE = next(e.uai for e in REFERENCE.establishments if e.type == "lycee")


@pytest.fixture
def verified() -> VerifiedTokens:
    """An app's cache (build_app makes one per app): nothing is shared between tests, nor between apps."""
    return VerifiedTokens()


def read(verified: VerifiedTokens, t: str, *args, **options):
    return read_token(t, *args, **options, verified=verified)


def token(**overrides) -> str:
    claims = {"user_id": "principal.a", "role": "principal", "uai": COLLEGE, "reference": REFERENCE} | overrides
    return issue_token(SECRET, **claims)


def test_a_token_read_twice_gives_the_same_principal(verified):
    t = token()
    assert read(verified, t, SECRET, REFERENCE) == read(verified, t, SECRET, REFERENCE)
    assert read(verified, t, SECRET, REFERENCE).uai == COLLEGE


def test_a_remembered_token_is_refused_once_it_expires(verified):
    issued = int(time.time())
    t = token(ttl_seconds=60, now=issued)
    read(verified, t, SECRET, REFERENCE, now=issued + 59)
    assert len(verified._entries) == 1
    with pytest.raises(InvalidToken, match="expired"):
        read(verified, t, SECRET, REFERENCE, now=issued + 60)  # exp itself: refused, as PyJWT does
    assert len(verified._entries) == 0


def test_a_token_met_first_after_its_exp_is_refused_and_not_remembered(verified):
    issued = int(time.time())
    t = token(ttl_seconds=60, now=issued)
    with pytest.raises(InvalidToken, match="expired"):
        read(verified, t, SECRET, REFERENCE, now=issued + 61)
    assert len(verified._entries) == 0


def test_a_remembered_entry_is_not_used_past_its_exp(verified):
    t = token(ttl_seconds=60)
    read(verified, t, SECRET, REFERENCE)
    [(key, (exp, *_))] = verified._entries.items()
    assert verified.get(key, exp - 1) is not None
    assert verified.get(key, exp) is None  # as PyJWT: refused once exp <= now


def test_a_remembered_token_is_refused_with_another_secret_or_issuer(verified):
    t = token()
    read(verified, t, SECRET, REFERENCE)
    with pytest.raises(InvalidToken):
        read(verified, t, "x" * 48, REFERENCE)
    with pytest.raises(InvalidToken):
        read(verified, t, SECRET, REFERENCE, issuer="other")


def test_a_bad_token_is_never_remembered(verified):
    t = token()
    tampered = t[:-2] + ("AA" if not t.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            read(verified, tampered, SECRET, REFERENCE)
    assert len(verified._entries) == 0


def test_the_role_is_checked_against_the_reference_on_every_read(verified):
    t = token()
    read(verified, t, SECRET, REFERENCE)
    moved = REFERENCE.model_copy(update={"establishments": [e for e in REFERENCE.establishments if e.uai != COLLEGE]})
    with pytest.raises(InvalidToken):
        read(verified, t, SECRET, moved)


def test_the_cache_is_bounded_and_drops_the_least_recently_used(verified, monkeypatch):
    monkeypatch.setattr(verified, "size", 3)
    tokens = [token(user_id=f"principal.{n}") for n in range(4)]
    for t in tokens[:3]:
        read(verified, t, SECRET, REFERENCE)
    read(verified, tokens[0], SECRET, REFERENCE)  # used again: now the most recent
    read(verified, tokens[3], SECRET, REFERENCE)
    remembered = {key[0] for key in verified._entries}
    assert remembered == {tokens[0], tokens[2], tokens[3]}


def test_each_app_has_its_own_cache_and_none_means_none(verified):
    t = token()
    read(verified, t, SECRET, REFERENCE)
    other = VerifiedTokens()
    read_token(t, SECRET, REFERENCE)  # no cache: verified, remembered nowhere
    assert len(verified._entries) == 1 and len(other._entries) == 0
    read(other, t, SECRET, REFERENCE)
    assert len(other._entries) == 1
