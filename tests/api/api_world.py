"""The three services of the API tests, each an app of its own over one log (real Redis, SQLite files),
with campaign 2027 open and a few students written through the APIs at every step a tester needs:
registered at the collège, with its avis, an interview to come, an interview held with a favorable
lycée avis (so a bonus), and withdrawn."""

from __future__ import annotations

import base64
import contextlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.cli.common import app_factory
from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.runtime.http.auth import issue_token
from shared.runtime.migrations import upgrade

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
COLLEGE = "0752536Z"  # Collège Voltaire
LYCEE = "0752845K"  # LP Théophile Gautier
# Who calls each service (role, establishment, weight): mostly the roles it serves, at times one it refuses (403).
CALLERS = {
    "registration": [("principal", COLLEGE, 5), ("referent", COLLEGE, 3), ("rectorat", None, 1), ("proviseur", LYCEE, 1),
                     ("eleve", COLLEGE, 2)],
    "evaluation": [("proviseur", LYCEE, 5), ("lycee_staff", LYCEE, 3), ("rectorat", None, 1), ("principal", COLLEGE, 1)],
    "scoring": [("rectorat", None, 8), ("principal", COLLEGE, 1), ("lycee_staff", LYCEE, 1)],
}


def _settings_class(name: str):
    if name == "registration":
        from services.registration.settings import RegistrationSettings as S
    elif name == "evaluation":
        from services.evaluation.settings import EvaluationSettings as S
    else:
        from services.scoring.settings import ScoringSettings as S
    return S


@dataclass
class ApiWorld:
    redis_url: str
    academie: str
    data_dir: Path
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    master_key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    reference: ReferenceData = field(default_factory=lambda: parse_reference(default_reference_text()))
    ines: dict[str, list[str]] = field(default_factory=dict)  # what the seed wrote: "college", "lycee"
    positions: list[str] = field(default_factory=list)  # the log positions of the seed's events

    def settings(self, name: str):
        return _settings_class(name)(
            redis_url=self.redis_url,
            academie=self.academie,
            jwt_secret=self.secret,
            campaign=CAMPAIGN,
            data_dir=self.data_dir,
            read_wait_seconds=5.0,
            master_key=self.master_key,
            keystore_database_url=f"sqlite:///{self.data_dir / 'keys.sqlite3'}",
            **{f"PASSPRO_{name.upper()}_DATABASE_URL": f"sqlite:///{self.data_dir / f'{name}.sqlite3'}"},
        )

    def app(self, name: str) -> FastAPI:
        create_app, migrations = app_factory(name)
        settings = self.settings(name)
        upgrade(migrations, settings.resolved_database_url(), None)
        return create_app(settings)

    def token(self, role: str, uai: str | None) -> str:
        # a student (SPEC §6) is the seeded student with an interview at LYCEE and a held one's neighbour: the 4th
        ine = f"{270000900 + 3:09d}AP" if role == "eleve" else None
        return issue_token(self.secret, user_id=f"{role}-{uai or 'rectorat'}", role=role, uai=uai, reference=self.reference,
                           ine=ine)

    @property
    def voeux(self) -> list[tuple[str, str]]:
        """Every (lycée, formation) pair the reference offers."""
        return [(e.uai, f.code) for e in self.reference.establishments for f in e.formations]

    @property
    def colleges(self) -> list[str]:
        return [e.uai for e in self.reference.establishments if e.type == "college"]

    @property
    def lycees(self) -> list[str]:
        return [e.uai for e in self.reference.establishments if e.type == "lycee"]

    def seed(self) -> None:
        """Five students of COLLEGE at the steps a tester needs, four of them with a vœu at LYCEE."""
        formation = next(f.code for e in self.reference.establishments if e.uai == LYCEE for f in e.formations)
        voeu = {"lycee_uai": LYCEE, "formation_code": formation}
        now = datetime.now(UTC)
        principal = {"Authorization": f"Bearer {self.token('principal', COLLEGE)}"}
        proviseur = {"Authorization": f"Bearer {self.token('proviseur', LYCEE)}"}
        ines = [f"{270000900 + n:09d}AP" for n in range(5)]
        with contextlib.ExitStack() as stack:
            reg = stack.enter_context(TestClient(self.app("registration"), raise_server_exceptions=True))
            ev = stack.enter_context(TestClient(self.app("evaluation"), raise_server_exceptions=True))

            def post(client: TestClient, path: str, headers: dict, body: dict) -> None:
                answer = client.post(path, json={**body, "event_id": str(uuid.uuid4())}, headers=headers)
                assert answer.status_code == 201, (path, answer.text)
                self.positions.extend(answer.json()["positions"].values())

            for n, ine in enumerate(ines):
                post(reg, "/api/students", principal, {
                    "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE, "last_name": f"Élève{n}",
                    "first_name": "Test", "class_name": "3e A",
                    "referent": {"user_id": "ref-1", "name": "Mme Garnier", "email": "referent@ac-paris.fr"},
                })
                post(reg, f"/api/students/{ine}/college-avis", principal,
                     {"college_uai": COLLEGE, "avis": "favorable", "comment": "Projet réfléchi."})
                if n == 0:
                    continue  # registered, with the collège avis
                held = n in (2, 3)
                when = now - timedelta(days=2) if held else now + timedelta(days=10)
                post(reg, f"/api/students/{ine}/interviews", principal,
                     {**voeu, "scheduled_at": when.isoformat(), "mode": "presentiel"})
                if held:
                    post(ev, f"/api/students/{ine}/interviews/held", proviseur, {
                        **voeu, "held_at": when.isoformat(),
                        "report": {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": "Visiter l'atelier."},
                    })
                if n == 3:
                    post(ev, f"/api/students/{ine}/lycee-avis", proviseur, {**voeu, "avis": "favorable"})
                if n == 4:
                    post(reg, f"/api/students/{ine}/withdrawal", principal, {"reason": "Autre projet."})
        self.ines = {"college": ines, "lycee": ines[1:]}
