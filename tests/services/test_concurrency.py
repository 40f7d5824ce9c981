"""Concurrency and retries (SPEC §3.1 "Consistency", §4 "one atomic append", §5 idempotency).

The services run as real HTTP servers (uvicorn, each in a thread with its own event loop)
sharing one Redis and one académie, and the requests really race: twenty registrations
of one student, a collège avis against an interview held through the other service,
and retries of one request with one `event_id`. The outcome is read back from the
student's stream, the history every decision is taken on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from conftest import CAMPAIGN, Passpro
from matrix import (
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    college_avis_body,
    held_body,
    lycee_avis_body,
    register_body,
    schedule_body,
)
from shared.contracts.streams import LoggedEvent, StreamKeys
from shared.runtime.log.client import EventLog

RACES = 30  # rule 5: collège avis against interview held, each with a fresh student
RETRY_ROUNDS = 5  # races of one event_id, each with a fresh student


# --- real servers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run `app` under uvicorn on a free port of 127.0.0.1, in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without it, every answer on a kept-alive connection waited ~40 ms here (Nagle against delayed ACKs).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port, and we keep it: no race with other tests
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", loop="asyncio", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 60  # a start-up bound, not a speed assertion
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _create_app(passpro: Passpro, service: str):
    if service == "registration":
        from services.registration.app import create_app
    else:
        from services.evaluation.app import create_app
    passpro.migrate(service)
    return create_app(passpro.settings(service))


@dataclasses.dataclass(frozen=True)
class Servers:
    registration: str
    evaluation: str


@pytest.fixture
def servers(passpro: Passpro) -> Iterator[Servers]:
    with serving(_create_app(passpro, "registration")) as registration, serving(_create_app(passpro, "evaluation")) as evaluation:
        yield Servers(registration, evaluation)


@pytest.fixture
def second_registration(passpro: Passpro) -> Iterator[str]:
    """Another registration server on the same log, with its own database: two processes' worth of deciders."""
    data_dir = passpro.data_dir / "second-registration"
    data_dir.mkdir()
    with serving(_create_app(
        dataclasses.replace(passpro, data_dir=data_dir, keystore_url=passpro.keystore_database_url()), "registration"
    )) as url:
        yield url


# --- requests ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Post:
    url: str
    body: dict
    headers: dict


class Client:
    """One event loop, one HTTP client and one log reader for a whole test (each costs to build)."""

    def __init__(self, passpro: Passpro) -> None:
        self.runner = asyncio.Runner()
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=40))
        self.redis = Redis.from_url(passpro.redis_url)
        self.log = EventLog(self.redis, StreamKeys(passpro.academie), passpro.settings("registration").open_keystore())

    def race(self, *posts: Post) -> list[httpx.Response]:
        """Send every request at once, each on its own connection, and wait for all the answers."""

        async def send() -> list[httpx.Response]:
            return list(await asyncio.gather(*(self.http.post(p.url, json=p.body, headers=p.headers) for p in posts)))

        return self.runner.run(send())

    def post(self, url: str, body: dict, headers: dict) -> httpx.Response:
        (response,) = self.race(Post(url, body, headers))
        return response

    def history(self, ine: str) -> list[LoggedEvent]:
        """The student's stream, as a service reads it to decide."""
        return self.runner.run(self.log.read_student(CAMPAIGN, ine))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.run(self.redis.aclose())
        self.runner.close()


@pytest.fixture
def client(passpro: Passpro) -> Iterator[Client]:
    client = Client(passpro)
    yield client
    client.close()


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def rule_5_violations(events: list[LoggedEvent]) -> list[str]:
    """What in a student's history breaks rule 5: an avis after a held interview, or a held
    interview whose `college_avis_present` does not say whether an avis came before it."""
    problems, avis_seen, held_seen = [], False, False
    for logged in events:
        event = logged.event
        if event.event_type == "CollegeAvisGiven":
            if held_seen:
                problems.append(f"collège avis at {logged.entry_id} after a held interview")
            avis_seen = True
        elif event.event_type == "InterviewHeld":
            if event.payload.college_avis_present != avis_seen:
                problems.append(f"held at {logged.entry_id} says college_avis_present={event.payload.college_avis_present}")
            held_seen = True
    return problems


class Journey:
    """Fresh students walked through the collège's steps, over HTTP, before a race."""

    def __init__(self, passpro: Passpro, servers: Servers, client: Client) -> None:
        self.passpro, self.servers, self.client = passpro, servers, client
        self.numbers = iter(range(1, 10_000))

    def principal(self) -> dict:
        return self.passpro.auth("principal", "0752536Z")

    def staff(self) -> dict:
        return self.passpro.auth("lycee_staff", "0752845K")

    def proviseur(self) -> dict:
        return self.passpro.auth("proviseur", "0752845K")

    def student(self, *, avis: bool = False, held: bool = False) -> str:
        """A new student of COLLEGE with an interview scheduled at LYCEE (and held, if asked)."""
        ine = f"{next(self.numbers):09d}RC"
        reg, ev = self.servers.registration, self.servers.evaluation
        created(self.client.post(f"{reg}/api/students", register_body(ine), self.principal()))
        if avis:
            created(self.client.post(f"{reg}/api/students/{ine}/college-avis", college_avis_body(avis="reserve"), self.principal()))
        created(self.client.post(f"{reg}/api/students/{ine}/interviews", schedule_body(), self.principal()))
        if held:
            created(self.client.post(f"{ev}/api/students/{ine}/interviews/held", held_body(), self.staff()))
        return ine


@pytest.fixture
def journey(passpro: Passpro, servers: Servers, client: Client) -> Journey:
    return Journey(passpro, servers, client)


# --- one student, twenty registrations ------------------------------------------------------------------------


def test_twenty_simultaneous_registrations_of_one_student_store_exactly_one_event(passpro, servers, second_registration, client):
    principal = passpro.auth("principal", "0752536Z")
    for attempt in range(3):
        ine = f"{attempt:09d}TW"
        posts = [
            Post(
                f"{(servers.registration, second_registration)[n % 2]}/api/students",
                {**register_body(ine), "first_name": f"Prénom {n}"},  # tells the winner apart
                principal,
            )
            for n in range(20)
        ]
        responses = client.race(*posts)

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: 19}, [r.text for r in responses]
        assert {r.json()["error"] for r in responses if r.status_code == 409} == {"already_registered"}
        (winner,) = [r.json()["event"] for r in responses if r.status_code == 201]
        (stored,) = client.history(ine)
        assert (str(stored.event.event_id), stored.event.payload.first_name) == (winner["event_id"], winner["payload"]["first_name"])
        assert passpro.xlen(passpro.service_stream("registration")) == attempt + 1


# --- rule 5 across the two services ----------------------------------------------------------------------------


def _avis_against_held(journey: Journey, ine: str) -> tuple[httpx.Response, httpx.Response]:
    avis, held = journey.client.race(
        Post(f"{journey.servers.registration}/api/students/{ine}/college-avis", college_avis_body(), journey.principal()),
        Post(f"{journey.servers.evaluation}/api/students/{ine}/interviews/held", held_body(), journey.staff()),
    )
    return avis, held


def test_a_college_avis_racing_an_interview_held_ends_in_a_history_that_obeys_rule_5(journey):
    orders: Counter = Counter()
    for race_number in range(RACES):
        ine = journey.student()
        avis, held = _avis_against_held(journey, ine)

        events = journey.client.history(ine)
        types = [logged.event.event_type for logged in events]
        held_event = created(held)["event"]
        if avis.status_code == 201:
            orders["avis first"] += 1
            expected = (["StudentRegistered", "InterviewScheduled", "CollegeAvisGiven", "InterviewHeld"], True)
        else:
            orders["held first"] += 1
            assert (avis.status_code, avis.json()["error"]) == (409, "college_avis_after_interview"), avis.text
            expected = (["StudentRegistered", "InterviewScheduled", "InterviewHeld"], False)
        assert (types, held_event["payload"]["college_avis_present"], rule_5_violations(events)) == (*expected, []), (
            f"race {race_number}"
        )
        assert str(events[-1].event.event_id) == held_event["event_id"]
    print(f"rule 5 races: {dict(orders)}")


def test_a_correction_of_the_college_avis_racing_an_interview_held_obeys_rule_5(journey):
    """The avis may be corrected until the first interview is held, never after (rule 5)."""
    orders: Counter = Counter()
    for race_number in range(RACES // 3):
        ine = journey.student(avis=True)
        avis, held = _avis_against_held(journey, ine)

        events = journey.client.history(ine)
        types = [logged.event.event_type for logged in events]
        assert created(held)["event"]["payload"]["college_avis_present"] is True
        if avis.status_code == 201:
            orders["correction first"] += 1
            expected = ["StudentRegistered", "CollegeAvisGiven", "InterviewScheduled", "CollegeAvisGiven", "InterviewHeld"]
        else:
            orders["held first"] += 1
            assert (avis.status_code, avis.json()["error"]) == (409, "college_avis_after_interview"), avis.text
            expected = ["StudentRegistered", "CollegeAvisGiven", "InterviewScheduled", "InterviewHeld"]
        assert (types, rule_5_violations(events)) == (expected, []), f"race {race_number}"
    print(f"correction races: {dict(orders)}")


def test_two_interviews_held_at_once_for_two_voeux_are_both_stored_and_the_avis_after_them_is_refused(passpro, journey):
    """Two lycées' writes racing on one student: both stored, the second decided on the first."""
    ine = journey.student()
    reg, ev = journey.servers.registration, journey.servers.evaluation
    created(journey.client.post(f"{reg}/api/students/{ine}/interviews", schedule_body(OTHER_LYCEE, OTHER_LYCEE_FORMATION), journey.principal()))
    first, second = journey.client.race(
        Post(f"{ev}/api/students/{ine}/interviews/held", held_body(), journey.staff()),
        Post(f"{ev}/api/students/{ine}/interviews/held", held_body(OTHER_LYCEE, OTHER_LYCEE_FORMATION), passpro.auth("lycee_staff", OTHER_LYCEE)),
    )
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    events = journey.client.history(ine)
    assert Counter(e.event.event_type for e in events) == {"StudentRegistered": 1, "InterviewScheduled": 2, "InterviewHeld": 2}
    assert [e.student_version for e in events] == [1, 2, 3, 4, 5]
    avis = journey.client.post(f"{reg}/api/students/{ine}/college-avis", college_avis_body(), journey.principal())
    assert (avis.status_code, avis.json()["error"]) == (409, "college_avis_after_interview")


# --- retries: one event_id ----------------------------------------------------------------------------------------


def test_a_retried_request_answers_200_with_the_original_event_and_stores_nothing(passpro, journey):
    ine = journey.student(held=True)
    event_id = str(uuid.uuid4())
    url = f"{journey.servers.evaluation}/api/students/{ine}/lycee-avis"
    first = created(journey.client.post(url, {**lycee_avis_body(), "event_id": event_id}, journey.proviseur()))
    # Something else happens to the student before the retry arrives.
    created(journey.client.post(url, lycee_avis_body(avis="reserve"), journey.proviseur()))
    before = passpro.snapshot()

    again = journey.client.post(url, {**lycee_avis_body(), "event_id": event_id}, journey.proviseur())

    assert (again.status_code, again.json()) == (200, first)
    assert passpro.snapshot() == before


def test_the_same_event_id_with_another_body_is_refused_with_409(passpro, journey):
    ine = journey.student(held=True)
    event_id = str(uuid.uuid4())
    url = f"{journey.servers.evaluation}/api/students/{ine}/lycee-avis"
    created(journey.client.post(url, {**lycee_avis_body(), "event_id": event_id}, journey.proviseur()))
    before = passpro.snapshot()

    other = journey.client.post(url, {**lycee_avis_body(avis="reserve"), "event_id": event_id}, journey.proviseur())

    assert (other.status_code, other.json()["error"]) == (409, "event_id_reused")
    assert passpro.snapshot() == before


def _one_request(journey: Journey, write: str, event_id: str) -> tuple[str, Post]:
    """A student ready for `write`, and that write carrying `event_id`."""
    reg, ev = journey.servers.registration, journey.servers.evaluation
    if write == "register":
        ine = f"{next(journey.numbers):09d}RT"
        return ine, Post(f"{reg}/api/students", {**register_body(ine), "event_id": event_id}, journey.principal())
    if write == "held":
        ine = journey.student()
        return ine, Post(f"{ev}/api/students/{ine}/interviews/held", {**held_body(), "event_id": event_id}, journey.staff())
    ine = journey.student(held=True)
    return ine, Post(f"{ev}/api/students/{ine}/lycee-avis", {**lycee_avis_body(), "event_id": event_id}, journey.proviseur())


@pytest.mark.parametrize("write", ["register", "held", "lycee-avis"])
def test_ten_simultaneous_copies_of_one_request_store_one_event_and_all_answer_it(journey, write):
    """A client that retries before the first answer came back (a timeout, a double click) gets the original answer."""
    for round_number in range(RETRY_ROUNDS):
        ine, post = _one_request(journey, write, str(uuid.uuid4()))
        before = len(journey.client.history(ine))

        responses = journey.client.race(*[post] * 10)

        statuses = Counter(r.status_code for r in responses)
        assert (statuses, len({r.text for r in responses}), len(journey.client.history(ine)) - before) == (
            {201: 1, 200: 9}, 1, 1,  # every copy answers the one event with its positions; one event stored
        ), (round_number, [r.text for r in responses if r.status_code != 200])


@pytest.mark.parametrize("write", ["register", "held", "lycee-avis"])
def test_two_simultaneous_requests_with_one_event_id_and_different_bodies_store_one(journey, write):
    for round_number in range(RETRY_ROUNDS):
        ine, first = _one_request(journey, write, str(uuid.uuid4()))
        other = dataclasses.replace(first, body={**first.body, **_one_request_body_change(write)})
        before = len(journey.client.history(ine))

        responses = journey.client.race(first, other)

        outcomes = sorted((r.status_code, r.json().get("error")) for r in responses)
        assert (outcomes, len(journey.client.history(ine)) - before) == ([(201, None), (409, "event_id_reused")], 1), (
            round_number, [r.text for r in responses],
        )


def _one_request_body_change(write: str) -> dict:
    if write == "register":
        return {"first_name": "Léo"}
    if write == "held":
        return {"report": {**held_body()["report"], "advice": "Revoir le projet."}}
    return {"avis": "reserve"}
