"""Forms: a posted form read within the API's body limit, dotted names nested as the API's bodies, and an
API write's answer or refusal turned into what the page shows next to its fields."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from shared.domain.errors import Refusal
from shared.runtime.http.guard import MAX_BODY_BYTES, field_name, french_message


class FormTooLarge(Exception):
    """A posted form over the API's body limit (64 KiB)."""


@dataclass
class Submitted:
    """What became of a form: the write's answer, or the refusal to show next to the fields."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> French message
    message: str | None = None  # a refusal that names no field

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)

    @property
    def reason(self) -> str:
        """The refusal in one sentence, for a page that cannot show the form again (403, 404)."""
        return self.message or next(iter(self.errors.values()), "Action refusée.")

    @property
    def position(self) -> str | None:
        return (self.body.get("positions") or {}).get("service")


def nest(form: dict[str, str]) -> dict[str, Any]:
    """Dotted form names (`referent.email`) as the nested body the API takes."""
    body: dict[str, Any] = {}
    for name, value in form.items():
        parts = name.split(".")
        target = body
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return body


def filled(form: dict[str, str], *names: str) -> dict[str, str]:
    """The named fields that hold something (all of them without names): a blank field is a missing one,
    so the API's validation says « Champ obligatoire. » rather than « Texte vide. »."""
    return {k: v for k, v in form.items() if (not names or k in names) and v.strip()}


async def submit(
    call: Callable[[], Awaitable[Response]],
    aliases: dict[str, str] | None = None,
    rule_fields: dict[str, str] | None = None,
) -> Submitted:
    """Run an API write (validation included) and turn its answer or refusal into a `Submitted`.

    `aliases` maps the API's field names to the form's (a select that fills two fields);
    `rule_fields` names the field a rule's refusal is about, to show it there.
    """
    aliases, rule_fields = aliases or {}, rule_fields or {}
    try:
        response = await call()
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = field_name(tuple(error["loc"]))
            blank = error["type"] in ("missing", "string_too_short")
            errors.setdefault(aliases.get(name, name), "Champ obligatoire." if blank else french_message(error))
        return Submitted(422, errors=errors)
    except Refusal as exc:
        body = exc.body()
        errors = {aliases.get(f["field"], f["field"]): f["message"] for f in body.get("fields", [])}
        if "field" in body:
            errors[aliases.get(str(body["field"]), str(body["field"]))] = exc.message
        elif exc.code in rule_fields and not errors:
            errors[rule_fields[exc.code]] = exc.message
        return Submitted(exc.status, errors=errors, message=None if errors else exc.message)
    return Submitted(response.status_code, body=json.loads(response.body))


async def read_form(request: Request) -> dict[str, str]:
    """The posted form, bounded like an API body (its CSRF token is checked by the caller)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise FormTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FormTooLarge()
        chunks.append(chunk)
    return dict(parse_qsl(b"".join(chunks).decode("utf-8", errors="replace"), keep_blank_values=True))
