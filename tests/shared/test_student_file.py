"""The student file is a fold that ignores order and repetition (views see two streams interleaved)."""

from __future__ import annotations

import itertools

import pytest

from shared.contracts.events import CampaignOpened, Event
from shared.domain.student_file import CampaignFile, empty_file, evolve, fold, fold_campaign

from event_factories import (
    CAMPAIGN,
    COLLEGE,
    FORMATION,
    INE,
    INTERVIEW_ID,
    LYCEE,
    college_avis,
    held,
    lycee_avis,
    make_event,
    registered,
    scheduled,
)


def six_event_history() -> list[tuple[Event, int]]:
    """registered, collège avis, scheduled, held, lycée avis favorable, lycée avis reserve (a correction)."""
    payloads = [registered(), college_avis(), scheduled(), held(), lycee_avis("favorable"), lycee_avis("reserve")]
    return [(make_event(p), version) for version, p in enumerate(payloads, start=1)]


HISTORY = six_event_history()
IN_ORDER = fold(CAMPAIGN, INE, HISTORY)


def test_the_file_in_log_order_says_what_happened() -> None:
    file = IN_ORDER
    assert file.version == 6 and file.versions == (1, 2, 3, 4, 5, 6)
    assert file.registered and file.active and not file.withdrawn
    assert file.college_uai == COLLEGE and file.referent is not None
    assert file.college_avis == "favorable"
    interview = file.interviews[INTERVIEW_ID]
    assert interview.status == "held" and interview.college_avis_present is True
    assert file.held_interview(LYCEE, FORMATION) == interview
    assert file.active_interview(LYCEE, FORMATION) is None
    assert file.voeux() == [(LYCEE, FORMATION)]
    assert file.any_interview_held


def test_every_order_of_the_same_events_gives_the_same_file() -> None:
    orders = 0
    for permutation in itertools.permutations(HISTORY):
        assert fold(CAMPAIGN, INE, list(permutation)) == IN_ORDER, [v for _, v in permutation]
        orders += 1
    assert orders == 720


def test_applying_an_event_twice_changes_nothing() -> None:
    assert fold(CAMPAIGN, INE, HISTORY + HISTORY) == IN_ORDER
    for event, version in HISTORY:
        assert evolve(IN_ORDER, event, version) == IN_ORDER


@pytest.mark.parametrize("repeated", range(6))
def test_a_redelivered_event_in_the_middle_changes_nothing(repeated: int) -> None:
    history = HISTORY[: repeated + 1] + [HISTORY[repeated]] + HISTORY[repeated + 1 :]
    assert fold(CAMPAIGN, INE, history) == IN_ORDER


def test_the_latest_lycee_avis_by_version_wins_whatever_the_order_of_arrival() -> None:
    favorable, correction = HISTORY[4], HISTORY[5]
    for history in (HISTORY, HISTORY[:4] + [correction, favorable]):
        file = fold(CAMPAIGN, INE, history)
        latest = file.latest_lycee_avis(LYCEE, FORMATION)
        assert latest is not None and latest.avis == "reserve" and latest.version == 6
        assert [a.avis for a in file.lycee_avis[f"{LYCEE}:{FORMATION}"]] == ["favorable", "reserve"]


def test_a_later_favorable_correction_wins_over_an_earlier_reserve() -> None:
    history = HISTORY + [(make_event(lycee_avis("favorable")), 7)]
    latest = fold(CAMPAIGN, INE, list(reversed(history))).latest_lycee_avis(LYCEE, FORMATION)
    assert latest is not None and latest.avis == "favorable" and latest.version == 7


def test_the_latest_college_avis_by_version_wins() -> None:
    correction = (make_event(college_avis("reserve")), 7)
    for history in (HISTORY + [correction], [correction] + HISTORY):
        assert fold(CAMPAIGN, INE, history).college_avis == "reserve"


def test_an_empty_file_knows_nothing() -> None:
    file = empty_file(CAMPAIGN, INE)
    assert not file.registered and not file.active and file.version == 0
    assert file.latest_lycee_avis(LYCEE, FORMATION) is None and file.voeux() == []


def test_the_campaign_file_takes_its_bonus_from_campaign_opened() -> None:
    opened = make_event(CampaignOpened(bonus_points=2500))
    other = make_event(CampaignOpened(bonus_points=10), campaign="2028")
    file = fold_campaign(CAMPAIGN, [other, opened])
    assert file == CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500, closes_at=None)
    assert not fold_campaign("2029", [opened, other]).opened


def test_a_file_model_s_copy_is_pydantic_s_copy():
    """FileModel.model_copy, the fold's faster copy, gives what pydantic's gives: fields, set fields, frozen."""
    from pydantic import BaseModel, ValidationError

    from shared.domain.student_file import Interview

    file = empty_file("2027", "123456789AB").model_copy(update={"college_uai": "0750001A"})
    interview = Interview(interview_id="i", lycee_uai="0750002B", formation_code="123")
    for model, update in [(file, {"versions": (1, 2)}), (file, None), (interview, {"status": "held", "held_at": None})]:
        ours, theirs = model.model_copy(update=update), BaseModel.model_copy(model, update=update)
        assert ours is not model and type(ours) is type(theirs)
        assert ours.__dict__ == theirs.__dict__ and ours.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
        assert ours.model_dump_json(exclude_unset=True) == theirs.model_dump_json(exclude_unset=True)
        with pytest.raises(ValidationError):
            ours.ine = "x"  # frozen, as pydantic's copy
