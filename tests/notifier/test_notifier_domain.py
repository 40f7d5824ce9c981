"""What the notifier owes, pure (services/notifier/domain.py): given a student's history and a moment, the
convocations an event causes and the reminders due, with the next moment one may become due."""

from __future__ import annotations

from datetime import timedelta

from services.notifier.domain import convocations, reminders
from services.notifier.mail import parse_smtp_url
from shared.contracts.events import InterviewRescheduled, StudentForgotten
from shared.domain.student_file import fold
from tests.shared.event_factories import (
    CAMPAIGN, COLLEGE, FORMATION, INE, INTERVIEW_ID, LYCEE, T0, cancelled, college_avis, held, lycee_avis,
    make_event, registered, scheduled, withdrawn,
)

AT = T0 + timedelta(days=10)


def history(*payloads):
    return [(make_event(p), n) for n, p in enumerate(payloads, start=1)]


def file_of(events):
    return fold(CAMPAIGN, INE, events)


def owed(events):
    """The convocations of the last event."""
    return convocations(events[-1][0], file_of(events[:-1]), file_of(events))


def test_booking_moving_and_cancelling_each_convoke_the_referent():
    events = history(registered(), scheduled(at=AT))
    [booked] = owed(events)
    assert (booked.kind, booked.referent_email, booked.referent_name) == (
        "convocation", "claire.dupont@ac-paris.fr", "Claire Dupont")
    assert booked.interview.scheduled_at == AT and booked.student_name == "Léa Martin"
    assert booked.key == f"convocation:{CAMPAIGN}:{INE}:{events[-1][0].event_id}"
    events += [(make_event(InterviewRescheduled(interview_id=INTERVIEW_ID, lycee_uai=LYCEE, formation_code=FORMATION,
                                                scheduled_at=AT + timedelta(days=2), mode="distanciel")), 3)]
    [moved] = owed(events)
    assert (moved.kind, moved.previous_at, moved.interview.scheduled_at, moved.interview.mode) == (
        "convocation_moved", AT, AT + timedelta(days=2), "distanciel")
    events += [(make_event(cancelled()), 4)]
    [gone] = owed(events)
    assert (gone.kind, gone.cancel_reason) == ("convocation_cancelled", "reporte")


def test_other_events_and_forgotten_students_convoke_nobody():
    assert owed(history(registered(), college_avis())) == []
    events = history(registered(), StudentForgotten(reason="demande de la famille"), scheduled(at=AT))
    assert owed(events) == []  # an erased student: no address to write to, nothing sent


def test_principal_reminder_three_days_before_the_first_interview_without_college_avis():
    file = file_of(history(registered(), scheduled(at=AT), scheduled("itw-2", at=AT - timedelta(days=1),
                                                                      formation="2472340631", lycee="0750784V")))
    first = AT - timedelta(days=1)
    assert reminders(file, T0) == ([], first - timedelta(days=3))
    due, after = reminders(file, first - timedelta(days=3))
    [note] = due
    assert (note.kind, note.establishment_uai, note.interview.interview_id) == ("reminder_college_avis", COLLEGE, "itw-2")
    assert note.key == f"reminder_college_avis:{CAMPAIGN}:{INE}" and after is None
    assert reminders(file, first) == ([], None)  # the interview has come: too late to remind
    with_avis = file_of(history(registered(), scheduled(at=AT), college_avis()))
    assert reminders(with_avis, AT - timedelta(days=3)) == ([], None)
    gone = file_of(history(registered(), scheduled(at=AT), withdrawn()))
    assert reminders(gone, AT - timedelta(days=3)) == ([], None)


def test_proviseur_reminder_five_days_after_a_held_interview_without_avis():
    held_at = AT + timedelta(hours=1)
    file = file_of(history(registered(), college_avis(), scheduled(at=AT), held(at=held_at)))
    assert reminders(file, held_at) == ([], held_at + timedelta(days=5))
    [note] = reminders(file, held_at + timedelta(days=5))[0]
    assert (note.kind, note.establishment_uai) == ("reminder_lycee_avis", LYCEE)
    assert note.key == f"reminder_lycee_avis:{CAMPAIGN}:{INE}:{INTERVIEW_ID}"
    avised = file_of(history(registered(), college_avis(), scheduled(at=AT), held(at=held_at), lycee_avis()))
    assert reminders(avised, held_at + timedelta(days=6)) == ([], None)


def test_smtp_urls():
    assert parse_smtp_url("smtp://mail.example:2525").port == 2525
    plain = parse_smtp_url("smtp://relais.ac-paris.fr")
    assert (plain.security, plain.port, plain.user) == ("plain", 25, None)
    tls = parse_smtp_url("smtp+starttls://passpro%40ac:p%3Ass@smtp.example")
    assert (tls.security, tls.port, tls.user, tls.password) == ("starttls", 587, "passpro@ac", "p:ss")
    assert parse_smtp_url("smtps://smtp.example").port == 465
    for bad in ("http://x", "smtp://", "mail.example:25"):
        try:
            parse_smtp_url(bad)
        except ValueError as exc:
            assert "PASSPRO_SMTP_URL" in str(exc)
        else:
            raise AssertionError(bad)


def test_production_needs_an_smtp_server():
    from services.notifier.settings import NotifierSettings

    try:
        NotifierSettings(environment="production", smtp_url="").require_smtp_in_production()
    except SystemExit as exc:
        assert "PASSPRO_SMTP_URL" in str(exc)
    else:
        raise AssertionError("production started with no SMTP server")
    NotifierSettings(environment="production", smtp_url="smtp://relais:25").require_smtp_in_production()
    NotifierSettings(environment="development", smtp_url="").require_smtp_in_production()
