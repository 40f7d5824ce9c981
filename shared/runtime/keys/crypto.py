"""AES-256-GCM for Passpro's personal data: a data key per student, wrapped by the master key.

- The master key (32 bytes, `PASSPRO_MASTER_KEY`, base64) never reaches Redis
  nor a view's database; it only wraps and unwraps the students' data keys.
- A data key (32 random bytes) seals the personal fields of one student's
  events in one campaign; wrapped, it lives in the key store
  (`shared/runtime/keys/store.py`). Destroying it erases that data everywhere.
- Every ciphertext is `v1:` + base64(nonce ‖ ciphertext ‖ tag) with a random
  96-bit nonce, bound by associated data to what it belongs to (the student
  for a wrapped key, the event for sealed fields), so none can be moved.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "v1:"
DEV_MASTER_KEY_FILE = "master.key"


class CryptoError(ValueError):
    """A ciphertext that does not open with its key (tampered, moved, or another key)."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return PREFIX + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad)).decode("ascii")


def decrypt(key: bytes, sealed: str, aad: bytes) -> bytes:
    return _decrypt(AESGCM(key), sealed, aad)


def _decrypt(cipher: AESGCM, sealed: str, aad: bytes) -> bytes:
    if not sealed.startswith(PREFIX):
        raise CryptoError("unknown ciphertext format")
    try:
        # binascii's strict mode refuses what b64decode(validate=True) refuses, in C (that one checks by a regex)
        raw = binascii.a2b_base64(sealed[len(PREFIX):], strict_mode=True)
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise CryptoError("ciphertext does not open with this key") from exc


def parse_master_key(text: str) -> bytes:
    """The master key from its base64 text; refuses anything but 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise SystemExit("PASSPRO_MASTER_KEY must be 32 bytes in base64 (make one: passpro master-key)")
    return key


def format_master_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def development_master_key(data_dir: Path) -> bytes:
    """The development master key kept under the data dir (`passpro up`, tests): made once, 0600."""
    path = data_dir / DEV_MASTER_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(format_master_key(new_key()) + "\n")
        log.warning("made a development master key at %s (set PASSPRO_MASTER_KEY in production)", path)
    return parse_master_key(path.read_text())


class MasterKey:
    """Wraps and unwraps data keys; the wrapped form is bound to its campaign and student."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a master key is 32 bytes")
        self._key = key
        self._cipher = AESGCM(key)  # made once: a reader unwraps hundreds of keys a page

    @staticmethod
    def _aad(campaign: str, ine: str) -> bytes:
        return f"passpro-data-key|{campaign}|{ine}".encode()

    def wrap(self, data_key: bytes, campaign: str, ine: str) -> str:
        return encrypt(self._key, data_key, self._aad(campaign, ine))

    def unwrap(self, wrapped: str, campaign: str, ine: str) -> bytes:
        return _decrypt(self._cipher, wrapped, self._aad(campaign, ine))

    def derive(self, info: bytes, salt: bytes) -> bytes:
        """A key of its own for another use (HKDF-SHA256), e.g. a campaign's archive: the master key
        itself only ever wraps data keys."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(self._key)


class StudentKeys:
    """A keyring (`shared.contracts.personal.Keyring`) over data keys already unwrapped.

    `keys` maps (campaign, INE) to the data key, or to None when the key was
    destroyed (the student erased: their fields read ERASED). A student absent
    from the map has no key at all, which is an error, never an erasure."""

    def __init__(self, keys: dict[tuple[str, str], bytes | None], ciphers: dict[bytes, AESGCM] | None = None) -> None:
        self.keys = keys
        # by key, made at its first use (a student has several entries a page), or given (the key store keeps them)
        self._ciphers: dict[bytes, AESGCM] = {} if ciphers is None else ciphers

    def _key(self, campaign: str, ine: str) -> bytes | None:
        try:
            return self.keys[(campaign, ine)]
        except KeyError:
            raise LookupError(f"no data key for student {ine} of campaign {campaign}") from None

    def seal(self, campaign: str, ine: str, aad: bytes, plaintext: bytes) -> str:
        key = self._key(campaign, ine)
        if key is None:
            raise LookupError(f"the data key of student {ine} of campaign {campaign} was destroyed")
        return encrypt(key, plaintext, aad)

    def open(self, campaign: str, ine: str, aad: bytes, sealed: str) -> bytes | None:
        key = self._key(campaign, ine)
        if key is None:
            return None
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._ciphers[key] = AESGCM(key)
        try:
            return _decrypt(cipher, sealed, aad)
        except CryptoError as exc:
            raise LookupError(f"sealed fields of student {ine} do not open: {exc}") from exc
