"""Hostile input in bulk (SPEC §5, issue 3): thousands of generated requests against every write endpoint.

Bodies mix valid and hostile values field by field (wrong types, huge and control-laden
strings, unicode, injections, nulls, nested objects, impossible dates), or are not JSON
objects at all; tokens, content types and path INEs are generated too. Whatever is
sent: never a 5xx, only the statuses of SPEC §5's table, every refusal a French
`{"error", "message"}` body (naming its fields for a 422), and nothing appended to any
key of the académie unless the answer is 201 — and then exactly one event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CAMPAIGN
from matrix import (
    CALLERS,
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_COLLEGE,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    OTHER_PRINCIPAL,
    PRINCIPAL,
    RECTORAT,
    STAFF,
    STUDENT,
    WRITE_RIGHTS,
    WRITES,
    World,
    refusal_problems,
    register_body,
    schedule_body,
    world,  # noqa: F401 - the module-scoped fixture
)

CALENDAR_DATES = ("registrations_until", "interviews_from", "interviews_until", "lycee_avis_until", "closes_at")
EXAMPLES_PER_WRITE = 185  # × 13 write endpoints = 2,405: the issue asks for at least 2,000 generated requests
EXAMPLES_OF_READS = 100
SPEC_STATUSES = {200, 201, 401, 403, 404, 405, 409, 413, 422}  # SPEC §5's table, and 405 for a path that lands on a read

FUZZ = settings(
    max_examples=EXAMPLES_PER_WRITE,
    deadline=None,
    database=None,  # the examples depend on this run's académie; nothing to replay later
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

UNKNOWN_UAI = "0750001A"  # well-formed (7500001 % 23 == 0), absent from the reference data
EVENT_IDS = [str(uuid.UUID(int=n)) for n in range(3)]  # reused on purpose: retries and reused ids


# --- generated requests ------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    service: str
    url: str
    headers: dict
    content: bytes | None = None
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        content = self.content if self.content is None or len(self.content) < 300 else self.content[:300] + b"..."
        return f"{self.method} {self.service} {self.url} params={self.params} headers={self.headers} content={content!r}"


HOSTILE_STRINGS = st.sampled_from(
    [
        "", " ", "\t\n", "\x00", "a\x00b", "\x1b[31mrouge", "\x7f", "\u0085", "\u2028", "\u202e\u0644", "\ufeff",
        "'; DROP TABLE students; --", "\" OR 1=1 --", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
        "{{7*7}}", "${jndi:ldap://x/a}", "../../etc/passwd", "%00", "%2F", "%s%s%s%n", "\\u0000", "null", "true",
        "NaN", "-1", "1e309", "0x10", "𝕏🦄", "é" * 300, "x" * 5000, "ß", "ﬀ", "İ", "0752536Z", "123456789AB",
        "2473121131", "2027", "favorable", "presentiel", "passpro:{paris}:2027:student:123456789AB",
    ]
)
# Pre-built hostile JSON values: drawing from a list is far cheaper than generating structures,
# and these are the shapes that break parsers and validators.
HOSTILE_VALUES = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30, 0.5, -0.0, 1e308, 1e-320,
    float("nan"), float("inf"), float("-inf"), [], [None], [1, 2, 3], ["0752536Z"], [[[[[]]]]], {}, {"a": None},
    {"$ne": None}, {"$gt": ""}, {"__proto__": {"admin": True}}, {"user_id": "x", "name": "y", "email": "z@z.z", "role": "rectorat"},
    {"motivation": "fragile"}, {"uai": "0752536Z"}, {"nested": {"deeper": [1, "x", {"k": []}]}}, ["a", {"b": [None, 1.5]}],
    "\ud800", "\udfff\ud800",  # lone surrogates, written by json.dumps as escapes
]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    HOSTILE_STRINGS,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
HOSTILE_KEYS = st.text(max_size=12) | st.sampled_from(["actor", "recorded_at", "college_avis_present", "interview_id", "__proto__", "$where"])

RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"", b"null", b"[]", b"{}", b'"texte"', b"{,}", b"{'a': 1}", b'{"reason": NaN}', b"nom=Martin&x=1",
            b'{"reason": "\\ud800"}', b'{"reason": "\\udfff\\ud800"}', b'{"reason": "a\\u0000b"}',
            b'{"student_ine": ' + b"9" * 5000 + b"}", b'{"reason": 1e999}', b"\xef\xbb\xbf{}", b'{"a":1}{"b":2}',
            b'{"reason": "' + b"x" * 70_000 + b'"}',  # over 64 KiB
        ]
    ),
    st.integers(min_value=1, max_value=30_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=12_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)), ZoneInfo("Europe/Paris")])


def _dates(near: str) -> st.SearchStrategy[str]:
    now = datetime.now(UTC)
    around = now + timedelta(days=7) if near == "future" else now - timedelta(hours=2)
    return st.one_of(
        st.just(around.isoformat()),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59), timezones=ZONES).map(
            lambda d: d.isoformat()
        ),
        st.sampled_from(["2027-03-01T10:00:00", "2027-03-01", "demain", "2027-02-30T10:00:00+01:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]),
    )


_LETTERS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz")
INE_LIKE = st.one_of(  # the three formats of SPEC §2, in either case (from_regex is much slower to build)
    st.tuples(st.integers(0, 10**9 - 1), _LETTERS, _LETTERS).map(lambda t: f"{t[0]:09d}{t[1]}{t[2]}"),
    st.tuples(st.integers(0, 10**10 - 1), _LETTERS).map(lambda t: f"{t[0]:010d}{t[1]}"),
    st.tuples(st.integers(0, 9999), st.sampled_from("Aa"), st.integers(0, 99999), _LETTERS).map(
        lambda t: f"{t[0]:04d}{t[1]}{t[2]:05d}{t[3]}"
    ),
)
TEXTS = st.sampled_from(  # realistic, accented, hostile-but-printable; free text costs ten times more to draw
    ["Martin", "Léa", "3e B", "Très motivée.", "Déménagement", "O'Brien-Ünal", "Zoë", "李", "  Martin  ", "a" * 100,
     "<b>gras</b>", "Robert'); DROP TABLE students;--", "😀 sourire", "e\u0301", "ǅ"]
) | st.text(max_size=12)
REFERENT = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["referent-dupont", "r2"]) | TEXTS,
        "name": TEXTS,
        "email": st.sampled_from(["claire.dupont@ac-paris.fr", "a@b.fr", "pas-un-courriel", "a@@b.fr"]),
    }
)
REPORT = st.fixed_dictionaries(
    {
        "motivation": st.sampled_from(["insuffisante", "fragile", "satisfaisante", "tres_satisfaisante", "excellente"]),
        "chances_of_success": st.sampled_from(["insuffisante", "fragile", "satisfaisante", "tres_satisfaisante"]),
        "advice": TEXTS,
    }
)
EVENT_ID = st.sampled_from(EVENT_IDS) | st.uuids().map(str)
COLLEGES = st.sampled_from([COLLEGE, OTHER_COLLEGE, LYCEE, UNKNOWN_UAI, " 0752536z "])
LYCEES = st.sampled_from([LYCEE, OTHER_LYCEE, COLLEGE, UNKNOWN_UAI, " 0752845k "])
FORMATIONS = st.sampled_from([FORMATION, OTHER_LYCEE_FORMATION, "2473121332", "2400000000", f" {FORMATION} "])
CAMPAIGNS = st.sampled_from([CAMPAIGN, str(int(CAMPAIGN) + 4)]) | st.integers(min_value=1000, max_value=9999).map(str)

# A slot named in a booking or a move (SPEC §7): none exists in this world, or a malformed id.
SLOT_IDS = st.sampled_from(["0" * 32, "inconnu", "", "a" * 65, "../slot", "a:b", " 1 "]) | st.uuids().map(lambda u: u.hex)

# Each write's body fields, with values a real client might send (valid or plausibly wrong).
# The guided letter's answers (SPEC §6): the template's questions and others, plausible and hostile texts.
ANSWERS = st.dictionaries(
    st.sampled_from(["pourquoi", "recherches", "metier", "qualites", "trajet", "questions", "inconnue", "Pourquoi"])
    | st.text(max_size=8),
    TEXTS | st.text(min_size=290, max_size=320),
    max_size=8,
)
CHECKLIST = {"itinerary_ready": st.booleans(), "letter_printed": st.booleans(), "materials_ready": st.booleans(),
             "equipment_ready": st.booleans() | st.none(), "event_id": EVENT_ID}

FIELDS: dict[str, dict[str, st.SearchStrategy]] = {
    "register": {
        "student_ine": INE_LIKE, "college_uai": COLLEGES, "last_name": TEXTS, "first_name": TEXTS,
        "class_name": TEXTS, "referent": REFERENT, "campaign": CAMPAIGNS, "event_id": EVENT_ID,
    },
    "referent": {"referent": REFERENT, "event_id": EVENT_ID},
    "schedule": {
        "lycee_uai": LYCEES, "formation_code": FORMATIONS, "scheduled_at": _dates("future"),
        "mode": st.sampled_from(["presentiel", "distanciel"]), "remote_equipment_ready": st.booleans(), "event_id": EVENT_ID,
        "slot_id": SLOT_IDS, "room": TEXTS,  # distanciel: the collège's room (required for a free time)
    },
    "cancel-by-college": {"lycee_uai": LYCEES, "formation_code": FORMATIONS, "reason": TEXTS, "event_id": EVENT_ID},
    "college-avis": {
        "college_uai": COLLEGES, "avis": st.sampled_from(["reserve", "assez_favorable", "favorable"]), "comment": TEXTS,
        "event_id": EVENT_ID,
    },
    "withdrawal": {"reason": TEXTS, "event_id": EVENT_ID},
    "reinstatement": {"reason": TEXTS, "event_id": EVENT_ID},
    "held": {
        "lycee_uai": LYCEES, "formation_code": FORMATIONS, "held_at": _dates("past"),
        "mode": st.sampled_from(["presentiel", "distanciel"]), "report": REPORT, "event_id": EVENT_ID,
    },
    "cancel-by-lycee": {"lycee_uai": LYCEES, "formation_code": FORMATIONS, "reason": TEXTS, "event_id": EVENT_ID},
    "lycee-avis": {
        "lycee_uai": LYCEES, "formation_code": FORMATIONS, "avis": st.sampled_from(["reserve", "favorable"]), "event_id": EVENT_ID,
    },
    "reschedule": {
        "lycee_uai": LYCEES, "formation_code": FORMATIONS, "slot_id": SLOT_IDS, "scheduled_at": _dates("future"),
        "mode": st.sampled_from(["presentiel", "distanciel"]), "room": TEXTS, "event_id": EVENT_ID,
    },
    "report": {"lycee_uai": LYCEES, "formation_code": FORMATIONS, "report": REPORT, "event_id": EVENT_ID},
    "open-campaign": {
        "campaign": CAMPAIGNS, "bonus_points": st.integers(min_value=-10, max_value=200_000), "closes_at": _dates("future"),
        "event_id": EVENT_ID,
    },
    "calendar": {  # SPEC §7: every date optional, null removes it; the path's year drawn too (see write_requests)
        **{name: _dates("future") | _dates("past") | st.none()
           for name in ("registrations_until", "interviews_from", "interviews_until", "lycee_avis_until", "closes_at")},
        "event_id": EVENT_ID,
    },
    "letter": {"lycee_uai": LYCEES, "formation_code": FORMATIONS, "answers": ANSWERS, "ready": st.booleans(),
               "event_id": EVENT_ID},
    "access-code": {"event_id": EVENT_ID},  # no body: each call a new code (the generated fields are extra)
    "my-preparation": CHECKLIST,
    "preparation": CHECKLIST,
}
assert set(FIELDS) == set(WRITES)
OPTIONAL = {"event_id", "campaign", "remote_equipment_ready", "mode", "bonus_points", "closes_at", "slot_id", "ready",
            "equipment_ready", "registrations_until", "interviews_from", "interviews_until", "lycee_avis_until"}


# Hypothesis draws the ends of an integer range more often than the middle, so the rarer
# choices below sit in the middle of their range.


@st.composite
def bodies(draw, write: str) -> bytes:
    shape = draw(st.integers(0, 19))
    if shape == 7:
        return draw(RAW_BODIES)
    if shape == 13:
        return json.dumps(draw(HOSTILE)).encode()
    body = {}
    for name, valid in FIELDS[write].items():
        roll = draw(st.integers(0, 9))  # mostly plausible values, so that many bodies get past the shape checks
        if roll in (4, 7):
            body[name] = draw(HOSTILE)
        elif roll == 5 or (name in OPTIONAL and roll > 4):
            continue  # missing
        else:
            body[name] = draw(valid)
    if draw(st.integers(0, 9)) == 6:
        body[draw(HOSTILE_KEYS)] = draw(HOSTILE)
    text = json.dumps(body, allow_nan=True, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", errors="surrogatepass")


def authorizations(secret: str, tokens: dict[str, str], entitled: list[str]) -> st.SearchStrategy:
    """Mostly the token of a caller entitled to the call (so that bodies reach the deeper checks), else
    any caller's, garbage, none, or a token signed with the right secret but with claims of any type."""
    now = int(time.time())
    valid = st.sampled_from(sorted(tokens.values())).map(lambda t: f"Bearer {t}")
    proper = st.sampled_from(sorted(tokens[label] for label in entitled)).map(lambda t: f"Bearer {t}")
    garbage = st.one_of(
        st.sampled_from(["", "Bearer", "Bearer ", "Basic cHJpbmNpcGFsOng=", "bearer a.b.c", "Bearer null", "Token x"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(lambda s: f"Bearer {s}"),
        st.binary(max_size=60).map(lambda b: b"Bearer " + b),
    )
    claims = st.fixed_dictionaries(
        {"sub": st.sampled_from(["someone"]) | HOSTILE, "role": st.sampled_from(["principal", "proviseur", "rectorat"]) | HOSTILE,
         "uai": st.sampled_from([COLLEGE, LYCEE, None]) | HOSTILE},
    )
    signed = claims.map(
        lambda c: "Bearer " + jwt.encode({**c, "iat": now, "exp": now + 3600, "iss": "passpro"}, secret, algorithm="HS256")
    )

    @st.composite
    def choose(draw) -> str | bytes | None:
        roll = draw(st.integers(0, 9))
        return draw({2: valid, 3: valid, 4: garbage, 5: st.none(), 6: signed}.get(roll, proper))

    return choose()


JSON_CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "application/merge-patch+json"])
OTHER_CONTENT_TYPES = st.sampled_from(
    [
        "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "application/xml", "",
        "garbage;;;==", "application/json; charset=latin-1", "APPLICATION/JSON", "application/json, text/html",
    ]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@st.composite
def content_types(draw) -> str:
    return draw(OTHER_CONTENT_TYPES if draw(st.integers(0, 9)) in (4, 6) else JSON_CONTENT_TYPES)


EXTRA_HEADERS = st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=15).map(
        lambda s: f"X-{s}"
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    max_size=2,
)
RAW_SEGMENTS = st.sampled_from(
    ["..", ".", "%2e%2e", "a%2Fb", "a/b", "%00", "%ZZ", "%", "123456789AB%2F..", "%20123456789ab%20", "123456789ß",
     "１２３４５６７８９AB", "%3Cscript%3E", "'%20OR%201=1--", "123456789AB%00", "*", "~", "123456789AB;x=1"]
)


def path_ines(known: list[str]) -> st.SearchStrategy[str]:
    known_ines = st.sampled_from(known + [k.lower() for k in known])
    encoded = st.text(max_size=20).map(lambda s: quote(s, safe=""))

    @st.composite
    def choose(draw) -> str:
        roll = draw(st.integers(0, 9))
        return draw({3: INE_LIKE, 4: RAW_SEGMENTS, 5: encoded, 6: INE_LIKE}.get(roll, known_ines))

    return choose()


def write_requests(
    write: str, secret: str, tokens: dict[str, str], known: list[str], interviews: list[str]
) -> st.SearchStrategy[Request]:
    spec = WRITES[write]
    entitled = [caller.label for caller, outcome in zip(CALLERS, WRITE_RIGHTS[write], strict=True) if outcome.status == 201]
    if spec.by_student:
        entitled = [STUDENT.label]  # the token of the known scheduled student (see _tokens)
    authorization_values, ines, body_values = authorizations(secret, tokens, entitled), path_ines(known), bodies(write)
    if write == "calendar":  # the path names a campaign year: the open one, others, and hostile segments
        ines = CAMPAIGNS | ines
    interview_ids = st.sampled_from(interviews) | RAW_SEGMENTS | st.text(max_size=12).map(lambda s: quote(s, safe=""))

    @st.composite
    def build(draw) -> Request:
        headers: dict = draw(EXTRA_HEADERS)
        authorization = draw(authorization_values)
        if authorization is not None:
            headers["Authorization"] = authorization
        headers["Content-Type"] = draw(content_types())
        url = spec.path.format(ine=draw(ines) if "{ine}" in spec.path else "",
                               interview_id=draw(interview_ids) if "{interview_id}" in spec.path else "")
        params = {"campaign": draw(CAMPAIGNS | HOSTILE_STRINGS)} if draw(st.integers(0, 9)) == 5 else {}
        return Request("POST", spec.service, url, headers, draw(body_values), params)

    return build()


# --- the checks ----------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Sends generated requests and checks each answer and what the log holds after it."""

    world: World
    state: dict = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.state = self._state()

    def _state(self) -> dict:
        return self.world.log_state()

    def send(self, request: Request) -> None:
        client = self.world.clients[request.service]
        headers = {k.encode() if isinstance(k, str) else k: v.encode("latin-1") if isinstance(v, str) else v
                   for k, v in request.headers.items()}
        response = client.request(request.method, request.url, headers=headers, content=request.content, params=request.params)
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, response.text
        assert response.status_code in SPEC_STATUSES, response.text
        # A path that leaves /api/ once resolved (say `/api/bonuses/..`, which is `/api`) is a web page's
        # business: its refusals are French HTML pages, not JSON bodies.
        if 400 <= response.status_code < 500 and response.request.url.path.startswith("/api/"):
            try:
                body = response.json()
            except ValueError:
                body = response.text
            assert refusal_problems(response.status_code, body) == [], (response.status_code, response.text[:500])
        self._check_the_log(request, response)

    def _check_the_log(self, request: Request, response) -> None:
        before, after = self.state, self._state()
        self.state = after
        changed = {k: (before.get(k, (None, 0))[1], after.get(k, (None, 0))[1]) for k in before.keys() | after.keys()
                   if before.get(k) != after.get(k)}
        if response.status_code != 201:
            if response.status_code == 200 and request.method == "GET":  # a read is logged (issue 5): access logs only grow
                changed = {k: v for k, v in changed.items() if ":access:" not in k or v[1] <= v[0]}
            assert changed == {}, f"a {response.status_code} answer stored something: {changed}"
            return
        event = response.json()["event"]
        keys = self.world.passpro.keys
        if event["student_ine"] is None:
            expected = {keys.rectorat, keys.event_ids(None)}
        else:
            expected = {
                keys.service(event["campaign"], request.service),
                keys.student(event["campaign"], event["student_ine"]),
                keys.event_ids(event["campaign"]),
            }
        assert {k: after - before for k, (before, after) in changed.items()} == {k: 1 for k in expected}, changed


@pytest.fixture(scope="module")
def known_students(world: World) -> list[str]:
    """Students the generated paths aim at: scheduled, held, withdrawn, and one of another collège."""
    other = world.fresh_ine()
    world.ok("registration", "/api/students", register_body(other, OTHER_COLLEGE), OTHER_PRINCIPAL)
    world.ok("registration", f"/api/students/{other}/interviews", schedule_body(OTHER_LYCEE, OTHER_LYCEE_FORMATION), OTHER_PRINCIPAL)
    return [world.prepare("scheduled"), world.prepare("held"), world.prepare("withdrawn"), other]


def _tokens(world: World, student: str) -> dict[str, str]:
    """Every caller's token, and the student's own (`student`, the known scheduled one) for /api/me."""
    tokens = {c.label: world.passpro.token(c.role, c.uai) for c in CALLERS}
    return tokens | {STUDENT.label: world.passpro.token(STUDENT.role, STUDENT.uai, ine=student)}


@pytest.mark.parametrize("write", list(WRITES))
def test_no_generated_request_to_a_write_gets_a_5xx_or_stores_a_refused_event(world, known_students, write):
    ledger = Ledger(world)
    interviews = [world.interviews[ine] for ine in known_students if ine in world.interviews]

    @FUZZ
    @given(request=write_requests(write, world.passpro.secret, _tokens(world, known_students[0]), known_students,
                                  interviews))
    def send(request: Request) -> None:
        ledger.send(request)

    try:
        send()
    finally:
        if write == "calendar":  # generated calendars may close the world's campaign: the tests after it book again
            world.ok("scoring", f"/api/campaigns/{CAMPAIGN}/calendar", dict.fromkeys(CALENDAR_DATES), RECTORAT)
    print(f"{write}: {sum(ledger.statuses.values())} requests, statuses {dict(sorted(ledger.statuses.items()))}")
    assert sum(ledger.statuses.values()) >= EXAMPLES_PER_WRITE


# --- reads: hostile query strings -------------------------------------------------------------------------------

READ_PATHS = [
    ("registration", "/api/establishments"),
    ("registration", "/api/formations"),
    ("registration", "/api/students"),
    ("registration", "/api/me"),
    ("evaluation", "/api/interviews"),
    ("evaluation", "/api/slots"),
    ("scoring", "/api/bonuses"),
    ("scoring", "/api/bonuses/{ine}"),
    ("scoring", "/api/reports/summary"),
    ("scoring", "/api/campaigns/{ine}/calendar"),
    ("scoring", "/api/exports/affelnet.csv"),
    ("scoring", "/api/audit/students/{ine}"),
]
# Well-formed positions stay in the past: a read waits (up to 10 s here) for a position not reached yet.
# Positions beyond Redis' 64-bit ids have their own test below, as they used to be waited for too.
POSITIONS = st.one_of(
    st.tuples(st.integers(0, int(time.time() * 1000)), st.integers(0, 99)).map(lambda p: f"{p[0]}-{p[1]}"),
    st.sampled_from(["0-0", "-1", "1-", "$", "+", "*", "1-2-3", "0x10-0", "１-0", "1 - 2", ""]),
)
QUERY_VALUES = {
    "min_position": POSITIONS,
    "limit": st.integers(-5, 2000).map(str) | HOSTILE_STRINGS,
    "offset": st.integers(-5, 2_000_000).map(str) | HOSTILE_STRINGS,
    "campaign": CAMPAIGNS | HOSTILE_STRINGS,
    "college_uai": COLLEGES | HOSTILE_STRINGS,
    "lycee_uai": LYCEES | HOSTILE_STRINGS,
    "formation_code": FORMATIONS | HOSTILE_STRINGS,
    "min_points": st.integers(-5, 200_000).map(str) | HOSTILE_STRINGS,
    "as_of": POSITIONS | _dates("past") | HOSTILE_STRINGS,
    "from": _dates("future") | HOSTILE_STRINGS,
    "to": _dates("future") | HOSTILE_STRINGS,
}


def read_requests(secret: str, tokens: dict[str, str], known: list[str]) -> st.SearchStrategy[Request]:
    authorization_values, ines = authorizations(secret, tokens, sorted(tokens)), path_ines(known)

    @st.composite
    def build(draw) -> Request:
        service, path = draw(st.sampled_from(READ_PATHS))
        headers: dict = {}
        authorization = draw(authorization_values)
        if authorization is not None:
            headers["Authorization"] = authorization
        params = draw(st.fixed_dictionaries({}, optional=QUERY_VALUES))
        return Request("GET", service, path.format(ine=draw(ines)), headers, None, params)

    return build()


def test_no_generated_read_gets_a_5xx_or_stores_anything(world, known_students):
    ledger = Ledger(world)

    @settings(FUZZ, max_examples=EXAMPLES_OF_READS)
    @given(request=read_requests(world.passpro.secret, _tokens(world, known_students[0]), known_students))
    def send(request: Request) -> None:
        ledger.send(request)

    send()
    print(f"reads: {sum(ledger.statuses.values())} requests, statuses {dict(sorted(ledger.statuses.items()))}")
    assert sum(ledger.statuses.values()) >= EXAMPLES_OF_READS


# --- the student's sign-in: INE + access code for a token (SPEC §6) ---------------------------------------------

SIGN_IN_STATUSES = {201, 401, 413, 422, 429}  # 429: five wrong codes for an INE, the wait not over
CODES = st.sampled_from(["ABCD-EFGH-JKMN", "abcd efgh jkmn", "", " ", "0" * 40, "0" * 41]) | TEXTS | HOSTILE_STRINGS


@st.composite
def sign_in_bodies(draw, known: list[str]) -> bytes:
    if draw(st.integers(0, 9)) == 7:
        return draw(RAW_BODIES)
    body = {}
    for name, valid in (("ine", st.sampled_from(known) | INE_LIKE), ("code", CODES)):
        roll = draw(st.integers(0, 9))
        if roll in (4, 7):
            body[name] = draw(HOSTILE)
        elif roll != 5:
            body[name] = draw(valid)
    if draw(st.integers(0, 9)) == 6:
        body[draw(HOSTILE_KEYS)] = draw(HOSTILE)
    return json.dumps(body, allow_nan=True).encode("utf-8", errors="surrogatepass")


def test_no_generated_sign_in_gets_a_5xx_or_stores_anything(world, known_students):
    """POST /api/eleve/session needs no token: whatever is sent, never a 5xx, a French refusal, no token for a
    wrong code, and nothing in the log (the wrong tries are counted in registration's database only)."""
    statuses: Counter = Counter()
    state = world.log_state()

    @settings(FUZZ, max_examples=EXAMPLES_OF_READS)
    @given(body=sign_in_bodies(known_students), content_type=content_types(), headers=EXTRA_HEADERS)
    def send(body: bytes, content_type: str, headers: dict) -> None:
        response = world.clients["registration"].post(
            "/api/eleve/session", content=body, headers={**headers, "Content-Type": content_type}
        )
        statuses[response.status_code] += 1
        assert response.status_code in SIGN_IN_STATUSES, response.text
        assert response.status_code != 201, "no generated code is anyone's"
        assert refusal_problems(response.status_code, response.json()) == [], response.text[:500]
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0

    send()
    print(f"sign-in: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert world.log_state() == state
    assert sum(statuses.values()) >= EXAMPLES_OF_READS


# --- what the fuzzing found, kept as plain examples -----------------------------------------------------------

# Aware times that exist in their own offset but not in UTC (before year 1 or after year 9999 once converted).
BEYOND_UTC = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]


@pytest.mark.parametrize("moment", BEYOND_UTC)
@pytest.mark.parametrize(
    ("write", "caller", "field"),
    [("schedule", PRINCIPAL, "scheduled_at"), ("held", STAFF, "held_at"), ("open-campaign", RECTORAT, "closes_at")],
    ids=["schedule", "held", "open-campaign"],
)
def test_a_time_that_utc_cannot_express_is_refused_with_422(world, write, caller, field, moment):
    spec = WRITES[write]
    subject = world.prepare(spec.situation)
    before = world.log_state()

    response = world.post(spec.service, spec.url(subject), {**spec.body(subject), field: moment}, caller)

    body = response.json()
    fields = {f["field"] for f in body.get("fields", [])}
    assert (response.status_code, body.get("error"), field in fields, refusal_problems(response.status_code, body)) == (
        422, "invalid_input", True, [],
    ), response.text
    assert world.log_state() == before


@pytest.mark.parametrize(
    ("service", "path", "caller", "position"),
    [
        ("registration", "/api/students", PRINCIPAL, "18446744073709551616-0"),  # 2**64
        ("evaluation", "/api/interviews", STAFF, "1-18446744073709551616"),
        ("scoring", "/api/bonuses", RECTORAT, "99999999999999999999-99999999999999999999"),
    ],
    ids=["students", "interviews", "bonuses"],
)
def test_a_log_position_beyond_redis_ids_is_refused_with_422(world, service, path, caller, position):
    """Redis entry ids are two unsigned 64-bit numbers: a larger one is invalid input, not a server error."""
    response = world.get(service, path, caller, params={"min_position": position})
    body = response.json()
    assert (response.status_code, body.get("error"), [f["field"] for f in body.get("fields", [])]) == (
        422, "invalid_input", ["min_position"],
    ), response.text
