"""The demo (`passpro up --demo`, services/demo.py) has students at every step of SPEC §6, letters included, each
one click away: loaded through the three services served on ports of 19300-19399, every demo student reads their
own file (GET /api/me) at the step the one-click list says — the draft and the ready letter, the checklist, the
distanciel interview with its room at the collège, the report, the avis and the 2 500 points. Loading twice
stores nothing twice."""

from __future__ import annotations

import httpx
from browsing import serve

from services.demo import load_demo
from shared.runtime.demo_users import DEMO_STUDENTS, demo_establishments, demo_ine

PORTS = range(19300, 19400)  # this work's own range


def test_the_demo_has_a_student_at_every_step_letters_included(passpro):
    with serve(passpro, "registration", PORTS) as registration, serve(passpro, "evaluation", PORTS) as evaluation, \
            serve(passpro, "scoring", PORTS) as scoring:
        urls = {"registration": registration, "evaluation": evaluation, "scoring": scoring}
        load_demo(passpro.settings("scoring"), urls, passpro.reference)
        length = passpro.xlen(passpro.service_stream("registration"))
        load_demo(passpro.settings("scoring"), urls, passpro.reference)  # again: nothing stored twice
        assert passpro.xlen(passpro.service_stream("registration")) == length

        # the latest entry of both services' streams: registration's view has applied every demo write
        ids = [e[0].decode() for service in ("registration", "evaluation")
               for e in passpro.redis.xrevrange(passpro.service_stream(service), count=1)]
        latest = max(ids, key=lambda i: tuple(map(int, i.split("-"))))
        colleges, _ = demo_establishments(passpro.reference)
        seen_steps: set[str] = set()
        with httpx.Client(base_url=registration, timeout=30) as client:
            for n, (_, first, _, steps) in enumerate(DEMO_STUDENTS):
                ine, college = demo_ine(n), colleges[n % len(colleges)].uai
                auth = {"Authorization": f"Bearer {passpro.token('eleve', college, ine=ine)}"}
                me = client.get("/api/me", headers=auth, params={"min_position": latest})
                assert me.status_code == 200, me.text
                me = me.json()
                letters = client.get("/api/me/letters", headers=auth).json()
                interviews = me["interviews"]
                seen_steps.update(steps)
                if "schedule_remote" in steps:
                    [remote] = interviews
                    assert remote["mode"] == "distanciel" and "Salle 12" in remote["room"], remote
                if "letter_draft" in steps:
                    [letter] = letters["letters"]
                    assert letter["ready"] is False and letter["answers"]
                if "letter_ready" in steps:
                    [letter] = letters["letters"]
                    assert letter["ready"] is True
                if "prepared" in steps:
                    [checklist] = letters["preparations"]
                    assert checklist["ready"] is True
                if steps[-1] == "favorable":
                    assert any(i["report"] and i["lycee_avis"] == "favorable" and i["bonus_points"] == 2500
                               for i in interviews), (first, interviews)
        assert {"letter_draft", "letter_ready", "prepared", "schedule_remote", "held", "favorable"} <= seen_steps
