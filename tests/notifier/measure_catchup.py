"""Throughput of the notifier's catch-up: N students booked, then one notifier reads its group from 0 (outbox,
then SMTP to an aiosmtpd server). Run from the repository: `PYTHONPATH=. python tests/notifier/measure_catchup.py 500`
(a Redis on 127.0.0.1:6379; its académie's keys are deleted after)."""
import asyncio
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from redis.asyncio import Redis
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import EventLog
from notifier_world import Student, settings_for, SmtpServer, Clock
from services.notifier.process import opened
from tests.shared.event_factories import registered, scheduled, T0, ine_number
from datetime import timedelta

async def run(n, smtp_url, academie):
    r = Redis.from_url("redis://127.0.0.1:6379/0")
    log = EventLog(r, StreamKeys(academie))
    for i in range(n):
        s = Student(log, ine_number(i)); await s.add(registered()); await s.add(scheduled(at=T0 + timedelta(days=10)))
    async with opened(settings_for(academie, "redis://127.0.0.1:6379/0", Path(tempfile.mkdtemp()), smtp_url), clock=Clock(T0)) as nt:
        await nt.create_groups()
        t = time.perf_counter(); done = 0
        while (k := await nt.read_new(500)):
            done += k
        dt = time.perf_counter() - t
    for key in [k async for k in r.scan_iter(f"passpro:{{{academie}}}*")]:
        await r.delete(key)
    await r.aclose()
    return done, dt

async def main():
    n = int(sys.argv[1])
    done, dt = await run(n, "", "tmeasure1")
    print(f"outbox: {done} entries ({n} convocations) in {dt:.2f} s = {done/dt:.0f} entries/s")
    with SmtpServer() as smtp:
        done, dt = await run(n, smtp.url, "tmeasure2")
        print(f"smtp (aiosmtpd, one connection kept open): {done} entries, {len(smtp.inbox.messages)} e-mails in {dt:.2f} s = {len(smtp.inbox.messages)/dt:.0f} e-mails/s")


if __name__ == "__main__":
    asyncio.run(main())
