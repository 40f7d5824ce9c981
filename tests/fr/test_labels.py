"""The catalogue names every code the contracts define, once."""

from typing import get_args

from shared.contracts import events
from shared.fr import labels


def test_every_event_type_has_its_label() -> None:
    assert set(labels.EVENT_LABELS) == set(events.PAYLOAD_TYPES)
    assert labels.EVENT_LABELS["StudentForgotten"] == "Effacement des données personnelles"
    assert labels.EVENT_LABELS["StudentRegistered"] == "Inscription au dispositif"


def test_every_code_of_the_contracts_has_a_label() -> None:
    assert set(labels.ROLE_LABELS) == set(get_args(events.Role))
    assert set(labels.COLLEGE_AVIS_LABELS) == set(get_args(events.CollegeAvis))
    assert set(labels.LYCEE_AVIS_LABELS) == set(get_args(events.LyceeAvis))
    assert set(labels.MODE_LABELS) == set(labels.MODE_PROSE) == set(get_args(events.InterviewMode))
    assert set(labels.ASSESSMENT_LABELS) == set(get_args(events.Assessment))


def test_the_pages_unavailable_message_speaks_to_a_person() -> None:
    assert "event_id" not in labels.UNAVAILABLE_PAGE
    assert labels.UNAVAILABLE_PAGE.startswith("Le service est momentanément indisponible")


def test_every_access_channel_has_a_label() -> None:
    from shared.runtime.access_log import CHANNELS

    assert set(CHANNELS) == set(labels.CHANNEL_LABELS) == {"api", "page", "cli"}
