"""Past events for the domain tests: a student's file built by folding realistic events, no I/O.
The events are the tests' one set of builders (tests/shared/event_factories.py), re-exported here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.contracts.events import Payload
from shared.domain.student_file import CampaignFile, StudentFile, fold

from event_factories import (  # noqa: F401  (re-exported for the domain tests)
    CAMPAIGN,
    COLLEGE,
    FORMATION,
    INE,
    LYCEE,
    NEW_REFERENT,
    REFERENT,
    REPORT,
    cancelled,
    college_avis,
    held,
    lycee_avis,
    make_event,
    registered,
    reinstated,
    scheduled,
    withdrawn,
)

OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
OTHER_FORMATION = "2473121332"  # offered by the same lycée
OTHER_LYCEE = "0750788Z"  # LP Marcel Deprez
OTHER_LYCEE_FORMATION = "2472550731"

NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
OPEN = CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500)
NOT_OPENED = CampaignFile(campaign=CAMPAIGN)
CLOSED = CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500, closes_at=NOW - timedelta(minutes=1))


def given(*payloads: Payload, ine: str = INE) -> StudentFile:
    """The student's file after these events, in this order (student versions 1, 2, ...)."""
    start = NOW - timedelta(days=30)
    events = [(make_event(p, ine=ine, occurred_at=start + timedelta(minutes=n)), n + 1) for n, p in enumerate(payloads)]
    return fold(CAMPAIGN, ine, events)


def nothing() -> StudentFile:
    """A student the log knows nothing about."""
    return given()
