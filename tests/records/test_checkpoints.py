"""Signed checkpoints (issue 4, item 6): each stream's head signed with HMAC-SHA256 under a key Redis never
sees, kept in scoring's database, only ever over a history just checked; by `passpro audit checkpoint` and by
the running scoring service.
"""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from audited import CAMPAIGN, Audited, close, make_audited
from event_factories import PRINCIPAL, registered
from services.cli import main
from services.cli.up import _dev_secret
from services.records import checkpoints as checkpointing
from services.cli.common import scoring_app as create_app
from services.scoring.app import MIGRATIONS
from services.records.checkpoints import load_checkpoints
from services.scoring.views import checkpoints
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

INE, OTHER_INE = "000000001CP", "000000002CP"


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path):
    w = make_audited(redis_url, academie, f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None, tmp_path)
    w.open_campaign()
    w.journey(INE)
    yield w
    close(w)


def signed(w: Audited) -> dict[str, tuple[str, int, str]]:
    """The latest checkpoint of each stream, by short name: (entry id, length, hash)."""
    return {w.keys.stream_name(cp.stream): (cp.entry_id, cp.length, cp.hash) for cp in load_checkpoints(w.engine)}


def head(w: Audited, key: str) -> tuple[str, int, str]:
    entries = w.entries(key)
    return entries[-1][0], len(entries), entries[-1][1]["hash"]


def test_each_streams_head_is_signed_with_the_key(world):
    outcomes = world.checkpoint()
    assert [(world.keys.stream_name(o.stream), o.status) for o in outcomes] == [
        ("rectorat", "recorded"), (f"{CAMPAIGN}:registration", "recorded"), (f"{CAMPAIGN}:evaluation", "recorded"),
        (f"{CAMPAIGN}:scoring", "empty"),  # erasures only: none here
    ]
    assert signed(world) == {
        "rectorat": head(world, world.keys.rectorat),
        f"{CAMPAIGN}:registration": head(world, world.stream("registration")),
        f"{CAMPAIGN}:evaluation": head(world, world.stream("evaluation")),
    }
    stored = load_checkpoints(world.engine)
    assert all(cp.is_authentic(world.key) for cp in stored)
    assert not any(cp.is_authentic(b"not the key, but as long as one..") for cp in stored)


def test_an_unchanged_head_is_not_signed_again_and_a_new_one_extends_the_last(world):
    world.checkpoint()
    assert {o.status for o in world.checkpoint()} == {"unchanged", "empty"}  # empty: scoring's stream
    world.append(OTHER_INE, [("registration", registered(), PRINCIPAL)])

    outcomes = {world.keys.stream_name(o.stream): o.status for o in world.checkpoint()}
    assert outcomes == {
        "rectorat": "unchanged", f"{CAMPAIGN}:registration": "recorded", f"{CAMPAIGN}:evaluation": "unchanged",
        f"{CAMPAIGN}:scoring": "empty",
    }
    assert signed(world)[f"{CAMPAIGN}:registration"] == head(world, world.stream("registration"))
    assert len(load_checkpoints(world.engine)) == 4


def test_a_history_rewritten_before_the_last_checkpoint_is_refused_not_signed(world):
    world.checkpoint()
    entries = world.entries(world.stream("registration"))
    world.redis.xdel(world.stream("registration"), entries[1][0])
    world.journey(OTHER_INE)  # new entries, so there would be a head to sign

    outcomes = {world.keys.stream_name(o.stream): o for o in world.checkpoint()}
    refused = outcomes[f"{CAMPAIGN}:registration"]
    assert refused.status == "refused" and refused.checkpoint is None
    # The chain is followed from the last checkpoint on; what vanished before it shows in the length.
    assert [p.code for p in refused.problems] == ["length_differs"]
    assert outcomes[f"{CAMPAIGN}:evaluation"].status == "recorded"
    assert len(load_checkpoints(world.engine, [world.stream("registration")])) == 1


def test_a_first_checkpoint_is_refused_over_a_broken_chain(world):
    entries = world.entries(world.stream("evaluation"))
    world.rewrite(world.stream("evaluation"), [(i, f | {"payload": f["payload"].replace("favorable", "reserve")}) for i, f in entries])
    outcomes = {world.keys.stream_name(o.stream): o for o in world.checkpoint()}
    assert outcomes[f"{CAMPAIGN}:evaluation"].status == "refused"
    assert {p.code for p in outcomes[f"{CAMPAIGN}:evaluation"].problems} == {"hash_mismatch"}
    assert f"{CAMPAIGN}:evaluation" not in signed(world)


def test_a_checkpoint_whose_signature_was_altered_is_not_built_on(world):
    world.checkpoint()
    with world.engine.begin() as conn:
        conn.execute(update(checkpoints).where(checkpoints.c.stream == world.keys.rectorat).values(hmac="0" * 64))
    outcomes = {world.keys.stream_name(o.stream): o for o in world.checkpoint()}
    assert outcomes["rectorat"].status == "refused"
    assert [p.code for p in outcomes["rectorat"].problems] == ["checkpoint_forged"]


# --- the command -------------------------------------------------------------------------------------


def run_cli(world: Audited, monkeypatch, *args: str, key: bool = True) -> int:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PASSPRO_SCORING_DATABASE_SCHEMA", raising=False)
    if not key:
        monkeypatch.delenv("PASSPRO_CHECKPOINT_KEY")
    return main(list(args))


def test_audit_checkpoint_signs_the_heads_and_needs_the_key(world, monkeypatch, capsys):
    assert run_cli(world, monkeypatch, "audit", "checkpoint", key=False) == 2
    assert "PASSPRO_CHECKPOINT_KEY" in capsys.readouterr().err
    assert load_checkpoints(world.engine) == []

    assert run_cli(world, monkeypatch, "audit", "checkpoint") == 0
    out = capsys.readouterr().out
    entry_id, length, _ = head(world, world.stream("registration"))
    assert f"{CAMPAIGN}:registration : point de contrôle signé à {entry_id} ({length} entrées" in out

    world.redis.xdel(world.stream("evaluation"), world.entries(world.stream("evaluation"))[0][0])
    assert run_cli(world, monkeypatch, "audit", "checkpoint") == 1
    assert f"{YEAR}:evaluation : REFUSÉ" in capsys.readouterr().out


def test_a_short_checkpoint_key_is_refused(world, monkeypatch):
    monkeypatch.setenv("PASSPRO_CHECKPOINT_KEY", "too-short")
    from services.scoring.settings import ScoringSettings

    with pytest.raises(ValueError, match="PASSPRO_CHECKPOINT_KEY"):
        ScoringSettings()


def test_passpro_up_keeps_one_development_checkpoint_key_beside_its_data(tmp_path):
    key = _dev_secret(tmp_path, "checkpoint-key")
    assert len(key) >= 32 and _dev_secret(tmp_path, "checkpoint-key") == key
    assert key != _dev_secret(tmp_path)  # not the JWT secret
    assert (tmp_path / "checkpoint-key").stat().st_mode & 0o777 == 0o600


# --- inside the running scoring service ----------------------------------------------------------------


def test_the_running_scoring_service_signs_the_heads_periodically(world):
    from services.scoring.settings import ScoringSettings

    settings = ScoringSettings(
        redis_url=world.redis_url,
        academie=world.academie,
        jwt_secret="s" * 48,
        campaign=CAMPAIGN,
        data_dir=world.data_dir,
        checkpoint_key=world.checkpoint_key,
        checkpoint_interval_seconds=0.05,
        PASSPRO_SCORING_DATABASE_URL=world.database_url,
    )
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 30  # a bound on waiting, not a speed requirement
        while len(signed(world)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        world.journey(OTHER_INE)
        while signed(world).get(f"{CAMPAIGN}:evaluation") != head(world, world.stream("evaluation")) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert signed(world)[f"{CAMPAIGN}:evaluation"] == head(world, world.stream("evaluation"))
    assert signed(world)[f"{CAMPAIGN}:registration"] == head(world, world.stream("registration"))
    assert world.verify().ok


def test_without_a_key_the_service_runs_no_checkpointing(world):
    from services.scoring.settings import ScoringSettings

    settings = ScoringSettings(redis_url=world.redis_url, academie=world.academie, jwt_secret="s" * 48, checkpoint_key="")
    assert checkpointing.background_tasks(settings) == {}  # nothing for create_app to run beside the consumer


def test_the_checkpoints_migration_goes_down_and_up_again(tmp_path):
    from alembic import command

    from shared.runtime.migrations import alembic_config

    url = f"sqlite:///{tmp_path / 'scoring.sqlite3'}"
    upgrade(MIGRATIONS, url, None)
    command.downgrade(alembic_config(MIGRATIONS, url, None), "0001")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE name = 'checkpoints'").first() is None
        upgrade(MIGRATIONS, url, None)
        with engine.connect() as conn:
            assert conn.execute(select(checkpoints)).all() == []
    finally:
        engine.dispose()
