"""The slots' rights (SPEC §1, §7), every caller of the rights matrix: the lycée's staff and proviseur publish
and close their own lycée's slots; any staff reads the list. A write accepted appends one entry to evaluation's
stream and one to the slot's; a refusal appends nothing anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from matrix import (  # noqa: F401 - world: the module-scoped fixture
    CALLERS, FORMATION, LYCEE, OTHER, READ, ROLE, STAFF, OK, Answer, World, refusal_problems, world,
)
from conftest import CAMPAIGN

SLOT_NOT_FOUND = Answer(404, "slot_not_found")
#                 principal  (other)  referent  (other)  staff  (other)          proviseur  (other)          rectorat
OPEN_RIGHTS =   (ROLE,      ROLE,    ROLE,     ROLE,    OK,    OTHER,           OK,        OTHER,           ROLE)
CLOSE_RIGHTS =  (ROLE,      ROLE,    ROLE,     ROLE,    OK,    SLOT_NOT_FOUND,  OK,        SLOT_NOT_FOUND,  ROLE)
LIST_RIGHTS =   (READ,      READ,    READ,     READ,    READ,  READ,            READ,      READ,            READ)  # fmt: skip


def slot_body() -> dict:
    return {"lycee_uai": LYCEE, "formation_code": FORMATION,
            "starts_at": (datetime.now(UTC) + timedelta(days=12)).replace(microsecond=0).isoformat(),
            "duration_minutes": 30, "capacity": 3, "mode": "presentiel", "place": "Salle 4"}


def _appended(world: World, before: dict) -> dict:
    after = world.log_state()
    return {k: (v, before.get(k)) for k, v in after.items() if before.get(k) != v}


@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, OPEN_RIGHTS)), ids=lambda x: str(getattr(x, "label", x)))
def test_publishing_a_slot(world: World, caller, expected: Answer):
    before = world.log_state()
    response = world.post("evaluation", "/api/slots", slot_body(), caller)
    changed = _appended(world, before)
    if expected.status == 201:
        assert response.status_code == 201, response.text
        slot_key = world.passpro.keys.slot(CAMPAIGN, response.json()["event"]["payload"]["slot_id"])
        evaluation = world.passpro.service_stream("evaluation")
        assert {k: v[0][1] - (v[1][1] if v[1] else 0) for k, v in changed.items() if v[0][0] == "stream"} == {
            evaluation: 1, slot_key: 1}
    else:
        assert (response.status_code, response.json()["error"]) == (expected.status, expected.error), response.text
        assert refusal_problems(response.status_code, response.json()) == []
        assert changed == {}


@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, CLOSE_RIGHTS)), ids=lambda x: str(getattr(x, "label", x)))
def test_closing_a_slot(world: World, caller, expected: Answer):
    slot_id = world.ok("evaluation", "/api/slots", slot_body(), STAFF)["event"]["payload"]["slot_id"]
    before = world.log_state()
    response = world.post("evaluation", f"/api/slots/{slot_id}/close", {}, caller)
    assert (response.status_code, response.json().get("error")) == (expected.status, expected.error), response.text
    changed = _appended(world, before)
    if expected.status == 201:
        streams = {k for k, (now, _) in changed.items() if now[0] == "stream"}
        assert streams == {world.passpro.service_stream("evaluation"), world.passpro.keys.slot(CAMPAIGN, slot_id)}
    else:
        assert changed == {}


@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, LIST_RIGHTS)), ids=lambda x: str(getattr(x, "label", x)))
def test_listing_slots(world: World, caller, expected: Answer):
    written = world.ok("evaluation", "/api/slots", slot_body(), STAFF)
    slot_id = written["event"]["payload"]["slot_id"]
    response = world.get("evaluation", "/api/slots", caller,
                         params={"min_position": written["positions"]["service"], "lycee_uai": LYCEE, "limit": 1000})
    assert response.status_code == expected.status, response.text
    [row] = [s for s in response.json()["items"] if s["slot_id"] == slot_id]
    assert (row["free"], row["taken"], row["capacity"]) == (3, 0, 3)
