"""Micro-benchmark of the projection's parse: one entry of the log into its event, three ways, on the same entries.

    python -m bench.parse_micro [--students 1500] [--rounds 5]

- `reference`: `logged_event_from_entry` (`event_from_fields`: json.loads, the payload model, then the
  envelope model, every identifier, text and date checked by a Python function);
- `pydantic-core`: `shared/runtime/projection/wire.py` on the fields as text: one schema per event type
  compiled once (envelope, actor and payload JSON parsed and checked natively), the same model instances;
- `pydantic-core, from bytes`: the same from the entry's bytes as Redis sends them (`read_raw_entry`), what
  the consumer does: no decoded dict, the envelope decoded and the JSON parsed natively;
- `msgspec, decoding only`: the same without building the pydantic instances (what the views could not
  use: the lower bound of a msgspec read);
- `msgspec`: the payload and the actor decoded by msgspec into Structs derived from the same models
  (`msgspec.json.decode` with native constraints), then turned into the contract's pydantic instances with
  a constructor of their own (what `model_construct` does, less its Python: the views need them), the UAI letters and dates to UTC checked in Python as wire.py does.

The msgspec variant exists only here, for the measure: it is not checked against the reference, and
its Python regular expressions and defaults differ slightly (e.g. a defaulted field is in the fields set).

The entries are the bench's own (`bench/workload.py`), sealed with one key per student, with the fields
the append script adds; no Redis nor database. The keys come in one keyring per page of 1,000 entries, as
the consumer gets them. Prints microseconds per entry, the best of `--rounds`,
interleaving the variants so that a busy machine slows each alike. Compare the ratios, on a loaded
machine too.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

from bench.workload import Places, entry_fields, seal_fields, student_history
from shared.contracts import events as contract
from shared.contracts.identifiers import UAI_CHECK_LETTERS, check_uai
from shared.contracts.personal import ERASED, SEALED, associated_data, merge_personal
from shared.contracts.streams import LoggedEvent, logged_event_from_entry
from shared.runtime.keys.crypto import StudentKeys, new_key
from shared.runtime.projection.wire import CANONICAL_TEXT, IDENTIFIER_PATTERNS, read_entry, read_raw_entry


def bench_entries(students: int) -> tuple[list[tuple[str, str, dict[str, str]]], StudentKeys]:
    places, rng = Places.from_reference(), random.Random(1)
    now = datetime.now(UTC).replace(microsecond=0)
    keys: dict[tuple[str, str], bytes | None] = {}
    entries = []
    for n in range(students):
        ine, steps = student_history(n, places, rng, now)
        keys[("2027", ine)] = new_key()
        ring = StudentKeys(keys)
        for version, step in enumerate(steps):
            fields = seal_fields(entry_fields(step, ine, "2027", now.isoformat(), str(uuid.UUID(int=rng.getrandbits(128), version=4))), ring)
            fields |= {"recorded_at": now.isoformat(timespec="microseconds"), "student_version": str(version + 1),
                       "prev_hash": "0" * 40, "hash": "1" * 40}
            entries.append((f"stream-{step.service}", f"{n}-{version}", fields))
    return entries, StudentKeys(keys)


# --- the msgspec variant ------------------------------------------------------------------------


class _Uai:
    pass


def _ms_type(annotation: Any, metadata: list[Any]) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *more = typing.get_args(annotation)
        return _ms_type(base, [*more, *metadata])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _ms_type(inner, metadata) | None
    if origin is Literal or annotation in (bool, UUID):
        return annotation
    if annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if annotation is int:
        bounds = {k: getattr(m, k) for m in metadata for k in ("ge", "le") if hasattr(m, k)}
        return Annotated[int, msgspec.Meta(**bounds)]
    if annotation is str:
        checks = [m.func for m in metadata if isinstance(m, AfterValidator) and m.func in IDENTIFIER_PATTERNS]
        if checks:
            return Annotated[str, msgspec.Meta(pattern=IDENTIFIER_PATTERNS[checks[0]])]
        c = next(m for m in metadata if isinstance(m, StringConstraints))
        if c.strip_whitespace and c.pattern is None:
            return Annotated[str, msgspec.Meta(pattern=CANONICAL_TEXT.replace("\\s", "\\s\\x85\\xa0"), max_length=c.max_length)]
        return Annotated[str, msgspec.Meta(pattern=c.pattern, max_length=c.max_length)]
    if isinstance(annotation, type) and issubclass(annotation, contract.Contract):
        return _struct(annotation)
    raise TypeError(annotation)


_STRUCTS: dict[type, type] = {}


def _struct(cls: type) -> type:
    if cls not in _STRUCTS:
        fields = []
        for name, info in cls.model_fields.items():
            kind = _ms_type(info.annotation, list(info.metadata))
            if name == "email":
                kind = kind | Literal[ERASED]  # type: ignore[operator]
            fields.append((name, kind) if info.is_required() else (name, kind, info.default))
        _STRUCTS[cls] = msgspec.defstruct(cls.__name__, fields, forbid_unknown_fields=True, kw_only=True)
    return _STRUCTS[cls]


def _uai_fields(cls: type) -> list[str]:
    return [n for n, i in cls.model_fields.items()
            if any(isinstance(m, AfterValidator) and m.func is check_uai for m in i.metadata)]


_SHAPES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _build(cls: type, data: dict[str, Any]) -> Any:
    """A pydantic instance from checked values, as pydantic-core sets one up (what `model_construct` does
    in more Python)."""
    instance = cls.__new__(cls)
    object.__setattr__(instance, "__dict__", data)
    object.__setattr__(instance, "__pydantic_fields_set__", set(data))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


def _to_model(cls: type, value: Any) -> Any:
    """The pydantic instance of a decoded Struct (nested models too), unchecked: already checked."""
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = (tuple(cls.model_fields), tuple(_uai_fields(cls)))
    names, uais = shape
    data = {}
    for name in names:
        item = getattr(value, name)
        if isinstance(item, msgspec.Struct):
            item = _to_model(type(item).__pydantic_model__, item)
        elif isinstance(item, datetime):
            item = item.astimezone(UTC)
        data[name] = item
    for name in uais:
        uai = data[name]
        if uai is not None and UAI_CHECK_LETTERS[int(uai[:7]) % 23] != uai[7]:
            raise ValueError("UAI")
    return _build(cls, data)


class MsgspecReader:
    def __init__(self) -> None:
        self.actor = _struct(contract.Actor)
        self.actor.__pydantic_model__ = contract.Actor
        self.payloads = {}
        for event_type, cls in contract.PAYLOAD_TYPES.items():
            try:
                struct = _struct(cls)
            except (TypeError, StopIteration):
                continue
            self.payloads[event_type] = (struct, msgspec.json.Decoder(struct), cls)
        for cls, struct in _STRUCTS.items():
            struct.__pydantic_model__ = cls
        self.actor_decoder = msgspec.json.Decoder(self.actor)
        self.envelope = msgspec.defstruct("Envelope", [
            ("event_id", UUID), ("occurred_at", Annotated[datetime, msgspec.Meta(tz=True)]),
            ("recorded_at", Annotated[datetime, msgspec.Meta(tz=True)] | None),
            ("campaign", Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}$")]),
            ("student_ine", Annotated[str, msgspec.Meta(pattern=IDENTIFIER_PATTERNS[next(iter(IDENTIFIER_PATTERNS))])] | None),
        ])

    def decoded_only(self, stream: str, entry_id: str, fields: dict[str, str], keyring: Any) -> Any:
        """The decoding and checks alone, no pydantic instance built: what msgspec costs at best."""
        return self.logged(stream, entry_id, fields, keyring, build=False)

    def logged(self, stream: str, entry_id: str, fields: dict[str, str], keyring: Any, build: bool = True) -> LoggedEvent:
        event_type = fields["event_type"]
        struct, decoder, cls = self.payloads[event_type]
        if fields.get(SEALED):
            plain = keyring.open(fields["campaign"], fields["student_ine"], associated_data(fields["event_id"], event_type), fields[SEALED])
            merged = merge_personal(event_type, json.loads(fields["payload"]), None if plain is None else json.loads(plain))
            payload = msgspec.convert(merged, struct)
        else:
            payload = decoder.decode(fields["payload"])
        envelope = msgspec.convert({
            "event_id": fields["event_id"], "occurred_at": fields["occurred_at"],
            "recorded_at": fields.get("recorded_at") or None, "campaign": fields["campaign"],
            "student_ine": fields.get("student_ine") or None,
        }, self.envelope, strict=False)
        if not build:
            return envelope, self.actor_decoder.decode(fields["actor"]), payload
        event = _build(contract.Event, dict(
            event_id=envelope.event_id, event_type=event_type, schema_version=cls.SCHEMA_VERSION,
            occurred_at=envelope.occurred_at.astimezone(UTC),
            recorded_at=envelope.recorded_at.astimezone(UTC) if envelope.recorded_at else None,
            campaign=envelope.campaign, student_ine=envelope.student_ine,
            actor=_to_model(contract.Actor, self.actor_decoder.decode(fields["actor"])),
            payload=_to_model(cls, payload),
        ))
        version = fields.get("student_version")
        return LoggedEvent(event, stream, entry_id, int(version) if version else None, fields.get("hash"))


PAGE = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    entries, keyring = bench_entries(args.students)
    ms = MsgspecReader()
    variants = {"reference": logged_event_from_entry, "pydantic-core": read_entry, "pydantic-core, from bytes": read_raw_entry,
                "msgspec": ms.logged, "msgspec, decoding only (no pydantic instance)": ms.decoded_only}
    raw = [(stream, entry_id, {k.encode(): v.encode() for k, v in fields.items()}) for stream, entry_id, fields in entries]
    for stream, entry_id, fields in entries[:2000]:  # the msgspec variant reads the same events (a spot check)
        want = logged_event_from_entry(stream, entry_id, fields, keyring)
        got = ms.logged(stream, entry_id, fields, keyring)
        assert got.event.model_dump_json() == want.event.model_dump_json(), (got, want)
    best = {name: float("inf") for name in variants}
    for _ in range(args.rounds):
        for name, read in variants.items():
            pages = raw if read is read_raw_entry else entries
            started = time.perf_counter()
            for start in range(0, len(pages), PAGE):
                ring = StudentKeys(keyring.keys)  # a page's keyring, as the consumer has one per page
                for stream, entry_id, fields in pages[start : start + PAGE]:
                    read(stream, entry_id, fields, ring)
            best[name] = min(best[name], (time.perf_counter() - started) / len(entries) * 1e6)
    print(f"{len(entries)} entries ({args.students} students, sealed), best of {args.rounds} rounds, µs per entry:")
    for name, us in best.items():
        print(f"  {name:<46} {us:6.1f}   ({best['reference'] / us:.2f} × the reference)")


if __name__ == "__main__":
    main()
