"""The rights matrix of SPEC §1 (tests/services/test_rights_matrix.py), run once more with the académie
provider's access tokens: the same tests and tables, in a world whose every caller presents a real token of
the provider (authorization code + PKCE for the API's resource indicator) carrying the directory claims that
the default claims mapping turns into the caller's role and establishment. A parametrisation of the world,
not a copy of the tests: the test functions are the matrix module's own."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync

from academie_provider import AcademieProvider
from sign_in_world import ProviderPasspro  # puts tests/services on the path, as tests/records does

# matrix.py takes Passpro `from conftest`: whichever conftest pytest imported last (another folder's, when
# several are run at once). It is the services' conftest it means, so that is the one it finds here.
_last_conftest = sys.modules.get("conftest")
sys.modules["conftest"] = sys.modules["services_world"]
try:
    import matrix
    from test_rights_matrix import (  # noqa: F401 - collected here too, with this module's `world`
        scene,
        test_a_read_shows_exactly_what_spec_1_lets_the_caller_see,
        test_a_write_is_accepted_or_refused_exactly_as_spec_1_says,
        test_the_rectorat_reads_a_student_nobody_registered_as_not_found,
    )
finally:
    if _last_conftest is not None:
        sys.modules["conftest"] = _last_conftest


@pytest.fixture(scope="module")
def world(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, academie_provider: AcademieProvider
) -> Iterator[matrix.World]:
    """matrix.world, with the services accepting the provider's tokens and every caller presenting one."""
    academie = "m" + uuid.uuid4().hex[:10]
    data_dir: Path = tmp_path_factory.mktemp("provider-world")
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        passpro = ProviderPasspro(
            redis_url=redis_url, academie=academie, data_dir=data_dir, redis=client, provider=academie_provider,
        )
        try:
            passpro.open_campaign()
            with contextlib.ExitStack() as stack:
                clients = {name: stack.enter_context(passpro.client(name)) for name in ("registration", "evaluation", "scoring")}
                yield matrix.World(passpro, clients)
        finally:
            matrix.delete_academie_keys(client, academie)


def test_the_callers_here_present_the_providers_tokens(world):
    """The world above is the provider's: its callers' tokens are RS256 JWTs of the provider, not HS256."""
    import jwt

    token = world.headers(matrix.PRINCIPAL)["Authorization"].removeprefix("Bearer ")
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], claims["iss"], claims["aud"]) == ("RS256", world.passpro.provider.issuer, world.passpro.provider.audience)
    assert "role" not in claims and claims["FrEduFonctAdm"] == "DIR"
