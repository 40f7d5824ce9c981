"""What a campaign's log weighs: the bench's workload (bench.workload.LogWriter, sealed as the services seal)
written into a fresh académie, then events per student, bytes of fields per entry and Redis memory per event
(MEMORY USAGE over every key of the académie); the keys are deleted after. For docs/capacity.md.

    python -m bench.log_size [--redis redis://127.0.0.1:6379/0] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from bench.log_client import log_client
from bench.workload import LogWriter
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.keys.store import KeyStore


async def main(args: argparse.Namespace) -> None:
    keys = StreamKeys(f"logsize{uuid.uuid4().hex[:8]}")
    redis = log_client(args.redis, decode_responses=True)
    keystore = KeyStore.open(f"sqlite:///{Path(tempfile.mkdtemp()) / 'keys.sqlite3'}", MasterKey(new_key()))
    pattern = f"passpro:{{{keys.academie}}}:*"
    try:
        writer = LogWriter(redis, keys, "2027", keystore)
        await writer.open_campaign()
        await writer.write(args.events)
        field_bytes = entries = memory = count = 0
        async for key in redis.scan_iter(match=pattern, count=1000):
            count += 1
            memory += await redis.memory_usage(key, samples=0) or 0
            if await redis.type(key) == "stream":
                for _, fields in await redis.xrange(key):
                    entries += 1
                    field_bytes += sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())
        print(f"{writer.students} students, {writer.events} events ({writer.events / writer.students:.1f} per student); "
              f"{entries} entries, {field_bytes / entries:.0f} B of fields per entry; Redis memory {memory / 1e6:.1f} MB "
              f"over {count} keys = {memory / writer.events:.0f} B per event")
    finally:
        async for key in redis.scan_iter(match=pattern, count=1000):
            await redis.delete(key)
        await redis.aclose()
        keystore.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=20000)
    asyncio.run(main(parser.parse_args()))
