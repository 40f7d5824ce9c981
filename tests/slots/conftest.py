"""The slots' tests (SPEC §7) run in the services' world: its fixtures (a fresh académie, the services in
process) and its helpers (tests/services: matrix, ...; tests/shared: event_factories), shared, not copied."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for folder in (TESTS / "services", TESTS / "shared"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

if "services_world" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("services_world", TESTS / "services" / "conftest.py")
    _world = importlib.util.module_from_spec(_spec)
    sys.modules["services_world"] = _world
    _spec.loader.exec_module(_world)

# The fixtures and names the tests take from `conftest` (pytest finds fixtures among a conftest's attributes).
globals().update({name: value for name, value in vars(sys.modules["services_world"]).items() if not name.startswith("__")})
