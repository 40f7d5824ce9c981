"""The AsyncAPI document of the log: its streams, who writes and reads them, and the entry format.

FastStream describes the streams (a broker that is never connected, built only
to generate the document), so the document comes from the same contracts the
code appends and reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.contracts.events import PAYLOAD_TYPES, Actor
from shared.contracts.personal import PERSONAL_FIELDS
from shared.contracts.streams import StreamKeys

STREAM_EVENTS = {
    "registration": [
        "StudentRegistered", "ReferentReassigned", "InterviewScheduled", "InterviewCancelled", "InterviewRescheduled",
        "CollegeAvisGiven", "StudentWithdrawn", "StudentReinstated",
        "StudentAccessIssued",
        "MotivationLetterSaved", "InterviewPreparationUpdated",
    ],
    "evaluation": [
        "InterviewHeld", "InterviewCancelled", "LyceeAvisGiven",
        "InterviewSlotOpened", "InterviewSlotClosed", "InterviewReportCorrected",
    ],
    "scoring": ["StudentForgotten"],
    "rectorat": ["CampaignOpened", "CampaignCalendarSet"],
}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined, to nest it inside another schema."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _json_field(description: str, model: type[BaseModel]) -> Any:
    return Field(
        description=description,
        json_schema_extra={"contentMediaType": "application/json", "contentSchema": _inlined(model.model_json_schema())},
    )


def entry_model(event_type: str) -> type[BaseModel]:
    """One log entry carrying `event_type`: plain string fields, as `redis-cli XRANGE` shows them."""
    payload = PAYLOAD_TYPES[event_type]
    return create_model(
        f"{event_type}Entry",
        __config__=ConfigDict(title=f"{event_type} (entrée du journal)"),
        __doc__=(payload.__doc__ or "") + f" Entry of type {event_type}, schema_version {payload.SCHEMA_VERSION}.",
        event_id=(str, Field(description="UUID; the idempotency key")),
        event_type=(Literal[event_type], Field(description="stable wire name")),
        schema_version=(str, Field(description=f"payload version (current: {payload.SCHEMA_VERSION}); older ones are upcast on read")),
        student_ine=(str, Field(description="INE of the student; empty for campaign events")),
        campaign=(str, Field(description="year of the rentrée, e.g. 2027")),
        occurred_at=(str, Field(description="RFC 3339, UTC: when it happened")),
        recorded_at=(str, Field(description="RFC 3339, UTC: when the log stored it (the log's clock)")),
        actor=(str, _json_field("JSON: who caused it", Actor)),
        payload=(str, _json_field(
            "JSON: the event's payload"
            + (f"; without its personal fields ({', '.join(PERSONAL_FIELDS[event_type])}), which are in `sealed`"
               if event_type in PERSONAL_FIELDS else ""),
            payload,
        )),
        **({"sealed": (str | None, Field(
            default=None,
            description="v1:base64(nonce | AES-256-GCM ciphertext | tag) of the personal fields as JSON, with the "
            "student's data key, bound to event_id|event_type; absent in entries written before sealing (then "
            "the payload holds them in clear). Once the key is destroyed (StudentForgotten) they read [effacé].",
        ))} if event_type in PERSONAL_FIELDS else {}),
        student_version=(str, Field(description="the student's version this event made (1, 2, ...), across services")),
        prev_hash=(str, Field(description="hash of the previous entry of the same service stream (40 zeros first)")),
        hash=(str, Field(description="sha1 over prev_hash and every field above, as name=len:value lines")),
    )


def asyncapi_document(academie: str = "paris", campaign: str = "{campaign}") -> dict[str, Any]:
    from faststream.redis import RedisBroker, StreamSub
    from faststream.specification import AsyncAPI

    keys = StreamKeys(academie)
    broker = RedisBroker("redis://localhost:6379", description="Le journal de Passpro (Redis Streams, jamais tronqué)")
    streams = {
        "registration": (keys.service(campaign, "registration"), "registration (collège)",
                         "Read by evaluation's interviews view, scoring's projection and registration's own view."),
        "evaluation": (keys.service(campaign, "evaluation"), "evaluation (lycée)",
                       "Read by registration's students view, scoring's projection and evaluation's own view."),
        "scoring": (keys.service(campaign, "scoring"), "the rectorat (`passpro forget`)",
                    "Erasures (RGPD). Read by every view, which then shows the student's personal fields as erased."),
        "rectorat": (keys.rectorat, "scoring (rectorat)",
                     "Campaigns. Every view follows it, and each campaign's streams from its CampaignOpened on."),
    }
    for name, (key, producer, readers) in streams.items():
        for event_type in STREAM_EVENTS[name]:
            broker.publisher(
                stream=StreamSub(key),
                title=f"{key}:{event_type}",
                description=f"Appended by {producer} with append.lua. {readers}",
                schema=entry_model(event_type),
            )
    every_student_event = sorted({e for n in ("registration", "evaluation", "scoring") for e in STREAM_EVENTS[n]})
    for event_type in every_student_event:
        broker.publisher(
            stream=StreamSub(keys.student(campaign, "{ine}")),
            title=f"student:{event_type}",
            description="Every event of one student, from every service, in order: what a decision reads "
            "(the append succeeds only at the version it read) and what an audit replays.",
            schema=entry_model(event_type),
        )
    spec = AsyncAPI(
        broker,
        title="Passpro — journal des événements",
        version="1.0.0",
        description="One atomic Lua script appends each event to its service stream and to the student's "
        "stream, at the student's version, de-duplicated by event_id, extending a hash chain. "
        "Entries are plain fields readable with redis-cli; streams are never trimmed.",
    )
    return spec.to_specification().to_jsonable()
