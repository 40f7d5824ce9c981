"""SPEC §7, the campaign's calendar over HTTP, in process: CampaignCalendarSet by the rectorat (a date left out
keeps its value, null removes it, dates in order), then every phase enforced with 409 `phase_closed` naming
the date in French — a registration after registrations_until; an interview scheduled, booked, moved or held
outside [interviews_from, interviews_until]; a lycée avis after lycee_avis_until — and everything readable
after closes_at. The services' clock is driven by the test; every refusal stores nothing."""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import CAMPAIGN, Passpro
from matrix import COLLEGE, FORMATION, LYCEE, held_body, lycee_avis_body, register_body
from shared.contracts.events import event_from_fields

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class World:
    def __init__(self, passpro: Passpro, registration: TestClient, evaluation: TestClient, scoring: TestClient):
        self.passpro, self.registration, self.evaluation, self.scoring = passpro, registration, evaluation, scoring
        self.rectorat = passpro.auth("rectorat", None)
        self.principal = passpro.auth("principal", COLLEGE)
        self.referent = passpro.auth("referent", COLLEGE)
        self.staff = passpro.auth("lycee_staff", LYCEE)
        self.proviseur = passpro.auth("proviseur", LYCEE)

    def at(self, moment: datetime) -> None:
        """Every service's clock at `moment` (the commands' `now`, the pages' day)."""
        for client in (self.registration, self.evaluation, self.scoring):
            client.app.state.runtime.clock = lambda: moment

    def set_calendar(self, **dates):
        body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dates.items()}
        return self.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json=body, headers=self.rectorat)

    def calendar(self, **dates) -> dict:
        response = self.set_calendar(**dates)
        assert response.status_code == 201, response.text
        return response.json()["event"]["payload"]

    def rectorat_stream(self) -> list:
        return [
            event_from_fields({_text(k): _text(v) for k, v in f.items()})
            for _, f in self.passpro.redis.xrange(self.passpro.keys.rectorat)
        ]

    def refused(self, send, status: int, code: str) -> dict:
        before = self.passpro.snapshot()
        response = send()
        assert response.status_code == status, response.text
        assert response.json()["error"] == code, response.json()
        assert self.passpro.snapshot() == before
        return response.json()

    def register(self, ine: str):
        return self.registration.post("/api/students", json=register_body(ine), headers=self.principal)

    def schedule(self, ine: str, at: datetime):
        body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": at.isoformat(), "mode": "presentiel"}
        return self.registration.post(f"/api/students/{ine}/interviews", json=body, headers=self.referent)

    def reschedule(self, ine: str, at: datetime):
        body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": at.isoformat(), "mode": "presentiel"}
        return self.registration.post(f"/api/students/{ine}/interviews/reschedule", json=body, headers=self.referent)

    def hold(self, ine: str, at: datetime):
        return self.evaluation.post(
            f"/api/students/{ine}/interviews/held", json={**held_body(), "held_at": at.isoformat()}, headers=self.staff
        )

    def lycee_avis(self, ine: str):
        return self.evaluation.post(f"/api/students/{ine}/lycee-avis", json=lycee_avis_body(), headers=self.proviseur)

    def ok(self, response) -> dict:
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def world(passpro: Passpro, registration: TestClient, evaluation: TestClient, scoring: TestClient) -> World:
    w = World(passpro, registration, evaluation, scoring)
    w.at(NOW)
    return w


# --- setting the calendar -----------------------------------------------------------------------------------


def test_the_calendar_goes_to_the_rectorat_stream_and_a_date_left_out_keeps_its_value(world: World):
    first = world.calendar(registrations_until=NOW + 10 * DAY, interviews_from=NOW + 20 * DAY)
    assert first["registrations_until"] and first["interviews_until"] is None
    second = world.calendar(interviews_until=NOW + 40 * DAY)
    assert datetime.fromisoformat(second["registrations_until"]) == NOW + 10 * DAY  # kept
    assert datetime.fromisoformat(second["interviews_from"]) == NOW + 20 * DAY
    assert datetime.fromisoformat(second["interviews_until"]) == NOW + 40 * DAY
    third = world.calendar(registrations_until=None)  # null removes it
    assert third["registrations_until"] is None and third["interviews_from"] is not None
    events = [e for e in world.rectorat_stream() if e.event_type == "CampaignCalendarSet"]
    assert len(events) == 3 and all(e.student_ine is None and e.campaign == CAMPAIGN for e in events)


@pytest.mark.parametrize("role, uai", [("principal", COLLEGE), ("referent", COLLEGE), ("lycee_staff", LYCEE), ("proviseur", LYCEE)])
def test_only_the_rectorat_sets_the_calendar(world: World, role: str, uai: str):
    body = {"interviews_from": (NOW + DAY).isoformat()}
    world.refused(
        lambda: world.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json=body, headers=world.passpro.auth(role, uai)),
        403, "role_forbidden",
    )


def test_dates_out_of_order_are_refused_with_the_field_named(world: World):
    answer = world.refused(
        lambda: world.set_calendar(interviews_from=NOW + 20 * DAY, interviews_until=NOW + 10 * DAY), 422, "calendar_order"
    )
    assert answer["fields"][0]["field"] == "interviews_until"
    world.calendar(interviews_from=NOW + 20 * DAY)
    # Against a date kept from the calendar in force (the interviews' start): a rule on the campaign's state, 409.
    answer = world.refused(lambda: world.set_calendar(lycee_avis_until=NOW + 5 * DAY), 409, "calendar_order")
    assert "le début des entretiens" in answer["message"]


def test_a_campaign_not_opened_has_no_calendar_and_a_closing_must_be_in_the_future(world: World):
    world.refused(
        lambda: world.scoring.post(f"/api/campaigns/{YEAR + 1}/calendar", json={"interviews_from": (NOW + DAY).isoformat()},
                                   headers=world.rectorat),
        409, "campaign_not_open",
    )
    world.refused(lambda: world.set_calendar(closes_at=NOW - DAY), 409, "closes_in_past")


def test_bad_input_is_422_and_stores_nothing(world: World):
    for body in ({"interviews_from": "demain"}, {"interviews_from": f"{YEAR}-05-01T10:00:00"}, {"other": 1},
                 {"interviews_from": 12}):
        world.refused(lambda: world.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json=body, headers=world.rectorat),
                      422, "invalid_input")
    world.refused(lambda: world.scoring.post("/api/campaigns/20x7/calendar", json={}, headers=world.rectorat),
                  422, "invalid_input")


def test_the_same_request_twice_stores_one_event(world: World):
    body = {"event_id": "3f1c1d1e-0000-4000-8000-000000000001", "interviews_from": (NOW + DAY).isoformat()}
    first = world.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json=body, headers=world.rectorat)
    again = world.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json=body, headers=world.rectorat)
    assert (first.status_code, again.status_code) == (201, 200)
    assert len([e for e in world.rectorat_stream() if e.event_type == "CampaignCalendarSet"]) == 1


# --- the phases ---------------------------------------------------------------------------------------------


def _french_date(answer: dict, words: str) -> None:
    assert answer["error"] == "phase_closed"
    assert words in answer["message"], answer["message"]
    assert "T" not in answer["message"].split("le ", 1)[1], answer["message"]  # no ISO text: the date in French


def test_a_registration_after_registrations_until_is_refused_naming_the_date(world: World):
    until = datetime(YEAR, 3, 15, 17, 0, tzinfo=UTC)
    world.at(datetime(YEAR, 3, 1, 9, 0, tzinfo=UTC))
    world.calendar(registrations_until=until)
    world.ok(world.register("000000001CA"))
    world.at(until + timedelta(minutes=1))
    answer = world.refused(lambda: world.register("000000002CA"), 409, "phase_closed")
    _french_date(answer, f"15 mars {YEAR} à 18\u00a0h\u00a000")  # Paris time
    assert answer["phase"] == "registrations" and datetime.fromisoformat(answer["date"]) == until


def test_an_interview_scheduled_or_moved_outside_the_interviews_is_refused(world: World):
    start, end = NOW + 10 * DAY, NOW + 30 * DAY
    world.ok(world.register("000000003CA"))
    world.calendar(interviews_from=start, interviews_until=end)
    answer = world.refused(lambda: world.schedule("000000003CA", start - DAY), 409, "phase_closed")
    assert answer["phase"] == "interviews_not_started"
    answer = world.refused(lambda: world.schedule("000000003CA", end + DAY), 409, "phase_closed")
    assert answer["phase"] == "interviews_over"
    world.ok(world.schedule("000000003CA", start + DAY))
    world.refused(lambda: world.reschedule("000000003CA", end + timedelta(hours=1)), 409, "phase_closed")
    world.refused(lambda: world.reschedule("000000003CA", start - timedelta(hours=1)), 409, "phase_closed")
    world.ok(world.reschedule("000000003CA", end - DAY))


def test_a_slot_outside_the_interviews_cannot_be_booked(world: World):
    staff = world.staff
    starts_at = NOW + 40 * DAY
    slot = {"lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": starts_at.isoformat(), "duration_minutes": 30,
            "capacity": 2, "mode": "presentiel", "place": "Salle B12"}
    opened = world.evaluation.post("/api/slots", json=slot, headers=staff)
    assert opened.status_code == 201, opened.text
    slot_id = opened.json()["event"]["payload"]["slot_id"]
    world.ok(world.register("000000004CA"))
    world.calendar(interviews_from=NOW + DAY, interviews_until=NOW + 30 * DAY)
    book = lambda: world.registration.post(  # noqa: E731
        "/api/students/000000004CA/interviews", json={"slot_id": slot_id}, headers=world.referent
    )
    world.refused(book, 409, "phase_closed")
    world.calendar(interviews_until=NOW + 50 * DAY)  # the rectorat moves the end: the same booking now passes
    world.ok(book())


def test_an_interview_held_outside_the_interviews_is_refused(world: World):
    world.ok(world.register("000000005CA"))
    world.ok(world.schedule("000000005CA", NOW + 2 * DAY))
    world.calendar(interviews_from=NOW + DAY, interviews_until=NOW + 10 * DAY)
    world.at(NOW + 3 * DAY)
    answer = world.refused(lambda: world.hold("000000005CA", NOW + timedelta(hours=12)), 409, "phase_closed")
    assert answer["phase"] == "interviews_not_started"
    world.ok(world.hold("000000005CA", NOW + 2 * DAY))


def test_a_lycee_avis_after_lycee_avis_until_is_refused(world: World):
    for ine in ("000000006CA", "000000007CA"):
        world.ok(world.register(ine))
        world.ok(world.schedule(ine, NOW + DAY))
    world.at(NOW + 2 * DAY)
    for ine in ("000000006CA", "000000007CA"):
        world.ok(world.hold(ine, NOW + DAY))
    world.calendar(interviews_from=NOW, interviews_until=NOW + 3 * DAY, lycee_avis_until=NOW + 5 * DAY)
    world.ok(world.lycee_avis("000000006CA"))
    world.at(NOW + 6 * DAY)
    answer = world.refused(lambda: world.lycee_avis("000000007CA"), 409, "phase_closed")
    assert answer["phase"] == "lycee_avis" and "clos depuis le" in answer["message"]


def test_everything_stays_readable_after_closes_at(world: World):
    world.ok(world.register("000000008CA"))
    world.calendar(closes_at=NOW + DAY)
    world.at(NOW + 2 * DAY)
    world.refused(lambda: world.register("000000009CA"), 409, "campaign_closed")
    world.refused(lambda: world.set_calendar(interviews_from=NOW + 3 * DAY), 409, "campaign_closed")
    students = world.registration.get("/api/students", headers=world.principal)
    assert students.status_code == 200, students.text
    assert world.scoring.get("/api/reports/summary", headers=world.rectorat).status_code == 200
    assert world.evaluation.get("/api/interviews", params={"lycee_uai": LYCEE}, headers=world.staff).status_code == 200


def test_every_staff_role_reads_the_calendar_with_the_phase_and_the_next_date(world: World):
    world.calendar(registrations_until=NOW + 10 * DAY, interviews_from=NOW + 20 * DAY, interviews_until=NOW + 40 * DAY)
    for role, uai in (("principal", COLLEGE), ("referent", COLLEGE), ("lycee_staff", LYCEE), ("proviseur", LYCEE), ("rectorat", None)):
        answer = world.scoring.get(f"/api/campaigns/{CAMPAIGN}/calendar", headers=world.passpro.auth(role, uai))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["phase"] == "inscriptions" and body["next"]["label"] == "fin des inscriptions"
        assert datetime.fromisoformat(body["next"]["date"]) == NOW + 10 * DAY
    world.at(NOW + 25 * DAY)
    body = world.scoring.get(f"/api/campaigns/{CAMPAIGN}/calendar", headers=world.rectorat).json()
    assert body["phase"] == "entretiens" and body["next"]["label"] == "fin des entretiens"
    assert world.scoring.get(f"/api/campaigns/{YEAR + 1}/calendar", headers=world.rectorat).json()["error"] == "campaign_not_found"


def test_every_views_campaign_row_takes_the_latest_closing(world: World):
    import importlib

    from sqlalchemy import select

    world.calendar(closes_at=NOW + 90 * DAY)
    position = world.scoring.post(f"/api/campaigns/{CAMPAIGN}/calendar", json={"closes_at": (NOW + 120 * DAY).isoformat()},
                                  headers=world.rectorat).json()["positions"]["service"]
    reads = ((world.registration, "services.registration.views", "/api/students", world.principal),
             (world.evaluation, "services.evaluation.views", "/api/interviews", world.staff),
             (world.scoring, "services.scoring.views", "/api/reports/summary", world.rectorat))
    for client, views, path, headers in reads:
        assert client.get(path, params={"min_position": position}, headers=headers).status_code == 200  # caught up
        table = importlib.import_module(views).campaigns
        with client.app.state.runtime.engine.connect() as conn:
            closes_at = conn.execute(select(table.c.closes_at).where(table.c.campaign == CAMPAIGN)).scalar_one()
        assert datetime.fromisoformat(closes_at) == NOW + 120 * DAY, views
