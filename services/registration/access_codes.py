"""The students' personal access codes (SPEC §6): made, kept as a salted hash, checked, rate-limited.

The principal or the référent issues a code for a registered student (the event `StudentAccessIssued` in the
log says who and until when, never the code); the student exchanges their INE and code for a token of role
`eleve`. Here is everything about the code itself, outside the log, in registration's database:

- a code is 12 characters of an alphabet without look-alikes (no 0/O, 1/I/L), shown `XXXX-XXXX-XXXX`; typed
  back with or without its dashes and spaces, in any case;
- only its scrypt hash (stdlib `hashlib.scrypt`, a random 16-byte salt per code, parameters kept with the hash)
  is stored, one row per student and campaign: issuing a new code replaces the row, so the old code is revoked;
- wrong codes are counted per INE in the database (so the limit holds across processes): after
  `MAX_FAILURES` wrong tries the INE is locked for `LOCK_SECONDS`, and every try answers "locked" with the
  seconds left, even with the right code. An INE nobody issued a code for counts the same (the answers never
  tell whether a student is in the scheme).

`verify_access_code(conn_or_engine, ine, code, now)` is the one check: the sign-in here and EduConnect's first
link (an identity tied to the INE by this code) both call it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from services.registration.views import access_codes, sign_in_failures
from shared.runtime import tries

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # 31 symbols, none mistaken for another
CODE_LENGTH = 12  # 31^12 ≈ 2^59
CODE_DAYS = 90  # a code lasts the spring of the interviews; a new one can be issued at any time
MAX_FAILURES = 5
LOCK_SECONDS = tries.LOCK_SECONDS
FAILURES_KEPT_SECONDS = tries.KEPT_SECONDS  # wrong tries older than this, with no lock running, are forgotten
# scrypt's cost: 16 MiB and ~50 ms per check, a fraction of a second for a student, a wall for a guesser.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LENGTH = 2**14, 8, 1, 32


@dataclass(frozen=True)
class AccessOutcome:
    """What a check of INE + code found. `accepted`: the code is the student's current one, unexpired; then
    `campaign` and `college_uai` say whose. `retry_after`: the INE is locked for that many seconds more
    (the code was not even looked at)."""

    accepted: bool
    retry_after: int | None = None
    campaign: str | None = None
    college_uai: str | None = None
    code_expires_at: datetime | None = None

    @property
    def locked(self) -> bool:
        return self.retry_after is not None


# --- the code itself ---------------------------------------------------------------------------------


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(text: str) -> str:
    """The code as typed, without spaces or dashes, upper-cased (ASCII only)."""
    cleaned = "".join(ch for ch in text if ch not in " -\t\n\r")
    return cleaned.upper() if cleaned.isascii() else cleaned


def hash_code(code: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (hex): the parameters travel with the hash, so they can be raised later."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        normalise_code(code).encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LENGTH
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def code_matches(stored: str, code: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        found = hashlib.scrypt(
            normalise_code(code).encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


# --- the store -----------------------------------------------------------------------------------------


@contextmanager
def _transaction(conn_or_engine: Connection | Engine) -> Iterator[Connection]:
    """A transaction on the engine, or the caller's connection (committed by the caller)."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            yield conn
    else:
        yield conn_or_engine


def store_code(
    conn_or_engine: Connection | Engine, *, campaign: str, ine: str, college_uai: str, code: str, issued_by: str,
    issued_at: datetime, expires_at: datetime,
) -> None:
    """Keep the code's hash for the student, replacing (so revoking) any earlier one of the campaign."""
    row = {
        "campaign": campaign, "ine": ine, "college_uai": college_uai, "code_hash": hash_code(code),
        "issued_by": issued_by, "issued_at": issued_at.astimezone(UTC), "expires_at": expires_at.astimezone(UTC),
    }
    with _transaction(conn_or_engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(access_codes)
        updates = {k: stmt.excluded[k] for k in row if k not in ("campaign", "ine")}
        conn.execute(stmt.on_conflict_do_update(index_elements=["campaign", "ine"], set_=updates), [row])


def current_code(conn_or_engine: Connection | Engine, ine: str) -> dict | None:
    """The INE's latest issued code's row (any campaign), without its hash; None if none was issued."""
    with _transaction(conn_or_engine) as conn:
        row = conn.execute(
            select(access_codes).where(access_codes.c.ine == ine)
            .order_by(access_codes.c.issued_at.desc()).limit(1)
        ).mappings().first()
    if row is None:
        return None
    found = dict(row)
    found.pop("code_hash")
    found["issued_at"], found["expires_at"] = tries.aware(found["issued_at"]), tries.aware(found["expires_at"])
    return found


def erase_student(conn_or_engine: Connection | Engine, ine: str) -> None:
    """The student's code and wrong tries, gone (the view does it when it reads their StudentForgotten)."""
    with _transaction(conn_or_engine) as conn:
        conn.execute(delete(access_codes).where(access_codes.c.ine == ine))
        conn.execute(delete(sign_in_failures).where(sign_in_failures.c.ine == ine))


# --- the check --------------------------------------------------------------------------------------------


def verify_access_code(conn_or_engine: Connection | Engine, ine: str, code: str, now: datetime) -> AccessOutcome:
    """Is `code` the INE's current access code at `now`? A locked INE is answered locked without a look at the
    code; a wrong, revoked or expired code counts as a wrong try; the right one clears the count.
    `ine` is the normalised INE (shared.contracts.identifiers); `now` is aware. Given an engine, the slow hash
    is computed between two short transactions (no write lock held meanwhile); given a connection, on it."""
    now = now.astimezone(UTC)
    with _transaction(conn_or_engine) as conn:
        if (left := tries.lock_left(conn, sign_in_failures, ine, now)) is not None:
            return AccessOutcome(accepted=False, retry_after=left)
        row = conn.execute(
            select(access_codes).where(access_codes.c.ine == ine).order_by(access_codes.c.issued_at.desc()).limit(1)
        ).first()
    expires_at = tries.aware(row.expires_at) if row else None
    if row is None:
        hash_code(code)  # the same work as a real check: the time taken does not tell who has a code
        right = False
    else:
        right = expires_at > now and code_matches(row.code_hash, code)
    with _transaction(conn_or_engine) as conn:
        tries.forget_old_failures(conn, sign_in_failures, now)
        if right:
            tries.forget_tries(conn, sign_in_failures, ine)
            return AccessOutcome(True, campaign=row.campaign, college_uai=row.college_uai, code_expires_at=expires_at)
        tries.count_failure(conn, sign_in_failures, ine, now, MAX_FAILURES)
        return AccessOutcome(accepted=False)


def count_try(conn_or_engine: Connection | Engine, key: str, now: datetime, most: int) -> int | None:
    """The same count and lock as wrong codes, for another way in (educonnect.py: sign-ins started from one
    address): shared.runtime.tries.count_try in this table. `key` never has an INE's shape (a row per INE stays)."""
    with _transaction(conn_or_engine) as conn:
        return tries.count_try(conn, sign_in_failures, key, now, most)


def forget_tries(conn_or_engine: Connection | Engine, key: str) -> None:
    """`key`'s count cleared, as the right code clears an INE's."""
    with _transaction(conn_or_engine) as conn:
        tries.forget_tries(conn, sign_in_failures, key)
