"""The formations' tests (SPEC §6) run in the services' world: its fixtures (a fresh académie, the services in
process) and its helpers (tests/services), shared rather than copied, as tests/records does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SERVICES_TESTS = Path(__file__).resolve().parent.parent / "services"
if str(SERVICES_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVICES_TESTS))

if "services_world" in sys.modules:
    _world = sys.modules["services_world"]
else:
    _spec = importlib.util.spec_from_file_location("services_world", SERVICES_TESTS / "conftest.py")
    _world = importlib.util.module_from_spec(_spec)
    sys.modules["services_world"] = _world
    _spec.loader.exec_module(_world)

globals().update({name: value for name, value in vars(_world).items() if not name.startswith("__")})
