"""Retention (SPEC §7 with issue 5's purge): `passpro campaign purge` deletes what the notifier holds of the
campaign — its ledger, retry queue, outbox, reminders and errors — through services/notifier/purge.py, as it
does each service's views, and the campaign's streams go with their consumer groups; another campaign's rows
and groups stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from notifier_world import Clock, Student, settings_for

from services.notifier import ledger
from services.notifier.process import opened
from services.records import retention
from tests.shared.event_factories import CAMPAIGN, T0, ine_number, registered, scheduled

AT = T0 + timedelta(days=10)
OTHER = str(int(CAMPAIGN) + 1)


def rows(engine, table) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(table)).all()


async def test_the_purge_deletes_the_campaigns_notifier_rows_and_groups_only(log, academie, redis_url, tmp_path):
    student = Student(log, ine_number(40))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    async with opened(settings_for(academie, redis_url, tmp_path / "n"), clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
        keys, redis, engine = notifier.keys, notifier.redis, notifier.engine
        other_stream = keys.service(OTHER, "registration")
        await redis.xgroup_create(other_stream, notifier.group, id="0", mkstream=True)
        with engine.begin() as conn:  # what the notifier holds of the other campaign, and errors of both
            ledger.record_sent(conn, key=f"convocation:{OTHER}:{student.ine}:e1", kind="convocation",
                               recipient="a@b.fr", stream=other_stream, position="1-0", sent_at=T0)
            ledger.queue_retry(conn, key=f"convocation:{OTHER}:{student.ine}:e2", kind="convocation",
                               recipient="a@b.fr", stream=other_stream, position="2-0", message="m", attempts=1,
                               next_attempt_at=T0, error="refus")
            ledger.keep_in_outbox(conn, key=f"convocation:{OTHER}:{student.ine}:e1", recipient="a@b.fr",
                                  subject="s", text="t", html="h", at=T0)
            ledger.set_due(conn, OTHER, student.ine, AT)
            ledger.queue_retry(conn, key=f"convocation_moved:{CAMPAIGN}:{student.ine}:e3", kind="convocation_moved",
                               recipient="a@b.fr", stream=notifier.streams[0], position="3-0", message="m",
                               attempts=1, next_attempt_at=T0, error="refus")
            ledger.record_error(conn, T0, None, f"{notifier.streams[0]} 1-0: RuntimeError: boom")
            ledger.record_error(conn, T0, f"convocation:{CAMPAIGN}:{student.ine}:e0", "SMTP : refus")
            ledger.record_error(conn, T0, None, f"{other_stream} 1-0: RuntimeError: boom")
            ledger.record_failed(conn, notifier.streams[0], "1-0", 5, "RuntimeError: boom", T0)
            ledger.record_failed(conn, other_stream, "1-0", 5, "RuntimeError: boom", T0)
            ledger.count_entry_failure(conn, notifier.streams[0], "2-0")
            ledger.count_entry_failure(conn, other_stream, "2-0")
        tables = (ledger.sent_ledger, ledger.mail_queue, ledger.outbox, ledger.due_reminders, ledger.notifier_errors,
                  ledger.failed_entries, ledger.entry_failures)
        assert set(tables) == set(ledger.metadata.sorted_tables)
        before = {t.name: len(rows(engine, t)) for t in tables}
        assert before == {"sent_ledger": 2, "mail_queue": 2, "outbox": 2, "due_reminders": 2, "notifier_errors": 3,
                          "failed_entries": 2, "entry_failures": 2}
        for stream in notifier.streams:
            assert await redis.xinfo_groups(stream)

        await retention.delete_campaign_keys(redis, keys, CAMPAIGN)
        deleted = retention.delete_view_rows(engine, "notifier", keys, CAMPAIGN)

        assert deleted == {"notifier.sent_ledger": 1, "notifier.mail_queue": 1, "notifier.outbox": 1,
                           "notifier.due_reminders": 1, "notifier.notifier_errors": 2,
                           "notifier.failed_entries": 1, "notifier.entry_failures": 1}
        for table in tables:
            left = rows(engine, table)
            assert len(left) == 1, table.name
            kept = str(tuple(left[0]))
            assert f":{CAMPAIGN}:" not in kept and f"'{CAMPAIGN}'" not in kept, table.name
            assert f":{OTHER}:" in kept or f"'{OTHER}'" in kept, table.name  # also a stream: passpro:{…}:2028:…
        for stream in notifier.streams:  # the campaign's streams are gone, and their groups with them
            assert not await redis.exists(stream)
            with pytest.raises(Exception, match="no such key"):
                await redis.xinfo_groups(stream)
        [group] = await redis.xinfo_groups(other_stream)
        assert group["name"] in (b"notifier", "notifier")


def test_passpro_campaign_purge_opens_the_notifiers_database_once_it_exists(tmp_path, monkeypatch):
    from services.cli.campaign import _other_views
    from services.notifier.process import migrate
    from services.notifier.settings import NotifierSettings

    monkeypatch.setenv("PASSPRO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PASSPRO_NOTIFIER_DATABASE_URL", raising=False)
    assert "notifier" not in [name for name, _, _ in _other_views()]  # never ran here: nothing to purge, nothing made
    assert not (tmp_path / "notifier.sqlite3").exists()
    migrate(NotifierSettings(data_dir=tmp_path))
    [(url, schema)] = [(url, schema) for name, url, schema in _other_views() if name == "notifier"]
    assert url == f"sqlite:///{tmp_path / 'notifier.sqlite3'}" and schema is None
