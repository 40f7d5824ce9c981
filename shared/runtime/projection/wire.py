"""Reading log entries fast: one schema per event type, compiled once for the wire format.

`shared.contracts.events.event_from_fields` (the reference) parses an entry's JSON fields in Python,
validates the payload, then the envelope around it, calling Python for every identifier (normalised,
then checked), every text (no control character) and every date (to UTC). This module derives from
the same contract models, once per event type, a pydantic-core schema that validates the whole
entry in one call: the envelope, the actor and the payload JSON parsed in Rust, each text and
identifier checked by a native pattern, and builds the very same model instances. Python is called
only for what no native check says: a UAI's control letter, and a date not written in UTC.

It accepts only entries in the form the services write (canonical: identifiers already normalised,
texts already trimmed, booleans and numbers as JSON booleans and numbers, the current schema
version). Anything else — an older version to upcast, a field it does not know how to check, a value
the reference would normalise or reject — goes to the reference, which reads it or raises exactly as
before, so what is refused and why (the dead letters' reasons) is unchanged: the fast path only ever
returns what the reference returns (tests/shared/test_consumer_wire.py compares them, also on mutated entries).

The consumer reads the log's bytes as Redis sends them (`logged_raw`): the envelope's fields are decoded
by the schema itself (UTF-8, natively), the actor's and the payload's JSON parsed from the bytes, with no
dict of decoded fields per entry; an entry the fast path does not read is decoded for the reference
(`decoded_fields`, as the CLI's clients decode: invalid UTF-8 kept as surrogates).
"""

from __future__ import annotations

import types
import threading
import typing
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields as dataclass_fields
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, StringConstraints
from pydantic_core import SchemaValidator, core_schema as cs, from_json

from shared.contracts import events as contract
from shared.contracts.identifiers import (
    UAI_CHECK_LETTERS,
    check_campaign,
    check_formation_code,
    check_ine,
    check_uai,
    normalise,
)
from shared.contracts.personal import ERASED, SEALED, Keyring, associated_data, merge_personal
from shared.contracts.streams import HASH, STUDENT_VERSION, LoggedEvent, logged_event_from_entry

# A canonical text: no control character, and neither starting nor ending with a space (so trimming it
# changes nothing). Rust's `\s` is Unicode's White_Space, what Python's str.strip() removes but for the
# control characters \x1c-\x1f, excluded anyway.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
CANONICAL_TEXT = rf"^[^\s{_CONTROL}](?:[^{_CONTROL}]*[^\s{_CONTROL}])?$"
# Identifiers as normalise() leaves them (no space, upper case): the reference's own patterns.
IDENTIFIER_PATTERNS = {
    check_ine: r"^(?:[0-9]{9}[A-Z]{2}|[0-9]{10}[A-Z]|[0-9]{4}A[0-9]{5}[A-Z])$",
    check_uai: r"^[0-9]{7}[A-Z]$",
    check_formation_code: r"^[0-9]{10,11}$",
    check_campaign: r"^[0-9]{4}$",
}


# A date in UTC as `isoformat()` and pydantic write it; for these the reference's parse then conversion to UTC
# and datetime.fromisoformat give the same datetime, in datetime.UTC (tests/shared/test_consumer_wire.py).
CANONICAL_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)$"


class NotDerivable(Exception):
    """A field whose checks this module does not know: its event type is read by the reference only."""


def _uai_letter(value: str) -> str:
    """The UAI's control letter (its pattern already checked natively)."""
    if UAI_CHECK_LETTERS[int(value[:7]) % 23] != value[7]:
        raise ValueError("UAI control letter")
    return value


def _erasable_email(schema: cs.CoreSchema) -> cs.CoreSchema:
    """Referent.email as the log is read: an address, or ERASED (its student's key destroyed)."""
    return cs.union_schema([cs.literal_schema([ERASED]), schema], mode="left_to_right")


# Field validators of the contract models the fast path knows, by (model, field): how it checks the same.
KNOWN_FIELD_VALIDATORS = {(contract.Referent, "email"): _erasable_email}


def _string(metadata: list[Any]) -> cs.CoreSchema:
    """A str field: a contract Text, an identifier, or a constrained string, checked in canonical form."""
    constraints = [m for m in metadata if isinstance(m, StringConstraints)]
    befores = [m.func for m in metadata if isinstance(m, BeforeValidator)]
    afters = [m.func for m in metadata if isinstance(m, AfterValidator)]
    checks = [f for f in afters if f in IDENTIFIER_PATTERNS]
    if checks:  # an identifier: normalise, a str, then its check
        if befores != [normalise] or len(checks) != 1 or len(afters) != 2 or constraints:
            raise NotDerivable("identifier")
        schema = cs.str_schema(strict=True, pattern=IDENTIFIER_PATTERNS[checks[0]])
        return cs.no_info_after_validator_function(_uai_letter, schema) if checks[0] is check_uai else schema
    if befores or len(constraints) != 1:
        raise NotDerivable("string")
    c = constraints[0]
    if c.to_upper or c.to_lower or c.strict is False or c.ascii_only:
        raise NotDerivable("string constraints")
    if not c.strip_whitespace:  # nothing changes the value: the same constraints, natively
        if afters:
            raise NotDerivable("string validators")
        return cs.str_schema(strict=True, pattern=c.pattern, min_length=c.min_length, max_length=c.max_length)
    if afters == [contract._no_control_characters] and c.pattern is None and c.min_length == 1:
        return cs.str_schema(strict=True, max_length=c.max_length, pattern=CANONICAL_TEXT)  # a Text
    if not afters and c.pattern is not None and c.min_length is None and c.pattern.startswith("^[^@\\s]+"):
        # a pattern that admits no space at either end: trimming changes nothing in what it accepts
        return cs.str_schema(strict=True, max_length=c.max_length, pattern=c.pattern)
    raise NotDerivable("string validators")


def _field(annotation: Any, metadata: list[Any]) -> cs.CoreSchema:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *more = typing.get_args(annotation)
        return _field(base, [*more, *metadata])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) == 2 and type(None) in args:
            (inner,) = [a for a in args if a is not type(None)]
            return cs.nullable_schema(_field(inner, metadata))
        raise NotDerivable("union")
    if origin is Literal:
        return cs.literal_schema(list(typing.get_args(annotation)))
    if annotation is str:
        return _string(metadata)
    if annotation is bool and not metadata:
        return cs.bool_schema(strict=True)
    if annotation is int:
        bounds = {}
        for m in metadata:
            if isinstance(m, annotated_types.Ge):
                bounds["ge"] = m.ge
            elif isinstance(m, annotated_types.Le):
                bounds["le"] = m.le
            else:
                raise NotDerivable("int constraint")
        return cs.int_schema(strict=True, **bounds)
    if annotation is AwareDatetime:
        afters = [m.func for m in metadata if isinstance(m, AfterValidator)]
        if afters != [contract._utc] or len(metadata) != 1:
            raise NotDerivable("datetime")
        # A date as the services write it, in UTC: read by datetime.fromisoformat (C, called from Rust), which
        # gives it in UTC as it is; any other form: pydantic's parser, then the reference's own conversion.
        return cs.union_schema([
            cs.no_info_after_validator_function(datetime.fromisoformat, cs.str_schema(strict=True, pattern=CANONICAL_UTC)),
            cs.no_info_after_validator_function(contract._utc, cs.datetime_schema(tz_constraint="aware")),
        ], mode="left_to_right")
    if annotation is UUID and not metadata:
        return cs.uuid_schema()
    if isinstance(annotation, type) and issubclass(annotation, contract.Contract) and not metadata:
        return _model(annotation)
    raise NotDerivable(repr(annotation))


def _model(cls: type[BaseModel]) -> cs.CoreSchema:
    """The model's own class built from natively checked fields (frozen, unknown fields refused)."""
    decorators = cls.__pydantic_decorators__
    if decorators.model_validators or decorators.root_validators or decorators.validators:
        raise NotDerivable(f"{cls.__name__} has model validators")
    validated = {name for v in decorators.field_validators.values() for name in v.info.fields}
    fields = {}
    for name, info in cls.model_fields.items():
        schema = _field(info.annotation, list(info.metadata))
        wrapped = [how for (model, field), how in KNOWN_FIELD_VALIDATORS.items() if field == name and issubclass(cls, model)]
        if name in validated:
            if len(wrapped) != 1:
                raise NotDerivable(f"{cls.__name__}.{name} has a field validator")
            schema = wrapped[0](schema)
        if not info.is_required():
            if info.default_factory is not None:
                raise NotDerivable("default factory")
            schema = cs.with_default_schema(schema, default=info.default)
        fields[name] = cs.model_field(schema)
    return cs.model_schema(
        cls, cs.model_fields_schema(fields, extra_behavior="forbid", model_name=cls.__name__),
        config=cs.CoreConfig(title=cls.__name__, extra_fields_behavior="forbid"),
    )


@contextmanager
def _not_prebuilt(classes: list[type[BaseModel]]):
    """pydantic-core reuses a complete model class's own validator for a `model` schema naming it (its
    "prebuilt" validator, the reference's checks in Python); while the schema is compiled, each class says
    it is not complete, so the schema given is the one compiled. Read at compile time only."""
    flags = {cls: cls.__dict__.get("__pydantic_complete__") for cls in classes}
    try:
        for cls in classes:
            type.__setattr__(cls, "__pydantic_complete__", False)
        yield
    finally:
        for cls, flag in flags.items():
            type.__setattr__(cls, "__pydantic_complete__", flag)


def _contract_classes() -> list[type[BaseModel]]:
    found, todo = [], [contract.Event, *contract.PAYLOAD_TYPES.values()]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        for info in cls.model_fields.values():
            for arg in [info.annotation, *typing.get_args(info.annotation)]:
                for inner in [arg, *typing.get_args(arg)]:
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        todo.append(inner)
    return found


def _text_or_bytes(schema: cs.CoreSchema) -> cs.CoreSchema:
    """An envelope field given as the log's bytes (decoded as UTF-8 natively, refused if not UTF-8) or as
    str, then checked by `schema` as the str it decodes to (None stays None for an optional field)."""
    if schema["type"] == "nullable":
        return cs.nullable_schema(_text_or_bytes(schema["schema"]))
    return cs.chain_schema([cs.str_schema(strict=False), schema])


def _envelope(payload_type: type[contract.Payload], payload_as_json: bool) -> SchemaValidator:
    """The whole entry as an `Event` of this payload type: the actor's JSON and (unsealed) the payload's
    parsed natively, from str or bytes; the envelope's type and version are this payload's, set by the caller."""
    env = contract.Event.model_fields
    payload = _model(payload_type)
    actor = _model(contract.Actor)

    def text(name: str) -> cs.ModelField:
        return cs.model_field(_text_or_bytes(_field(env[name].annotation, list(env[name].metadata))))

    fields = {
        "event_id": text("event_id"),
        "event_type": cs.model_field(cs.literal_schema([payload_type.EVENT_TYPE])),
        "schema_version": cs.model_field(cs.literal_schema([payload_type.SCHEMA_VERSION])),
        "occurred_at": text("occurred_at"),
        "recorded_at": text("recorded_at"),
        "campaign": text("campaign"),
        "student_ine": text("student_ine"),
        "actor": cs.model_field(cs.json_schema(actor)),
        "payload": cs.model_field(cs.json_schema(payload) if payload_as_json else payload),
    }
    if set(fields) != set(env):
        raise NotDerivable("the envelope's fields changed")
    with _not_prebuilt(_contract_classes()):
        validator = SchemaValidator(cs.model_schema(
            contract.Event, cs.model_fields_schema(fields, extra_behavior="forbid", model_name="Event"),
            config=cs.CoreConfig(title="Event", extra_fields_behavior="forbid"),
        ))
    if "Prebuilt" in repr(validator):
        raise NotDerivable("pydantic-core reused a model's own validator")
    return validator


_COMPILING = threading.Lock()


@dataclass(frozen=True)
class Compiled:
    """An event type's schemas: its name and current version (also as the log writes them, in bytes), the
    entry with its payload as JSON (in clear), and with its payload as a dict (sealed: merged in Python)."""

    name: str
    version: int
    version_bytes: bytes
    from_json: SchemaValidator
    from_dict: SchemaValidator


def decoded_fields(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """An entry's fields as text, as a client decoding its replies gives them (invalid UTF-8 kept as
    surrogates, as the CLI's clients read the log): what the reference, the dead letters and the logs take."""
    return {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape") for k, v in raw.items()}


class WireReader:
    """The compiled schemas, made at first use of each event type (None: read by the reference only)."""

    def __init__(self) -> None:
        self._schemas: dict[str, Compiled | None] = {}
        self._by_wire_name: dict[bytes, Compiled | None] = {}  # the same, by the bytes of a known event type
        self.fast = 0  # entries read through a compiled schema
        self.reference = 0  # entries handed to the reference

    def _schemas_of(self, event_type: str) -> Compiled | None:
        try:
            return self._schemas[event_type]
        except KeyError:
            pass
        with _COMPILING:
            return self._compile(event_type)

    def _schemas_of_wire_name(self, event_type: bytes | None) -> Compiled | None:
        try:
            return self._by_wire_name[event_type]
        except KeyError:
            pass
        try:
            name = event_type.decode()
        except (AttributeError, UnicodeDecodeError):  # no event type, or not UTF-8: the reference says why
            return None
        if name not in contract.PAYLOAD_TYPES:
            return None  # unknown (a newer producer) or garbage: not remembered, the reference answers
        compiled = self._by_wire_name[event_type] = self._schemas_of(name)
        return compiled

    def _compile(self, event_type: str) -> Compiled | None:
        if event_type in self._schemas:
            return self._schemas[event_type]
        payload_type = contract.PAYLOAD_TYPES.get(event_type)
        compiled = None
        if payload_type is not None:
            version = payload_type.SCHEMA_VERSION
            try:
                compiled = Compiled(event_type, version, str(version).encode(), _envelope(payload_type, True),
                                    _envelope(payload_type, False))
            except NotDerivable:
                compiled = None
        self._schemas[event_type] = compiled
        return compiled

    def event(self, fields: dict[str, str], keyring: Keyring | None) -> contract.Event:
        """The entry's event, as `event_from_fields(fields, keyring)` reads it (and raising as it does)."""
        try:
            event = self._fast(fields, keyring)
        except Exception:  # noqa: BLE001 - not canonical, or not readable: the reference says which, and why
            event = None
        if event is None:
            self.reference += 1
            return contract.event_from_fields(fields, keyring)
        self.fast += 1
        return event

    def _fast(self, fields: dict[str, str], keyring: Keyring | None) -> contract.Event | None:
        compiled = self._schemas_of(fields["event_type"])
        if compiled is None or fields["schema_version"] != str(compiled.version):
            return None  # not compiled; an older version to upcast, or a version written oddly: the reference
        return self._validate(compiled, fields["event_id"], fields["occurred_at"], fields.get("recorded_at"),
                              fields["campaign"], fields.get("student_ine"), fields["actor"], fields["payload"],
                              fields.get(SEALED), keyring)

    def _validate(self, compiled: Compiled, event_id: str | bytes, occurred_at: str | bytes,
                  recorded_at: str | bytes | None, campaign: str | bytes, student_ine: str | bytes | None,
                  actor: str | bytes, payload: str | bytes, sealed: str | bytes | None,
                  keyring: Keyring | None) -> contract.Event | None:
        """The entry's fields (all str, or all bytes) through the compiled schema; None: the reference's to read."""
        entry = {
            "event_id": event_id,
            "event_type": compiled.name,
            "schema_version": compiled.version,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at or None,
            "campaign": campaign,
            "student_ine": student_ine or None,
            "actor": actor,
            "payload": payload,
        }
        if not sealed:
            return compiled.from_json.validate_python(entry)
        if keyring is None:
            return None  # the reference raises SealedWithoutKeys
        if isinstance(sealed, bytes):  # the key store's names and the sealed text, as the reference has them
            event_id, campaign, student_ine, sealed = (
                event_id.decode(), campaign.decode(), (student_ine or b"").decode(), sealed.decode())
        plain = keyring.open(campaign, student_ine or "", associated_data(event_id, compiled.name), sealed)
        # from_json reads what json.loads reads, the same (or refuses it: then the reference says why)
        entry["payload"] = merge_personal(compiled.name, from_json(payload), None if plain is None else from_json(plain))
        return compiled.from_dict.validate_python(entry)

    def logged(self, stream: str, entry_id: str, fields: dict[str, str], keyring: Keyring | None = None) -> LoggedEvent:
        """What `shared.contracts.streams.logged_event_from_entry` returns for this entry."""
        version = fields.get(STUDENT_VERSION)
        return LoggedEvent(
            event=self.event(fields, keyring),
            stream=stream,
            entry_id=entry_id,
            student_version=int(version) if version else None,
            hash=fields.get(HASH),
        )

    def logged_raw(self, stream: str, entry_id: str, raw: Mapping[bytes, bytes], keyring: Keyring | None = None) -> LoggedEvent:
        """The same for an entry as Redis sends it (a client that does not decode): what
        `logged_event_from_entry` returns for its fields decoded (`decoded_fields`), raising as it does."""
        get = raw.get
        try:
            compiled = self._schemas_of_wire_name(get(b"event_type"))
            event = None
            if compiled is not None and get(b"schema_version") == compiled.version_bytes:
                event = self._validate(compiled, raw[b"event_id"], raw[b"occurred_at"], get(b"recorded_at"),
                                       raw[b"campaign"], get(b"student_ine"), raw[b"actor"], raw[b"payload"],
                                       get(_SEALED), keyring)
            if event is not None:
                version, entry_hash = get(_STUDENT_VERSION), get(_HASH)
                logged = _logged_event(event, stream, entry_id, int(version) if version else None,
                                       entry_hash.decode() if entry_hash is not None else None)
                self.fast += 1
                return logged
        except Exception:  # noqa: BLE001 - not canonical, or not readable: the reference says which, and why
            pass
        self.reference += 1
        return logged_event_from_entry(stream, entry_id, decoded_fields(raw), keyring)


_SEALED, _STUDENT_VERSION, _HASH = SEALED.encode(), STUDENT_VERSION.encode(), HASH.encode()


def _logged_event(event: contract.Event, stream: str, entry_id: str, student_version: int | None,
                  entry_hash: str | None) -> LoggedEvent:
    """`LoggedEvent(event, stream, entry_id, student_version, entry_hash)`, the same instance built at half the
    cost: the frozen dataclass's __init__ sets each field through object.__setattr__, here its dict is filled
    at once (once per entry read: BENCHMARKS.md, "Keys across pages and a lighter parse")."""
    logged = _new_object(LoggedEvent)
    logged.__dict__.update(event=event, stream=stream, entry_id=entry_id, student_version=student_version,
                           hash=entry_hash)
    return logged


_new_object = object.__new__
if [f.name for f in dataclass_fields(LoggedEvent)] != ["event", "stream", "entry_id", "student_version", "hash"] or hasattr(
        LoggedEvent, "__slots__"):
    raise ImportError("LoggedEvent changed: _logged_event must fill what its __init__ would")

WIRE = WireReader()


def read_entry(stream: str, entry_id: str, fields: dict[str, str], keyring: Keyring | None = None) -> LoggedEvent:
    """`logged_event_from_entry`, through the compiled schemas."""
    return WIRE.logged(stream, entry_id, fields, keyring)


def read_raw_entry(stream: str, entry_id: str, raw: Mapping[bytes, bytes], keyring: Keyring | None = None) -> LoggedEvent:
    """`logged_event_from_entry` of the entry's decoded fields, through the compiled schemas, from its bytes."""
    return WIRE.logged_raw(stream, entry_id, raw, keyring)


def sealed_student_raw(raw: Mapping[bytes, bytes]) -> tuple[str, str] | None:
    """`streams.sealed_student` of the decoded fields: (campaign, INE) of a sealed entry, whose key a reader
    needs; None also for names that are not UTF-8 (no key has them: the entry is unreadable, and says so)."""
    ine = raw.get(b"student_ine")
    if not ine or not raw.get(_SEALED):
        return None
    try:
        return raw.get(b"campaign", b"").decode(), ine.decode()
    except UnicodeDecodeError:
        return None


__all__ = ["WIRE", "WireReader", "decoded_fields", "read_entry", "read_raw_entry", "sealed_student_raw"]
