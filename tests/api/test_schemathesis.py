"""An independent schema-driven tester, Schemathesis, against each service's OpenAPI document (SPEC §5.1).

Every phase (the documents' examples, coverage, fuzzing, and the stateful phase that follows the
documents' links from a write to the next), every check (server errors, status codes, content types,
response schemas and headers, positive data accepted, negative data refused, authentication not
ignored, methods not offered): zero failures. Nothing is switched off.

Each request carries the bearer token of one of the roles (mostly those the service serves, at times
one it refuses). What the documents cannot say is supplied as a client would know it, by one hook: a
UAI's check letter and whether it is in the référentiel, which lycée offers which formation, the
caller's own establishment, which students and log positions exist, and that an interview is recorded
once held. It only touches data meant to be valid (positive cases); negative cases go out as
Schemathesis made them.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.python import asgi

from api_world import CALLERS, CAMPAIGN, COLLEGE, LYCEE, ApiWorld
from shared.contracts.identifiers import _INE_PATTERN, _UAI_PATTERN

_POSITION = re.compile(r"^[0-9]+-[0-9]+$")
# A linear order that every pair of shared.domain.calendar.ORDER respects.
CALENDAR_IN_ORDER = ("registrations_until", "interviews_from", "interviews_until", "lycee_avis_until", "closes_at")
MAX_EXAMPLES = 12  # per operation and phase: about 2,000 test cases, under two minutes for the three services


def realistic(world: ApiWorld, service: str):
    """The map_case hook: valid identifiers that exist, for data Schemathesis generated as valid."""
    rng = random.Random()
    students = world.ines["lycee" if service == "evaluation" else "college"]
    own_voeux = [(uai, code) for uai, code in world.voeux if uai == LYCEE]

    def uai(value: object, choices: list[str]) -> object:
        return rng.choice(choices) if isinstance(value, str) and _UAI_PATTERN.match(value) else value

    def map_case(context, case):
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        if isinstance(case.path_parameters, dict) and "ine" in case.path_parameters and rng.random() < 0.8:
            if _INE_PATTERN.match(str(case.path_parameters["ine"])):
                case.path_parameters["ine"] = rng.choice(students)
        query = case.query if isinstance(case.query, dict) else {}
        if "campaign" in query and rng.random() < 0.8:
            query["campaign"] = CAMPAIGN
        if "college_uai" in query:
            query["college_uai"] = uai(query["college_uai"], world.colleges)
        if "lycee_uai" in query:
            query["lycee_uai"] = uai(query["lycee_uai"], world.lycees)
        if "formation_code" in query and isinstance(query["formation_code"], str):
            query["formation_code"] = rng.choice(world.voeux)[1]
        if isinstance(query.get("as_of"), str) and _POSITION.match(query["as_of"]):
            query["as_of"] = rng.choice(world.positions)  # a position the log holds
        body = case.body
        if isinstance(body, dict):
            if "college_uai" in body:
                body["college_uai"] = uai(body["college_uai"], [COLLEGE])
            if "lycee_uai" in body and "formation_code" in body:
                voeux = own_voeux if service == "evaluation" else world.voeux
                if isinstance(body["lycee_uai"], str) and isinstance(body["formation_code"], str):
                    body["lycee_uai"], body["formation_code"] = rng.choice(voeux)
            elif "lycee_uai" in body:  # a booking naming its slot may name its lycée alone (SPEC §7)
                body["lycee_uai"] = uai(body["lycee_uai"], world.lycees)
            if "campaign" in body and service == "registration":
                body["campaign"] = CAMPAIGN
            if "held_at" in body:  # an interview is recorded once held, never ahead
                body["held_at"] = (datetime.now(UTC) - timedelta(hours=rng.randint(1, 400))).isoformat()
            if "scheduled_at" in body:
                body["scheduled_at"] = (datetime.now(UTC) + timedelta(hours=rng.randint(-200, 400))).isoformat()
            in_order(body)
        return case

    return map_case


def in_order(body: dict) -> None:
    """A calendar's dates put in an order its rules accept (ORDER, which no schema can say); others untouched."""
    present = [name for name in CALENDAR_IN_ORDER if isinstance(body.get(name), str)]
    try:
        dates = sorted((datetime.fromisoformat(body[name]), body[name]) for name in present)
    except (ValueError, TypeError):  # unparsable, or naive beside aware: left as generated
        return
    for name, (_, text) in zip(present, dates):
        body[name] = text


def tokens(world: ApiWorld, service: str):
    """An auth provider: each request signed by one of the roles, mostly those the service serves."""
    rng = random.Random()
    callers = [(world.token(role, uai), weight) for role, uai, weight in CALLERS[service]]

    class Tokens:
        def get(self, case, context) -> str:
            return rng.choices([t for t, _ in callers], [w for _, w in callers])[0]

        def set(self, case, token: str, context) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    return Tokens


def run_schemathesis(world: ApiWorld, service: str) -> tuple[int, Counter, list[str]]:
    """(operations, test cases by phase, failures) of one full run against one service's document."""
    config = schemathesis.Config.from_dict({
        "checks": {"enabled": True},
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
        "phases": {"stateful": {"max-steps": 8}},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app(service), config=config)
    schema.hook("map_case")(realistic(world, service))
    schema.auth(refresh_interval=None)(tokens(world, service))
    cases: Counter = Counter()
    failures: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases[event.phase.value] += len(event.recorder.cases)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failures.append(_describe(event, case_id, check))
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"{service}: error {getattr(event, 'label', '')} {getattr(event, 'info', event)}")
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(cases), cases  # every phase ran
    return schema.statistic.operations.total, cases, failures


def _describe(event, case_id: str, check) -> str:
    case = event.recorder.cases[case_id].value
    interaction = event.recorder.interactions.get(case_id)
    response = interaction.response if interaction else None
    answer = f"{response.status_code} {response.content[:300]!r}" if response else "no answer"
    return (f"[{event.phase.value}] {event.recorder.label} {check.name}: {check.failure_info.failure.title}\n"
            f"    {check.failure_info.failure.message[:400]}\n"
            f"    path={case.path_parameters} query={case.query} body={str(case.body)[:300]}\n    -> {answer}")


@pytest.mark.parametrize("service", ["registration", "evaluation", "scoring"])
def test_schemathesis_finds_no_answer_that_contradicts_the_document(api_world: ApiWorld, service: str):
    try:
        operations, cases, failures = run_schemathesis(api_world, service)
    finally:
        asgi.shutdown_lifespans()
    print(f"\n{service}: {operations} operations, {sum(cases.values())} test cases {dict(cases)}, {len(failures)} failures")
    assert failures == [], "\n".join(failures)
