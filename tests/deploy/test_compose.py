"""deploy/compose.yaml runs what the CLI offers, keeps the log on a persistent, append-only volume,
and starts the services only after the migrations (SPEC §4, §5)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
SERVICES = ("registration", "evaluation", "scoring")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _passpro(*args: str) -> str:
    installed = shutil.which("passpro")
    command = [installed] if installed else [sys.executable, "-c", "import sys; from services.cli import main; sys.exit(main())"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, f"passpro {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@cache
def cli_help() -> str:
    return _passpro("--help")


@cache
def serve_help() -> str:
    return _passpro("serve", "--help")


def offers(help_text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", help_text) is not None


def image_services(compose: dict) -> dict[str, dict]:
    """The compose services that run the Passpro image (built from this repository)."""
    images = {s.get("image") for s in compose["services"].values() if "build" in s}
    return {n: s for n, s in compose["services"].items() if "build" in s or (s.get("image") in images - {None})}


def command_words(service: dict) -> list[str]:
    command = service.get("command")
    assert command, "a service running the Passpro image must say which passpro command it runs"
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def test_the_passpro_image_runs_migrate_and_the_three_services(compose: dict) -> None:
    runs = {name: command_words(s)[0] for name, s in image_services(compose).items()}
    assert set(runs) >= {"migrate", *SERVICES}
    assert runs["migrate"] == "migrate"
    assert all(runs[name] == "serve" for name in SERVICES)


def test_every_command_of_the_passpro_image_is_a_subcommand_of_the_cli(compose: dict) -> None:
    for name, service in image_services(compose).items():
        first = command_words(service)[0]
        assert offers(cli_help(), first), f"{name} runs `passpro {first}`, which `passpro --help` does not list"


def test_each_service_serves_itself_on_a_port_the_cli_accepts(compose: dict) -> None:
    services = compose["services"]
    assert offers(serve_help(), "--port")
    for name in SERVICES:
        words = command_words(services[name])
        assert words[:2] == ["serve", name]
        assert offers(serve_help(), name), f"`passpro serve --help` does not offer {name}"
        port = words[words.index("--port") + 1]
        published = [str(p) for p in services[name].get("ports", [])]
        if published:
            assert any(p.endswith(f":{port}") for p in published), f"{name} listens on {port} but publishes {published}"


def test_the_image_entrypoint_is_the_passpro_command() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT\s+\["passpro"\]', dockerfile, re.M)


def test_redis_keeps_the_log_on_a_named_volume_mounted_at_data(compose: dict) -> None:
    redis = compose["services"]["redis"]
    named = set(compose.get("volumes") or {})
    mounts = [_mount(v) for v in redis.get("volumes", [])]
    assert any(source in named and target == "/data" for source, target in mounts), mounts


def test_redis_runs_with_append_only_persistence(compose: dict) -> None:
    redis = compose["services"]["redis"]
    command = redis.get("command") or []
    words = command.split() if isinstance(command, str) else [str(w) for w in command]
    settings: dict[str, str] = {}
    # A config file given to redis-server, mounted from deploy/: read it.
    mounted = {target: source for source, target in (_mount(v) for v in redis.get("volumes", []))}
    for word in words:
        if word.endswith(".conf"):
            source = mounted.get(word)
            assert source, f"{word} is not mounted into the redis container"
            settings |= _redis_conf((DEPLOY / source).resolve().read_text())
    # Flags on the command line override the file.
    for i, word in enumerate(words):
        if word.startswith("--") and i + 1 < len(words):
            settings[word[2:].lower()] = words[i + 1].lower()
    assert settings.get("appendonly") == "yes"
    assert settings.get("dir", "/data") == "/data"
    assert settings.get("appendfsync", "everysec") in ("always", "everysec")
    assert settings.get("maxmemory-policy", "noeviction") == "noeviction"


def test_the_three_services_wait_for_the_migrations(compose: dict) -> None:
    services = compose["services"]
    for name in SERVICES:
        depends = services[name].get("depends_on")
        assert depends, f"{name} has no depends_on"
        if isinstance(depends, list):
            pytest.fail(f"{name} depends on {depends} without waiting for the migrations to complete")
        assert "migrate" in depends, f"{name} does not depend on migrate"
        assert depends["migrate"].get("condition") == "service_completed_successfully"


def test_migrate_and_the_services_share_one_configuration(compose: dict) -> None:
    services = compose["services"]
    envs = [services[name].get("environment") for name in ("migrate", *SERVICES)]
    assert all(env == envs[0] for env in envs)
    for variable in ("PASSPRO_REDIS_URL", "PASSPRO_DATABASE_URL", "PASSPRO_JWT_SECRET"):
        assert variable in envs[0]


def _mount(volume: str | dict) -> tuple[str, str]:
    if isinstance(volume, dict):
        return str(volume.get("source", "")), str(volume.get("target", ""))
    source, _, rest = volume.partition(":")
    return source, rest.split(":")[0]


def _redis_conf(text: str) -> dict[str, str]:
    settings = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            settings[key.lower()] = value.strip().strip('"').lower()
    return settings


@pytest.mark.parametrize("file", ["compose.yaml", "compose-ha.yaml"])
def test_the_notifier_runs_once_after_the_migrations_with_smtp_required(file: str) -> None:
    """SPEC §7's e-mails in each shape: one notifier process (one consumer name), `passpro serve notifier`, the
    shared configuration plus its SMTP server (required: production has no local outbox) and sender."""
    from services.notifier.settings import NotifierSettings

    text = (DEPLOY / file).read_text()
    data = yaml.safe_load(text)
    notifiers = {n: s for n, s in image_services(data).items() if "notifier" in command_words(s)[:2]}
    assert list(notifiers) == ["notifier"], notifiers
    notifier = notifiers["notifier"]
    assert command_words(notifier)[:2] == ["serve", "notifier"] and offers(serve_help(), "notifier")
    assert notifier["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert not notifier.get("ports")  # its /status and /readyz stay inside
    env, shared = notifier["environment"], data["x-passpro-env"]
    assert {k: env[k] for k in shared} == shared
    assert env["PASSPRO_ENVIRONMENT"] == "production"
    assert re.search(r"PASSPRO_SMTP_URL: \$\{PASSPRO_SMTP_URL:\?", text)  # no SMTP, no start
    assert env["PASSPRO_MAIL_FROM"] and env["PASSPRO_REGISTRATION_URL"]
    # `passpro campaign purge`, from any container, reaches the notifier's database
    assert shared["PASSPRO_NOTIFIER_DATABASE_URL"].startswith("postgresql+psycopg://")
    read = {f"PASSPRO_{name.upper()}" for name in NotifierSettings.model_fields} | {"PASSPRO_NOTIFIER_DATABASE_URL"}
    assert set(env) - set(shared) <= read, set(env) - read  # its own variables are ones it reads
    assert ("PASSPRO_REDIS_SENTINELS" in env) == (file == "compose-ha.yaml")


@pytest.mark.parametrize("file", ["compose.yaml", "compose-cluster.yaml"])
def test_the_operator_names_the_tls_proxy_whose_forwarded_address_is_believed_loopback_when_unset(file: str) -> None:
    """No proxy in these files: the operator's TLS proxy in front is named by PASSPRO_TRUSTED_PROXIES from the
    shell (deploy/README.md); unset, the services believe X-Forwarded-For from loopback only, never from anyone."""
    from shared.runtime.settings import ServiceSettings

    env = next(v for k, v in yaml.safe_load((DEPLOY / file).read_text()).items() if k.startswith("x-") and "PASSPRO_HOST" in v)
    given = re.fullmatch(r"\$\{PASSPRO_TRUSTED_PROXIES:-(.*)\}", env["PASSPRO_TRUSTED_PROXIES"])
    assert given, env["PASSPRO_TRUSTED_PROXIES"]
    assert ServiceSettings(trusted_proxies=given.group(1)).forwarded_allow_ips == ["127.0.0.1", "::1"]
