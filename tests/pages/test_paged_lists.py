"""The lists of the collège's and the lycée's spaces page in SQL (issue 12, finding 5): fifty rows a page with
« Page précédente / suivante », only the page's files parsed, and the counters counted in SQL, equal to what
the pages computed from every student before."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from pages_world import (
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_COLLEGE,
    World,
    api_post,
    college_avis,
    register_student,
    schedule,
    text_of,
)
from shared.domain.student_file import StudentFile

COUNTERS = re.compile(r'<span class="number">(\d+)</span>')


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list:
    """One item per stored file parsed (StudentFile.model_validate_json, what every read of a file uses)."""
    parsed: list = []
    original = StudentFile.model_validate_json.__func__
    monkeypatch.setattr(
        StudentFile, "model_validate_json", classmethod(lambda cls, *a, **k: parsed.append(1) or original(cls, *a, **k))
    )
    return parsed


def hold_with_avis(world: World, evaluation, ine: str, avis: str) -> str:
    """The interview held an hour ago and the lycée avis; the position of the avis."""
    api_post(evaluation, world.token("lycee_staff", LYCEE), f"/api/students/{ine}/interviews/held", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "report": {"motivation": "satisfaisante", "chances_of_success": "satisfaisante", "advice": "Bien."},
    })
    given = api_post(evaluation, world.token("proviseur", LYCEE), f"/api/students/{ine}/lycee-avis",
                     {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": avis})
    return given["positions"]["service"]


def old_counts(students: list[dict]) -> list[int]:
    """« Mes élèves » counters as the page computed them from every student, before they were SQL counts."""
    active = [s for s in students if s["status"] == "active"]
    return [
        len(active),
        sum(1 for s in active if s["college_avis"] is None),
        sum(1 for s in active for i in s["interviews"] if i["status"] == "scheduled"),
        sum(1 for s in students if s["total_bonus_points"]),
    ]


def listed(html: str) -> list[str]:
    """The students of the list's table, in order (the day's work above it links to students too)."""
    return re.findall(r'href="/eleves/([0-9A-Z]{11})"', html.split('<table class="responsive">', 1)[-1])


def test_a_college_of_sixty_students_shows_fifty_a_page_parses_only_them_and_counts_as_before(world: World, parses):
    ines = [f"{n:09d}PL" for n in range(60)]
    past, future = (datetime.now(UTC) + timedelta(hours=h) for h in (-2, 48))
    principal = world.token("principal", COLLEGE)
    with world.client("registration") as registration, world.client("evaluation") as evaluation:
        for ine in ines:
            register_student(world, registration, ine)
        for ine in ("000000001PO", "000000002PO"):  # another collège's students: neither listed nor counted
            register_student(world, registration, ine, college=OTHER_COLLEGE)
        for ine in ines[:12]:
            college_avis(world, registration, ine)
        for ine in ines[8:20]:
            schedule(world, registration, ine, (past if ine in ines[8:12] else future).isoformat())
        for ine in (ines[0], ines[15]):  # withdrawn: one with its avis given, one with an interview to come
            api_post(registration, principal, f"/api/students/{ine}/withdrawal", {"reason": "Déménagement"})
        position = ""
        for ine, avis in zip(ines[8:12], ("favorable", "favorable", "reserve", "favorable"), strict=True):
            position = hold_with_avis(world, evaluation, ine, avis)
        everyone = registration.get(f"/api/students?limit=100&min_position={position}",
                                    headers={"Authorization": f"Bearer {principal}"}).json()["items"]
    expected = old_counts(everyone)
    assert len(everyone) == 60 and expected == [58, 47, 7, 3]  # every counter counts something, the withdrawn aside

    with world.visitor("registration", "principal", COLLEGE) as visitor:
        parses.clear()
        first = visitor.get(f"/?position={position}")
        assert first.status_code == 200, first.text
        shown = listed(first.text)
        assert shown == ines[:50]
        assert len(parses) == 50  # the page's files, not the sixty
        assert [int(n) for n in COUNTERS.findall(first.text)] == expected
        text = text_of(first.text)
        assert "60 élèves" in text and "Page 1 sur 2" in text and "Page précédente" not in text
        assert 'rel="next" href="/?page=2"' in first.text

        second = visitor.get("/?page=2")
        assert listed(second.text) == ines[50:]
        assert [int(n) for n in COUNTERS.findall(second.text)] == expected
        assert 'rel="prev" href="/"' in second.text and "Page suivante" not in text_of(second.text)
        # Past the last page, or not a number: the nearest page, never an error.
        assert listed(visitor.get("/?page=9").text) == ines[50:]
        assert listed(visitor.get("/?page=deux").text) == ines[:50]


def test_the_interviews_page_and_filter_in_sql_and_count_every_interview(world: World, parses, monkeypatch):
    from services.evaluation import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    ines = [f"{n:09d}PE" for n in range(6)]
    with world.client("registration") as registration, world.client("evaluation") as evaluation:
        for n, ine in enumerate(ines):
            register_student(world, registration, ine)
            college_avis(world, registration, ine)
            when = datetime.now(UTC) + (timedelta(hours=-2) if n == 0 else timedelta(days=n))
            schedule(world, registration, ine, when.isoformat())
        position = hold_with_avis(world, evaluation, ines[0], "favorable")
    with world.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        visitor.get(f"/?position={position}")  # the view caught up: its fold parses files too
        parses.clear()
        first = visitor.get("/?statut=scheduled")
        assert re.findall(r'href="/eleves/([0-9A-Z]{11})/\d+"', first.text) == ines[1:3]
        assert len(parses) == 2
        assert [int(n) for n in COUNTERS.findall(first.text)] == [5, 1, 0]  # à venir, tenus, annulés: every interview
        assert "5 entretiens pour ces filtres" in text_of(first.text) and "Page 1 sur 3" in text_of(first.text)
        assert 'rel="next" href="/?statut=scheduled&amp;page=2"' in first.text  # the filter kept
        last = visitor.get("/?statut=scheduled&page=3")
        assert re.findall(r'href="/eleves/([0-9A-Z]{11})/\d+"', last.text) == ines[5:]
        assert 'rel="prev" href="/?statut=scheduled&amp;page=2"' in last.text
        held = visitor.get(f"/?formation={FORMATION}&statut=held")
        assert re.findall(r'href="/eleves/([0-9A-Z]{11})/\d+"', held.text) == [ines[0]]
        assert "Page 1" not in text_of(held.text)
