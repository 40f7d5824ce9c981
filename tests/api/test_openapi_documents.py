"""What SPEC §5.1 asks of the committed OpenAPI documents, read as a client generator would read them."""

from __future__ import annotations

import json
import re

import pytest

from services.cli.docs import API_DIR
from shared.contracts.identifiers import uai_check_letter

SERVICES = ("registration", "evaluation", "scoring")
IDENTIFIERS = {"ine": "123456789AB", "student_ine": "123456789AB", "college_uai": "0752536Z",
               "lycee_uai": "0752845K", "formation_code": "2473121131", "campaign": "2027"}


def document(service: str) -> dict:
    return json.loads((API_DIR / f"openapi-{service}.json").read_text(encoding="utf-8"))


def operations(doc: dict):
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def patterns(doc: dict, schema: dict) -> list[str]:
    """Every pattern a value of `schema` must match (through $ref and anyOf)."""
    schema = resolve(doc, schema)
    found = [schema["pattern"]] if "pattern" in schema else []
    for branch in schema.get("anyOf", []):
        found += patterns(doc, branch)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_success_has_a_schema_and_every_refusal_its_headers(service: str):
    doc = document(service)
    for label, operation in operations(doc):
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert successes, label
        for code in successes:
            content = responses[code]["content"]
            assert content, (label, code)
            for media, body in content.items():
                schema = resolve(doc, body["schema"])
                assert schema.get("properties") or schema.get("type") == "string", (label, code, media)
        assert "WWW-Authenticate" in responses["401"]["headers"], label
        assert "Retry-After" in responses["503"]["headers"], label
        assert "422" not in responses or operation.get("parameters") or operation.get("requestBody"), label


# POSTs that store no event answer (SPEC §6): a student's sign-in (a token for INE + access code) and a new access
# code (shown once, never stored; each call a new code, so no retry answer). Their answers are checked below.
NOT_EVENT_WRITES = {
    "POST /api/eleve/session": {"token", "expires_at"},
    "POST /api/students/{ine}/access-code": {"code", "expires_at", "event", "positions"},
}


def test_the_posts_that_are_no_event_write_document_their_own_answer():
    doc = document("registration")
    found = {label: op for label, op in operations(doc) if label in NOT_EVENT_WRITES}
    assert set(found) == set(NOT_EVENT_WRITES)
    for label, operation in found.items():
        responses = operation["responses"]
        assert "200" not in responses, label
        schema = resolve(doc, responses["201"]["content"]["application/json"]["schema"])
        assert set(schema["required"]) == NOT_EVENT_WRITES[label], label
    session = found["POST /api/eleve/session"]["responses"]
    assert "Retry-After" in session["429"]["headers"]
    assert found["POST /api/eleve/session"]["security"] == []  # no token needed to get one


@pytest.mark.parametrize("service", SERVICES)
def test_a_write_documents_its_event_answer_for_201_and_for_the_retry_200_with_links(service: str):
    doc = document(service)
    writes = [(label, op) for label, op in operations(doc) if label.startswith("POST") and label not in NOT_EVENT_WRITES]
    assert writes
    for label, operation in writes:
        responses = operation["responses"]
        for code in ("201", "200"):
            schema = resolve(doc, responses[code]["content"]["application/json"]["schema"])
            assert set(schema["required"]) == {"event", "positions"}, (label, code)
            assert responses[code]["links"], (label, code)
        for link in responses["201"]["links"].values():
            assert any(op.get("operationId") == link["operationId"] for _, op in operations(doc)), (label, link)


@pytest.mark.parametrize("service", SERVICES)
def test_identifiers_have_patterns_that_their_examples_and_real_values_match(service: str):
    doc = document(service)
    seen = set()
    for label, operation in operations(doc):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in IDENTIFIERS:
                found = patterns(doc, parameter["schema"])
                assert found, (label, parameter["name"])
                assert all(re.match(p, IDENTIFIERS[parameter["name"]]) for p in found), (label, parameter["name"])
                seen.add(parameter["name"])
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            for name, schema in resolve(doc, body["schema"])["properties"].items():
                if name in IDENTIFIERS:
                    found = patterns(doc, schema)
                    assert found and all(re.match(p, IDENTIFIERS[name]) for p in found), (label, name)
                    seen.add(name)
    assert {"ine", "campaign"} <= seen
    assert uai_check_letter("0752547") == "L"  # the examples are real establishments, check letter included


def test_the_affelnet_export_is_documented_as_csv_with_its_headers():
    responses = document("scoring")["paths"]["/api/exports/affelnet.csv"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/csv"]
    assert {"Content-Disposition", "X-Content-SHA256"} <= set(responses["200"]["headers"])


def test_each_operation_lists_only_the_refusals_it_can_give():
    registration = {label: op for label, op in operations(document("registration"))}
    assert sorted(registration["GET /api/establishments"]["responses"]) == ["200", "401", "503"]
    assert "404" not in registration["POST /api/students"]["responses"]  # registering names no existing student
    assert "404" in registration["POST /api/students/{ine}/college-avis"]["responses"]
    scoring = {label: op for label, op in operations(document("scoring"))}
    assert "404" not in scoring["GET /api/bonuses"]["responses"]
    assert "409" not in scoring["GET /api/reports/summary"]["responses"]
    assert "413" not in scoring["GET /api/reports/summary"]["responses"]
