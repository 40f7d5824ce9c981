"""The rectorat's decisions and the bonus rule (SPEC §3.2): pure functions of the log's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from histories import (
    CAMPAIGN,
    FORMATION,
    INE,
    LYCEE,
    NOT_OPENED,
    NOW,
    OPEN,
    OTHER_FORMATION,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    college_avis,
    given,
    held,
    lycee_avis,
    registered,
    reinstated,
    scheduled,
    withdrawn,
)
from services.scoring.domain import OpenCampaign, bonus_of, decide
from shared.domain.errors import RuleViolation
from shared.contracts.events import Actor, CampaignOpened, Event
from shared.domain.student_file import CampaignFile, fold

CAMPAIGN_POINTS = 3100  # not the default, so that the bonus visibly comes from the campaign


def interviewed(*avis_of_voeux: tuple[str, str, str | None]):
    """A registered student with one held interview per (lycée, formation, lycée avis or None)."""
    events = [registered(), college_avis()]
    for n, (lycee, formation, avis) in enumerate(avis_of_voeux):
        interview_id = f"itw-{n}"
        events += [scheduled(interview_id, lycee, formation), held(interview_id, lycee, formation)]
        if avis is not None:
            events.append(lycee_avis(avis, interview_id, lycee, formation))
    return events


# --- opening a campaign ----------------------------------------------------------------------------


def test_opening_a_campaign_records_its_bonus_and_closing_time():
    closes_at = NOW + timedelta(days=90)
    assert decide(NOT_OPENED, NOW, OpenCampaign(CAMPAIGN_POINTS, closes_at)) == CampaignOpened(
        bonus_points=CAMPAIGN_POINTS, closes_at=closes_at
    )


def test_a_campaign_without_closing_time_stays_open():
    assert decide(NOT_OPENED, NOW, OpenCampaign(2500, None)).closes_at is None


def test_a_campaign_is_opened_only_once():
    with pytest.raises(RuleViolation) as caught:
        decide(OPEN, NOW, OpenCampaign(2500, None))
    assert caught.value.code == "campaign_already_open" and caught.value.status == 409


def test_a_campaign_cannot_close_in_the_past():
    with pytest.raises(RuleViolation) as caught:
        decide(NOT_OPENED, NOW, OpenCampaign(2500, NOW - timedelta(seconds=1)))
    assert caught.value.code == "closes_in_past"


@pytest.mark.parametrize(
    ("campaign", "now"),
    [
        ("2019", NOW),
        ("0000", NOW),  # no such date as 1 September of year 0: still in the past, never a 500
        ("2026", NOW),  # the rentrée of the year before
        ("2027", datetime(2027, 9, 1, 0, 0, tzinfo=ZoneInfo("Europe/Paris"))),  # its rentrée has come, in Paris
        ("2027", datetime(2027, 8, 31, 22, 0, tzinfo=UTC)),  # already 1 September in Paris
    ],
)
def test_a_campaign_whose_rentree_is_past_is_refused(campaign, now):
    with pytest.raises(RuleViolation) as caught:
        decide(CampaignFile(campaign=campaign), now, OpenCampaign(2500, None))
    assert caught.value.code == "campaign_in_past" and caught.value.status == 409


@pytest.mark.parametrize(
    ("campaign", "now"),
    [("2027", NOW), ("2028", NOW), ("2027", datetime(2027, 8, 31, 21, 59, tzinfo=UTC))],  # 23:59 on 31 August in Paris
)
def test_a_campaign_of_a_rentree_to_come_opens(campaign, now):
    assert decide(CampaignFile(campaign=campaign), now, OpenCampaign(2500, None)) == CampaignOpened(bonus_points=2500)


@pytest.mark.parametrize(
    "now",
    [datetime(2027, 8, 31, 21, 59, tzinfo=UTC), datetime(2027, 8, 31, 22, 0, tzinfo=UTC),
     datetime(2027, 8, 31, 23, 30, tzinfo=UTC), datetime(2027, 9, 1, 0, 30, tzinfo=UTC)],
)
def test_the_services_default_campaign_is_one_that_opens_at_any_moment(now, monkeypatch):
    """PASSPRO_CAMPAIGN unset: the campaign in force is counted in Paris as the rentrée is (on a machine in UTC,
    the two hours before midnight UTC on 31 August gave the campaign whose rentrée had just come)."""
    from shared.runtime import settings

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return now.astimezone(tz) if tz else now.replace(tzinfo=None)

    monkeypatch.setattr(settings, "datetime", Frozen)
    monkeypatch.setattr(settings, "date", type("FrozenDate", (settings.date,), {"today": classmethod(lambda c: now.date())}))
    campaign = settings.ServiceSettings.model_fields["campaign"].default_factory()
    assert decide(CampaignFile(campaign=campaign), now, OpenCampaign(2500, None)) == CampaignOpened(bonus_points=2500)


# --- the bonus rule --------------------------------------------------------------------------------


def test_a_favorable_lycee_avis_earns_the_campaigns_points_for_that_voeu():
    bonus = bonus_of(given(*interviewed((LYCEE, FORMATION, "favorable"))), CAMPAIGN_POINTS)
    assert (bonus.ine, bonus.campaign) == (INE, CAMPAIGN)
    assert [(v.lycee_uai, v.formation_code, v.lycee_avis, v.bonus_points) for v in bonus.voeux] == [
        (LYCEE, FORMATION, "favorable", CAMPAIGN_POINTS)
    ]
    assert bonus.total_bonus_points == CAMPAIGN_POINTS


def test_a_reserve_lycee_avis_earns_nothing():
    bonus = bonus_of(given(*interviewed((LYCEE, FORMATION, "reserve"))), CAMPAIGN_POINTS)
    assert [v.bonus_points for v in bonus.voeux] == [0]
    assert bonus.total_bonus_points == 0


def test_a_voeu_without_lycee_avis_earns_nothing_yet():
    bonus = bonus_of(given(*interviewed((LYCEE, FORMATION, None))), CAMPAIGN_POINTS)
    assert [(v.lycee_avis, v.bonus_points, v.interview_held) for v in bonus.voeux] == [(None, 0, True)]


def test_the_total_is_the_sum_over_the_students_voeux():
    history = interviewed(
        (LYCEE, FORMATION, "favorable"),
        (LYCEE, OTHER_FORMATION, "reserve"),
        (OTHER_LYCEE, OTHER_LYCEE_FORMATION, "favorable"),
    )
    bonus = bonus_of(given(*history), CAMPAIGN_POINTS)
    assert {(v.lycee_uai, v.formation_code): v.bonus_points for v in bonus.voeux} == {
        (LYCEE, FORMATION): CAMPAIGN_POINTS,
        (LYCEE, OTHER_FORMATION): 0,
        (OTHER_LYCEE, OTHER_LYCEE_FORMATION): CAMPAIGN_POINTS,
    }
    assert bonus.total_bonus_points == 2 * CAMPAIGN_POINTS


def test_the_latest_lycee_avis_of_a_voeu_counts():
    history = [*interviewed((LYCEE, FORMATION, "favorable")), lycee_avis("reserve")]
    assert bonus_of(given(*history), CAMPAIGN_POINTS).total_bonus_points == 0
    history = [*interviewed((LYCEE, FORMATION, "reserve")), lycee_avis("favorable")]
    assert bonus_of(given(*history), CAMPAIGN_POINTS).total_bonus_points == CAMPAIGN_POINTS


def test_a_withdrawn_students_bonuses_are_zero():
    history = [*interviewed((LYCEE, FORMATION, "favorable"), (OTHER_LYCEE, OTHER_LYCEE_FORMATION, "favorable")), withdrawn()]
    bonus = bonus_of(given(*history), CAMPAIGN_POINTS)
    assert bonus.withdrawn is True
    assert [v.bonus_points for v in bonus.voeux] == [0, 0]
    assert bonus.total_bonus_points == 0


def test_a_reinstated_student_gets_their_bonus_back():
    history = [*interviewed((LYCEE, FORMATION, "favorable")), withdrawn(), reinstated()]
    assert bonus_of(given(*history), CAMPAIGN_POINTS).total_bonus_points == CAMPAIGN_POINTS


def test_a_voeu_remembers_whether_the_college_avis_was_there_at_the_interview():
    history = [registered(), scheduled(), held(college_avis_present=False), lycee_avis("favorable")]
    (voeu,) = bonus_of(given(*history), CAMPAIGN_POINTS).voeux
    assert voeu.college_avis_present is False
    assert voeu.bonus_points == CAMPAIGN_POINTS  # a missing collège avis is flagged, not penalised


def test_the_bonus_does_not_depend_on_the_order_events_arrive_in():
    """Views see two service streams interleaved: the fold keys on student versions, not arrival order."""
    history = [*interviewed((LYCEE, FORMATION, "favorable")), lycee_avis("reserve")]
    versioned = [(_event(payload), version) for version, payload in enumerate(history, start=1)]
    shuffled = fold(CAMPAIGN, INE, list(reversed(versioned)))
    assert bonus_of(shuffled, CAMPAIGN_POINTS) == bonus_of(given(*history), CAMPAIGN_POINTS)
    assert bonus_of(shuffled, CAMPAIGN_POINTS).total_bonus_points == 0


def _event(payload) -> Event:
    return Event(
        event_id=uuid4(),
        occurred_at=NOW,
        campaign=CAMPAIGN,
        student_ine=INE,
        actor=Actor(user_id="someone", role="rectorat", uai=None),
        payload=payload,
    )


# --- erasing a student ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["Demande de Léa", "demande de MARTIN (famille)", "Martin-Léa a demandé"])
def test_an_erasure_reason_naming_the_student_is_refused_by_the_decision_itself(reason):
    from services.scoring.domain import Forget, decide_forget

    with pytest.raises(RuleViolation) as refused:
        decide_forget(given(registered()), Forget(reason))
    assert refused.value.code == "reason_names_student" and "ni le prénom" in refused.value.message


@pytest.mark.parametrize("reason", ["Demande de la famille (RGPD)", "Martinique : départ", "Léanne, sa sœur, a écrit"])
def test_an_erasure_reason_that_only_contains_the_name_inside_a_word_is_kept(reason):
    from services.scoring.domain import Forget, decide_forget

    assert decide_forget(given(registered()), Forget(reason)).reason == reason
