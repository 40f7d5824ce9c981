"""`passpro status`'s notifier lines: the group's lag and pending entries per stream, what was sent, what
waits for a retry, the last errors; « jamais démarré » (and nothing made) when it never ran."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import asyncio
from datetime import timedelta

from notifier_world import Clock, SmtpServer, Student, settings_for

from services.cli.notifier import print_status
from services.notifier.process import opened
from tests.shared.event_factories import T0, ine_number, registered, scheduled


async def test_status_lines(log, academie, redis_url, tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "n"
    for name, value in {"PASSPRO_REDIS_URL": redis_url, "PASSPRO_ACADEMIE": academie, "PASSPRO_CAMPAIGN": CAMPAIGN,
                        "PASSPRO_DATA_DIR": str(data_dir)}.items():
        monkeypatch.setenv(name, value)
    await asyncio.to_thread(print_status)
    assert capsys.readouterr().out == "notifier : jamais démarré dans ce dossier.\n"
    assert not data_dir.exists()
    for n in (1, 2):
        student = Student(log, ine_number(30 + n))
        await student.add(registered())
        await student.add(scheduled(at=T0 + timedelta(days=10)))
    with SmtpServer() as smtp:
        async with opened(settings_for(academie, redis_url, data_dir, smtp.url), clock=Clock(T0)) as notifier:
            await notifier.create_groups()
            stream = notifier.streams[0]
            await notifier.redis.xreadgroup(notifier.group, notifier.consumer, {stream: ">"}, count=1)  # 1 pending
    await asyncio.to_thread(print_status)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "notifier:"
    assert out[1].split() == [f"{YEAR}:registration", "en", "retard", "de", "3,", "1", "en", "cours"]
    assert out[-1].startswith("  courriels envoyés : 0, en attente d'un nouvel essai : 0, rappels programmés : 0")
    with SmtpServer() as smtp:
        smtp.inbox.refuse = 1  # the first e-mail is refused, the second sent
        async with opened(settings_for(academie, redis_url, data_dir, smtp.url), clock=Clock(T0)) as notifier:
            await notifier.drain_own_pending()
            await notifier.read_new()
    await asyncio.to_thread(print_status)
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in out[1:4]] == ["0,", "0,", "0,"]
    assert "courriels envoyés : 1, en attente d'un nouvel essai : 1, rappels programmés : 2" in out[4]
    assert out[5].startswith("  erreur du ") and "SMTP (tentative 1)" in out[5] and "451" in out[5]
