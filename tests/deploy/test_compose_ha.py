"""deploy/compose-ha.yaml, the highly available shape (SPEC §9), checked statically: a Redis primary and a
replica keeping the log durably, three Sentinels watching the primary, two processes of each service with
the same command and configuration as compose.yaml's, reached only through nginx, whose configuration sends
each service's port to its two processes."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from shared.runtime.settings import ServiceSettings
from test_compose import SERVICES, _mount, _redis_conf, command_words

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROCESSES = 2


@pytest.fixture(scope="module")
def ha() -> dict:
    return yaml.safe_load((DEPLOY / "compose-ha.yaml").read_text())


@pytest.fixture(scope="module")
def single() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def words(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def durable_settings(service: dict) -> dict[str, str]:
    mounted = {target: source for source, target in (_mount(v) for v in service.get("volumes", []))}
    settings: dict[str, str] = {}
    command = words(service)
    for word in command:
        if word.endswith(".conf"):
            assert word in mounted, f"{word} is not mounted"
            settings |= _redis_conf((DEPLOY / mounted[word]).resolve().read_text())
    for i, word in enumerate(command):
        if word.startswith("--") and i + 1 < len(command):
            settings[word[2:].lower()] = command[i + 1].lower()
    return settings


def test_the_primary_and_the_replica_keep_the_log_append_only_on_volumes_of_their_own(ha: dict) -> None:
    services, named = ha["services"], set(ha["volumes"])
    volumes = []
    for name in ("redis-primary", "redis-replica"):
        settings = durable_settings(services[name])
        assert settings.get("appendonly") == "yes" and settings.get("appendfsync") == "always", name
        assert settings.get("maxmemory-policy", "noeviction") == "noeviction"
        (data,) = [source for source, target in map(_mount, services[name]["volumes"]) if target == "/data"]
        assert data in named
        volumes.append(data)
    assert len(set(volumes)) == 2
    replica = words(services["redis-replica"])
    assert replica[replica.index("--replicaof") + 1:][:2] == ["redis-primary", "6379"]


def sentinels(ha: dict) -> dict[str, str]:
    return {name: " ".join(words(s)) for name, s in ha["services"].items() if "--sentinel" in " ".join(words(s))}


def test_three_sentinels_watch_the_primary_under_the_service_name_with_a_majority_quorum(ha: dict) -> None:
    found = sentinels(ha)
    assert len(found) == 3
    for name, command in found.items():
        monitor = re.search(r"sentinel monitor (\S+) (\S+) (\d+) (\d+)", command)
        assert monitor, name
        service, host, port, quorum = monitor.groups()
        assert (host, port) == ("redis-primary", "6379")
        assert service == ha["x-passpro-env"]["PASSPRO_REDIS_SENTINEL_SERVICE"]
        assert int(quorum) == 2  # a majority of three: one Sentinel alone never fails the primary over
        assert "resolve-hostnames yes" in command  # the compose network names its hosts


def test_the_services_find_the_primary_through_the_three_sentinels_and_wait_for_a_replica(ha: dict, single: dict) -> None:
    env = ha["x-passpro-env"]
    listed = {address.split(":")[0]: address.split(":")[1] for address in env["PASSPRO_REDIS_SENTINELS"].split(",")}
    assert set(listed) == set(sentinels(ha))
    assert set(listed.values()) == {"26379"}
    assert int(env["PASSPRO_REDIS_MIN_REPLICAS"]) >= 1
    # every variable is compose.yaml's or one the services' settings read
    known = {f"PASSPRO_{name.upper()}" for name in ServiceSettings.model_fields} | set(single["x-passpro-env"])
    assert set(env) <= known, set(env) - known
    assert set(single["x-passpro-env"]) - set(env) == {"PASSPRO_REDIS_URL"}
    assert "PASSPRO_REDIS_URL" not in env


def test_two_processes_of_each_service_run_compose_yamls_command_unpublished_after_the_migrations(ha: dict, single: dict) -> None:
    services = ha["services"]
    for name in SERVICES:
        processes = {n: s for n, s in services.items() if re.fullmatch(rf"{name}-\d+", n)}
        assert len(processes) == PROCESSES, name
        for process in processes.values():
            assert command_words(process) == command_words(single["services"][name])
            assert not process.get("ports"), "only nginx is published"
            assert process["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert process["environment"] == ha["x-passpro-env"]
    assert services["migrate"]["environment"] == ha["x-passpro-env"]


def test_nginx_sends_each_services_port_to_its_two_processes(ha: dict) -> None:
    nginx = ha["services"]["nginx"]
    mounted = dict(_mount(v) for v in nginx["volumes"])
    conf = (DEPLOY / next(s for s, t in mounted.items() if t == "/etc/nginx/nginx.conf")).resolve().read_text()
    upstreams = {name: re.findall(r"server (\S+?):(\d+)", body)
                 for name, body in re.findall(r"upstream (\w+)\s*\{(.*?)\}", conf, re.S)}
    listens = dict(re.findall(r"listen (\d+);\s*location / \{ proxy_pass http://(\w+); \}", conf))
    published = {p.split(":")[0] for p in nginx["ports"]}
    for name in SERVICES:
        port = command_words(ha["services"][f"{name}-1"])[-1]
        assert sorted(upstreams[name]) == [(f"{name}-{i}", port) for i in range(1, PROCESSES + 1)]
        assert listens[port] == name
        assert port in published
    assert set(nginx["depends_on"]) == {f"{name}-{i}" for name in SERVICES for i in range(1, PROCESSES + 1)}


def test_the_services_believe_x_forwarded_for_from_nginx_alone(ha: dict) -> None:
    """Behind nginx every browser's address is nginx's, unless its X-Forwarded-For is believed: the sign-in limits
    count per address (shared/runtime/tries.py). Believed from nginx's fixed address only, which no other
    container can be given (it is outside the range the others take theirs from)."""
    nginx = ha["services"]["nginx"]
    (address,) = [n["ipv4_address"] for n in nginx["networks"].values()]
    trusted = ServiceSettings(trusted_proxies=ha["x-passpro-env"]["PASSPRO_TRUSTED_PROXIES"]).forwarded_allow_ips
    assert trusted == [address]
    (network,) = nginx["networks"]
    (pool,) = ha["networks"][network]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(pool["subnet"])
    assert ipaddress.ip_address(address) not in ipaddress.ip_network(pool["ip_range"])
    mounted = dict(_mount(v) for v in nginx["volumes"])
    conf = (DEPLOY / next(s for s, t in mounted.items() if t == "/etc/nginx/nginx.conf")).resolve().read_text()
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf  # the browser's, appended
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
