"""The notifier's FastStream wiring, in memory (TestRedisBroker: no stream contents, ids nor groups — delivery
itself is tested against the real Redis in the other files): one group subscriber per service stream of the
campaign, each passing its stream's entries to the notifier's handler."""

from __future__ import annotations

from faststream.redis import TestRedisBroker

from services.notifier.settings import NotifierSettings
from services.notifier.worker import Notifier


class Recorder(Notifier):
    def __init__(self, settings) -> None:
        super().__init__(settings, redis=None, engine=None, event_log=None, reference=None)
        self.seen: list[tuple[str, dict]] = []

    async def handle(self, stream: str, entry_id: str, fields: dict) -> None:
        self.seen.append((stream, fields))


async def test_one_group_subscriber_per_campaign_stream_hands_entries_to_the_handler():
    notifier = Recorder(NotifierSettings(academie="tbroker", campaign="2027"))
    broker = notifier.broker()
    subscribers = list(broker.subscribers)
    assert sorted(s.stream_sub.name for s in subscribers) == sorted(notifier.streams)
    assert {(s.stream_sub.group, s.stream_sub.consumer) for s in subscribers} == {("notifier", "notifier-1")}
    async with TestRedisBroker(broker) as test_broker:
        await test_broker.publish({"event_type": "InterviewScheduled", "student_ine": "123456789AB"},
                                  stream="passpro:{tbroker}:2027:registration")
        await test_broker.publish({"event_type": "InterviewHeld", "student_ine": "123456789AB"},
                                  stream="passpro:{tbroker}:2027:evaluation")
    assert notifier.seen == [
        ("passpro:{tbroker}:2027:registration", {"event_type": "InterviewScheduled", "student_ine": "123456789AB"}),
        ("passpro:{tbroker}:2027:evaluation", {"event_type": "InterviewHeld", "student_ine": "123456789AB"}),
    ]
