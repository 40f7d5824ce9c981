"""What a running `passpro up` records in its data dir, and the one place that decides where the other
commands' settings come from (SPEC §5.1 "Beside passpro up").

`passpro up` holds an exclusive lock on `<data dir>/up.lock` for as long as it runs, and keeps
`<data dir>/up.json` (mode 0600): its pid, its state, the log's URL, the non-secret PASSPRO_* settings it
gave its services, the development secrets it keeps in the data dir, and each service's URL, pid and log
file. A command reads the record only while that lock is held: a record left by a killed `passpro up`
points at a log that is gone (or at whatever took its port since), so it is never trusted.

Every value of a command's settings comes from, in this order: its PASSPRO_* variable; the running
`passpro up` of the data dir (`--data-dir`, PASSPRO_DATA_DIR, or ./.passpro); the default — except the
log's URL, which has no default here: with neither, a command says so instead of reading whatever Redis
answers on 127.0.0.1:6379. Nothing here creates a file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

RECORD = "up.json"
LOCK = "up.lock"
# The development secrets `passpro up` keeps in its data dir when the environment gives none
# (file name -> setting); production gives its own and never reads these.
DEV_SECRETS = {"jwt-secret": "jwt_secret", "checkpoint-key": "checkpoint_key", "master.key": "master_key"}
SECRET_VARIABLES = {"PASSPRO_JWT_SECRET", "PASSPRO_CHECKPOINT_KEY", "PASSPRO_MASTER_KEY"}  # never recorded


def data_dir() -> Path:
    """The data dir every command uses: PASSPRO_DATA_DIR (which `--data-dir` sets), or ./.passpro."""
    return Path(os.environ.get("PASSPRO_DATA_DIR") or ".passpro")


# --- the running `passpro up`'s side ---------------------------------------------------------------------


class AlreadyRunning(Exception):
    """Another `passpro up` holds the data dir."""


def hold(directory: Path) -> int:
    """Take the data dir for this `passpro up` (the lock lives as long as the returned descriptor)."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(running_pid(directory)) from None
    return fd


def write_record(directory: Path, record: dict) -> None:
    """Replace the record in one step (readers never see half of it), readable by its owner only."""
    temporary = directory / f".{RECORD}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out, indent=2)
    os.replace(temporary, directory / RECORD)


def remove_record(directory: Path) -> None:
    (directory / RECORD).unlink(missing_ok=True)


# --- every other command's side ----------------------------------------------------------------------------


def is_held(directory: Path) -> bool:
    """Whether a `passpro up` runs on this data dir now (opens nothing for writing, creates nothing)."""
    try:
        fd = os.open(directory / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # nobody holds it
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we may have taken


def running_record(directory: Path) -> dict | None:
    """The record of the `passpro up` running on this data dir, or None when none runs."""
    if not is_held(directory):
        return None
    try:
        return json.loads((directory / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the lock is taken but the record not written yet: nothing to use so far


def running_pid(directory: Path) -> int | None:
    record = running_record(directory)
    return record.get("pid") if record else None


def _variables(field_name: str, field) -> list[str]:
    """The PASSPRO_* variables that set a settings field."""
    alias = field.validation_alias
    if alias is None:
        return [f"PASSPRO_{field_name.upper()}"]
    if isinstance(alias, str):
        return [alias]
    return [choice for choice in alias.choices if isinstance(choice, str)]


def cli_settings(settings_class):
    """A command's settings: environment > the running `passpro up` of the data dir > defaults (see above)."""
    directory = data_dir()
    record = running_record(directory) or {}
    recorded = record.get("environment", {})
    secrets = {setting: directory / name for name, setting in DEV_SECRETS.items()
               if name in record.get("development_secrets", [])}
    values: dict[str, object] = {}
    for name, field in settings_class.model_fields.items():
        variables = _variables(name, field)
        if any(v in os.environ for v in variables):
            continue  # the environment wins
        given = next((recorded[v] for v in variables if v in recorded), None)
        if given is not None:
            values[name] = given
        elif name in secrets:
            try:
                values[name] = secrets[name].read_text(encoding="utf-8").strip()
            except OSError:
                pass
        elif name == "redis_url":
            values[name] = ""  # no log known: the commands say so rather than read 127.0.0.1:6379
    if "data_dir" not in values and "PASSPRO_DATA_DIR" not in os.environ:
        values["data_dir"] = directory
    return settings_class(**values)
