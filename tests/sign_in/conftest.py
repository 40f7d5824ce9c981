"""Fixtures of the sign-in tests: the académie's OpenID Connect provider, started once for the session."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator

import pytest

from academie_provider import AcademieProvider, running_provider
from sign_in_world import Passpro  # noqa: F401 - what tests/services/matrix.py takes from `conftest`

# As tests/records/conftest.py: the services' world under this module too, so that a module of tests/services
# (or matrix.py) that says `from conftest import ...` finds its names whichever conftest was imported last.
globals().update({name: value for name, value in vars(sys.modules["services_world"]).items() if name[:2] != "__"})


@pytest.fixture(scope="session")
def academie_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcademieProvider]:
    """node-oidc-provider on a free port (its npm packages installed once by `npm ci`), stopped at the end."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        reason = "Node.js and npm are needed for the OIDC provider (apt-get install nodejs npm)"
        if os.environ.get("PASSPRO_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider
