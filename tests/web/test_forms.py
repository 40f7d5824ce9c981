"""Forms: nested names, blank fields left out, and an API write's answer or refusal as the page shows it."""

import json

import pytest
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.domain.errors import Forbidden, InvalidInput
from shared.web.forms import Submitted, filled, nest, submit


def test_dotted_names_nest_as_the_api_body() -> None:
    assert nest({"referent.email": "a@b.fr", "referent.name": "A", "ine": "1"}) == {
        "referent": {"email": "a@b.fr", "name": "A"}, "ine": "1",
    }


def test_filled_keeps_the_named_fields_that_hold_something() -> None:
    form = {"a": "x", "b": "  ", "c": "y"}
    assert filled(form) == {"a": "x", "c": "y"}
    assert filled(form, "a", "b") == {"a": "x"}


class Body(BaseModel):
    name: str
    count: int


async def test_a_validation_error_names_each_field_in_french() -> None:
    async def call():
        Body.model_validate({"count": "beaucoup"})

    done = await submit(call, aliases={"name": "nom"})
    assert done.status == 422 and not done.ok
    assert done.errors["nom"] == "Champ obligatoire."
    assert done.errors["count"] and done.errors["count"] != "Champ obligatoire."


async def test_a_refusal_shows_next_to_its_field_or_alone() -> None:
    async def wrong_field():
        raise InvalidInput("unknown_uai", "Établissement inconnu.", field="lycee_uai")

    done = await submit(wrong_field, aliases={"lycee_uai": "voeu"})
    assert done.errors == {"voeu": "Établissement inconnu."} and done.message is None

    async def forbidden():
        raise Forbidden("role_forbidden", "Action réservée au proviseur.")

    done = await submit(forbidden)
    assert done.status == 403 and done.errors == {} and done.reason == "Action réservée au proviseur."

    done = await submit(forbidden, rule_fields={"role_forbidden": "avis"})
    assert done.errors == {"avis": "Action réservée au proviseur."}


async def test_an_answer_keeps_its_body_and_position() -> None:
    body = {"event": {"event_id": "e"}, "positions": {"service": "12-0"}}

    async def call():
        return JSONResponse(body, status_code=201)

    done = await submit(call)
    assert done.ok and done.position == "12-0" and done.body == json.loads(json.dumps(body))
    assert Submitted(200).position is None


@pytest.mark.parametrize("size", [64 * 1024 + 1])
def test_a_form_over_the_limit_is_refused(size: int) -> None:
    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient

    from shared.web.forms import FormTooLarge, read_form

    app = FastAPI()
    seen = []

    @app.post("/f")
    async def f(request: Request):
        try:
            seen.append(await read_form(request))
        except FormTooLarge:
            return JSONResponse({"too_large": True}, status_code=413)
        return JSONResponse({})

    with TestClient(app) as client:
        assert client.post("/f", content=b"a=" + b"x" * size).status_code == 413
        assert seen == []
        assert client.post("/f", data={"a": "é", "b": ""}).status_code == 200
        assert seen == [{"a": "é", "b": ""}]
