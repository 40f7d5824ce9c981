"""The services' world (tests/services/conftest.py: a fresh académie, the services in process, `Passpro`, ...)
for the test folders that run in it (records, letters, student, formations, slots, sign-in): loaded once as
the module `services_world`, with tests/services' helpers (histories, matrix, in_process) importable."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SERVICES_TESTS = Path(__file__).resolve().parent / "services"


def load() -> ModuleType:
    """tests/services/conftest.py as `services_world` (once per run), tests/services on sys.path."""
    if str(SERVICES_TESTS) not in sys.path:
        sys.path.insert(0, str(SERVICES_TESTS))
    if "services_world" not in sys.modules:
        spec = importlib.util.spec_from_file_location("services_world", SERVICES_TESTS / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["services_world"] = module
        spec.loader.exec_module(module)
    return sys.modules["services_world"]


def share(conftest: dict[str, Any]) -> None:
    """A conftest's namespace takes the world's fixtures and names (pytest finds fixtures among its attributes)."""
    conftest.update({name: value for name, value in vars(load()).items() if not name.startswith("__")})
