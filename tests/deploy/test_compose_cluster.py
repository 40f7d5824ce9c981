"""deploy/compose-cluster.yaml, several académies on one Redis Cluster (SPEC §9, docs/cluster.md), checked
statically: six Redis nodes in cluster mode keeping the log durably, joined once into three primaries with a
replica each; each académie a set of services running compose.yaml's commands on the cluster, with databases of
its own; the académies' hash tags on three different shards of the even split; and, where a Compose CLI is
installed, `config` accepts the file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from redis.cluster import key_slot

from shared.contracts.streams import StreamKeys
from shared.runtime.settings import ServiceSettings
from test_compose import SERVICES, _mount, _redis_conf, command_words
from test_compose_ha import words

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NODES = [f"redis-{n}" for n in range(1, 7)]
SLOTS = 16384


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((DEPLOY / "compose-cluster.yaml").read_text())


@pytest.fixture(scope="module")
def single() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def node_settings(service: dict) -> dict[str, str]:
    """redis-server's configuration file (its first argument, mounted from deploy/) and the flags after it, which
    override the file (the cluster's nodes.conf, also a .conf, is the node's state, not read here)."""
    mounted = {target: source for source, target in (_mount(v) for v in service.get("volumes", []))}
    command = words(service)
    assert command[0] == "redis-server" and command[1] in mounted, command
    settings = _redis_conf((DEPLOY / mounted[command[1]]).resolve().read_text())
    for i, word in enumerate(command):
        if word.startswith("--") and i + 1 < len(command):
            settings[word[2:].lower()] = command[i + 1].lower()
    return settings


def academies(cluster: dict) -> dict[str, dict[str, dict]]:
    """académie -> {compose service name: service} of the Passpro image."""
    found: dict[str, dict[str, dict]] = {}
    for name, service in cluster["services"].items():
        if "build" in service:
            found.setdefault(service["environment"]["PASSPRO_ACADEMIE"], {})[name] = service
    return found


def test_six_nodes_in_cluster_mode_keep_the_log_append_only_each_on_its_volume(cluster: dict) -> None:
    services, named = cluster["services"], set(cluster["volumes"])
    volumes = set()
    for node in NODES:
        settings = node_settings(services[node])
        assert settings.get("appendonly") == "yes" and settings.get("appendfsync") == "always", node
        assert settings.get("maxmemory-policy", "noeviction") == "noeviction"
        assert settings.get("cluster-enabled") == "yes", node
        assert settings.get("cluster-config-file", "").startswith("/data/"), "nodes.conf kept with the AOF"
        assert settings.get("cluster-announce-hostname") == node  # found by name when its address changes
        assert settings.get("cluster-require-full-coverage") == "no"  # a shard lost stops its académies only
        (data,) = [source for source, target in map(_mount, services[node]["volumes"]) if target == "/data"]
        assert data in named
        volumes.add(data)
    assert len(volumes) == len(NODES)


def test_the_cluster_is_made_once_of_the_six_nodes_with_a_replica_per_primary(cluster: dict) -> None:
    init = cluster["services"]["cluster-init"]
    script = " ".join(words(init))
    assert "--cluster create" in script and "--cluster-replicas 1" in script and "--cluster-yes" in script
    loop = re.search(r"for n in ([\d ]+);.*redis-\$\$n", script)
    assert loop and [f"redis-{n}" for n in loop.group(1).split()] == NODES
    assert "cluster_state:ok" in script  # a later start finds the cluster made and leaves it
    assert init["restart"] == "no"
    assert {n: c["condition"] for n, c in init["depends_on"].items()} == dict.fromkeys(NODES, "service_healthy")


def test_each_academie_runs_compose_yamls_commands_on_the_cluster_with_databases_of_its_own(
    cluster: dict, single: dict
) -> None:
    found = academies(cluster)
    assert set(found) == {"lyon", "lille", "paris"}
    known = {f"PASSPRO_{name.upper()}" for name in ServiceSettings.model_fields} | set(single["x-passpro-env"])
    databases, keystores, published = set(), set(), []
    sql = (DEPLOY / "cluster-databases.sql").read_text() + (DEPLOY / "cluster-keystores.sql").read_text()
    for academie, services in found.items():
        by_command = {" ".join(command_words(s)[:2]): n for n, s in services.items()}
        assert set(by_command) == {"migrate", *(f"serve {s}" for s in (*SERVICES, "notifier"))}, academie
        for name in SERVICES:
            service = services[by_command[f"serve {name}"]]
            assert command_words(service) == command_words(single["services"][name])
            assert service["depends_on"][by_command["migrate"]]["condition"] == "service_completed_successfully"
            published += [str(p).split(":")[0] for p in service.get("ports", [])]
        env = services[by_command["migrate"]]["environment"]
        assert all(s["environment"] == env for n, s in services.items() if not n.startswith("notifier"))
        assert set(env) <= known, set(env) - known
        assert not {"PASSPRO_REDIS_URL", "PASSPRO_REDIS_SENTINELS"} & set(env)
        assert [n.split(":")[0] for n in env["PASSPRO_REDIS_CLUSTER_NODES"].split(",")] == NODES
        assert int(env["PASSPRO_REDIS_MIN_REPLICAS"]) >= 1  # the shard's replica has each acknowledged write
        database = env["PASSPRO_DATABASE_URL"].rsplit("/", 1)[1]
        keystore = env["PASSPRO_KEYSTORE_DATABASE_URL"].rsplit("/", 1)[1]
        assert f"CREATE DATABASE {database};" in sql and f"CREATE DATABASE {keystore};" in sql
        databases.add(database)
        keystores.add(keystore)
    assert len(databases) == len(keystores) == len(found)
    assert len(published) == len(set(published)) == len(found) * len(SERVICES)


def test_the_three_academies_fall_on_the_three_shards_of_the_even_split_as_the_file_says(cluster: dict) -> None:
    """redis-cli --cluster create gives each of three primaries a third of the slots: the académies' hash tags
    (their rectorat streams' slot) land one on each, and the file's comments give the right slots."""
    said = dict(re.findall(r"# --- (\w+) \(slot (\d+)", (DEPLOY / "compose-cluster.yaml").read_text()))
    shards = set()
    for academie in academies(cluster):
        slot = key_slot(StreamKeys(academie).rectorat.encode())
        assert int(said[academie]) == slot, academie
        shards.add(min(slot * 3 // SLOTS, 2))
    assert shards == {0, 1, 2}


def compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(compose_cli() is None, reason="no Compose CLI (docker compose or docker-compose)")
def test_compose_accepts_the_file(tmp_path: Path) -> None:
    text = (DEPLOY / "compose-cluster.yaml").read_text()
    command = compose_cli()
    if command == ["docker-compose"]:  # Compose v1 (Debian's 1.29) knows no top-level name
        text = re.sub(r"^name: .*$", "", text, flags=re.M)
    copy = DEPLOY / f".compose-cluster-check-{os.getpid()}.yaml"  # beside the file: its relative paths hold
    copy.write_text(text)
    secrets = {k: "x" for k in ("POSTGRES_PASSWORD", "PASSPRO_JWT_SECRET", "PASSPRO_CHECKPOINT_KEY",
                                "PASSPRO_MASTER_KEY", "KEYSTORE_PASSWORD", "PASSPRO_SMTP_URL")}
    try:
        done = subprocess.run([*command, "-f", str(copy), "config", "-q"], capture_output=True, text=True,
                              env=os.environ | secrets, timeout=60)
    finally:
        copy.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
