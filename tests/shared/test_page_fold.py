"""A student's events of one page folded into one draft (`evolve_all`, the projection's `fold_batch`) give the
very file that `evolve` gives one event after the other — equal, and stored as the same JSON text (the consumer's
FileCache trusts a kept file by its text) — for the bench's histories, in pages and in any order, with repeats;
and the file the draft started from is never changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import reduce

from hypothesis import given, settings, strategies as st

from bench.workload import Places, entry_fields, student_history
from shared.contracts.events import (
    Event,
    event_from_fields,
    InterviewReportCorrected,
    InterviewRescheduled,
    ReferentReassigned,
    Report,
    StudentAccessIssued,
    StudentForgotten,
)
from shared.domain.student_file import StudentFile, empty_file, evolve, evolve_all

from event_factories import (
    CAMPAIGN,
    FORMATION,
    INE,
    LYCEE,
    NEW_REFERENT,
    PROVISEUR,
    T0,
    cancelled,
    college_avis,
    held,
    letter_saved,
    lycee_avis,
    make_event,
    preparation,
    registered,
    reinstated,
    scheduled,
    withdrawn,
)

History = list[tuple[Event, int]]


def one_by_one(file: StudentFile, events: History) -> StudentFile:
    return reduce(lambda f, ev: evolve(f, *ev), events, file)


def in_pages(file: StudentFile, events: History, cuts: list[int]) -> StudentFile:
    """The events folded a page at a time, the pages ending at `cuts`."""
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        file = evolve_all(file, events[start:end])
    return file


def assert_same_file(page_fold: StudentFile, reference: StudentFile) -> None:
    """Equal, and stored as the same text (which needs the same order of arrival: a map lists its entries
    in the order they first came, with `evolve` alone as well)."""
    assert page_fold == reference
    assert page_fold.model_dump_json() == reference.model_dump_json()


def bench_histories(students: int, seed: int) -> list[tuple[str, History]]:
    """Each student's INE and whole history as the bench log writes it (student versions 1, 2, …)."""
    places, rng = Places.from_reference(), random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    histories = []
    for n in range(students):
        ine, steps = student_history(n, places, rng, now)
        events = [
            (event_from_fields(entry_fields(step, ine, CAMPAIGN, now.isoformat(), f"00000000-0000-4000-8000-{n:06d}{v:06d}")), v)
            for v, step in enumerate(steps, start=1)
        ]
        histories.append((ine, events))
    return histories


BENCH = bench_histories(300, seed=16)


def test_the_bench_histories_folded_in_pages_give_the_files_folded_event_by_event() -> None:
    rng = random.Random(5)
    events_folded = 0
    for ine, history in BENCH:
        empty = empty_file(CAMPAIGN, ine)
        reference = one_by_one(empty, history)
        assert_same_file(evolve_all(empty, history), reference)
        cuts = sorted(rng.sample(range(1, len(history)), k=min(2, len(history) - 1)))
        shuffled = rng.sample(history, len(history))
        assert_same_file(in_pages(empty, shuffled, cuts), one_by_one(empty, shuffled))
        assert in_pages(empty, shuffled, cuts) == reference
        events_folded += len(history)
    assert events_folded > 2_000  # the histories are whole campaigns, not a registration each


def test_a_page_of_events_already_applied_gives_back_the_very_same_file() -> None:
    ine, history = BENCH[0]
    file = one_by_one(empty_file(CAMPAIGN, ine), history)
    assert evolve_all(file, history) is file
    assert evolve_all(file, []) is file


OTHER_INTERVIEW, OTHER_LYCEE = "itw-0002", "0750784V"
# What a log holds once at most: a student registered, erased; an interview scheduled, held. (Some of their
# fields are kept from whichever came last, not from the highest version: `evolve` is order-free for the
# histories a log holds — the bench's, above — not for any list of events. The draft must equal it anyway.)
ONCE = [
    registered(),
    StudentForgotten(reason="Demande de la famille"),
    scheduled(mode="distanciel", at=T0 + timedelta(days=12)),
    scheduled(OTHER_INTERVIEW, lycee=OTHER_LYCEE),
    held(),
    held(OTHER_INTERVIEW, lycee=OTHER_LYCEE, college_avis_present=False),
]
REPEATABLE = [
    college_avis("favorable"),
    college_avis("reserve"),
    ReferentReassigned(referent=NEW_REFERENT),
    cancelled(),
    cancelled(OTHER_INTERVIEW, lycee=OTHER_LYCEE),
    InterviewRescheduled(
        interview_id="itw-0001", lycee_uai=LYCEE, formation_code=FORMATION,
        scheduled_at=T0 + timedelta(days=14), slot_id=None, mode="presentiel",
    ),
    InterviewReportCorrected(
        interview_id="itw-0001", lycee_uai=LYCEE, formation_code=FORMATION,
        report=Report(motivation="fragile", chances_of_success="fragile", advice="Revoir le projet."),
    ),
    lycee_avis("favorable"),
    lycee_avis("reserve"),
    lycee_avis("favorable", OTHER_INTERVIEW, lycee=OTHER_LYCEE),
    withdrawn(),
    reinstated(),
    letter_saved(ready=False),
    letter_saved(ready=True),
    preparation(),
    preparation(OTHER_INTERVIEW),
    StudentAccessIssued(issued_by="referent-dupont", expires_at=T0 + timedelta(days=30)),
]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A student's events with the versions they made (one version per event), in log order."""
    payloads = draw(st.lists(st.sampled_from(REPEATABLE), min_size=1, max_size=12))
    for once in ONCE:
        if draw(st.booleans()):
            payloads.insert(draw(st.integers(0, len(payloads))), once)
    actor = {"LyceeAvisGiven": PROVISEUR}
    return [(make_event(p, actor=actor.get(p.EVENT_TYPE)), version) for version, p in enumerate(payloads, start=1)]


@settings(max_examples=300, deadline=None)
@given(history=histories(), data=st.data())
def test_any_order_with_repeats_in_any_pages_gives_the_event_by_event_fold_of_that_order(history: History, data: st.DataObject) -> None:
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history), max_size=4))))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(delivered) - 1)), max_size=3)) - {len(delivered)})
    assert_same_file(in_pages(empty_file(CAMPAIGN, INE), delivered, cuts), one_by_one(empty_file(CAMPAIGN, INE), delivered))


@settings(max_examples=150, deadline=None)
@given(history=histories(), data=st.data())
def test_the_file_a_page_starts_from_is_never_changed(history: History, data: st.DataObject) -> None:
    """The draft is private to the call: the stored file (kept by the FileCache, shared) stays as it was."""
    split = data.draw(st.integers(0, len(history)))
    before = one_by_one(empty_file(CAMPAIGN, INE), history[:split])
    text, interviews = before.model_dump_json(), {k: i.model_dump_json() for k, i in before.interviews.items()}
    evolve_all(before, history[split:])
    evolve(before, *history[-1])
    assert before.model_dump_json() == text
    assert {k: i.model_dump_json() for k, i in before.interviews.items()} == interviews
