"""An entry whose handling fails 5 times is acknowledged (the group goes on) and kept with its error for
operators: `passpro status` counts it, `passpro notifier failed` lists it, `passpro notifier retry` has the
notifier handle it again at its next tick — sent then, it leaves the list."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import argparse
import asyncio
from datetime import timedelta

import sqlalchemy as sa
from notifier_world import Clock, Student, settings_for

from services.cli.notifier import notifier_failed, notifier_retry, print_status
from services.notifier import ledger
from services.notifier.process import opened
from services.notifier.worker import MAX_DELIVERIES, status
from tests.shared.event_factories import T0, ine_number, registered, scheduled

AT = T0 + timedelta(days=10)


def rows(engine, table) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(table)).all()


async def test_an_entry_failing_5_times_is_listed_and_retried_by_hand(log, academie, redis_url, tmp_path,
                                                                       monkeypatch, capsys):
    data_dir = tmp_path / "n"
    for name, value in {"PASSPRO_REDIS_URL": redis_url, "PASSPRO_ACADEMIE": academie, "PASSPRO_CAMPAIGN": CAMPAIGN,
                        "PASSPRO_DATA_DIR": str(data_dir)}.items():
        monkeypatch.setenv(name, value)
    bad = Student(log, ine_number(70))
    await bad.add(registered())
    await bad.add(scheduled(at=AT))
    other = Student(log, ine_number(71))
    await other.add(registered())
    await other.add(scheduled(at=AT))
    settings = settings_for(academie, redis_url, data_dir)
    async with opened(settings, clock=Clock(T0)) as notifier:
        read_student = notifier.log.read_student

        async def broken(campaign, ine):
            if ine in (bad.ine, other.ine):
                raise RuntimeError("clé de l'élève illisible")
            return await read_student(campaign, ine)

        notifier.log.read_student = broken
        await notifier.create_groups()
        stream = notifier.keys.service(CAMPAIGN, "registration")
        await notifier.read_new()
        for _ in range(MAX_DELIVERIES - 2):
            await notifier.claim_stale(0)
        info = await notifier.redis.xpending(stream, notifier.group)
        assert info["pending"] == 2 and rows(notifier.engine, ledger.failed_entries) == []  # 4 failures each
        await notifier.claim_stale(0)  # the 5th
        assert (await notifier.redis.xpending(stream, notifier.group))["pending"] == 0  # acknowledged: it goes on
        failed = rows(notifier.engine, ledger.failed_entries)
        assert len(failed) == 2 and {f.attempts for f in failed} == {MAX_DELIVERIES}
        assert all("clé de l'élève illisible" in f.error and not f.retry for f in failed)
        assert rows(notifier.engine, ledger.outbox) == []

        seen = await status(settings, notifier.redis, notifier.engine)
        assert seen["failed_entries"] == 2 and [f["stream"] for f in seen["failed"]] == [f"{YEAR}:registration"] * 2
        await asyncio.to_thread(print_status)
        assert "entrées abandonnées après 5 échecs : 2" in capsys.readouterr().out

        assert notifier_failed(argparse.Namespace()) == 0
        listed = capsys.readouterr().out
        failed.sort(key=lambda f: f.entry_id)
        entry = failed[0].entry_id  # bad's booking (written first)
        assert f"{YEAR}:registration {entry}  5 échecs" in listed and "2 entrée(s)" in listed

        assert await notifier.retry_failed() == 0  # nothing before an operator asks
        wrong = argparse.Namespace(stream=f"{YEAR}:registration", entry_id="1-1", all=False)
        assert notifier_retry(wrong) == 1
        assert not any(f.retry for f in rows(notifier.engine, ledger.failed_entries))  # nothing marked
        assert notifier_retry(argparse.Namespace(stream=None, entry_id=None, all=False)) == 2

        notifier.log.read_student = read_student  # the cause fixed
        one = argparse.Namespace(stream=f"{YEAR}:registration", entry_id=entry, all=False)
        assert notifier_retry(one) == 0
        assert await notifier.retry_failed() == 1
        [left] = rows(notifier.engine, ledger.failed_entries)
        assert left.entry_id == failed[1].entry_id  # only the one asked for
        [kept] = rows(notifier.engine, ledger.outbox)  # the convocation, from the retried InterviewScheduled
        assert kept.key.startswith(f"convocation:{YEAR}:{bad.ine}:")
        assert notifier_retry(argparse.Namespace(stream=None, entry_id=None, all=True)) == 0
        assert await notifier.retry_failed() == 1
        assert rows(notifier.engine, ledger.failed_entries) == []
        assert sorted(k.key.split(":")[2] for k in rows(notifier.engine, ledger.outbox)) == [bad.ine, other.ine]
