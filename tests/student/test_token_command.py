"""`passpro token --role eleve --uai U --ine INE --user ID` (SPEC §6): a student's token names their collège and their
INE; without an INE, with a malformed one, with a lycée, or an INE for another role, it says why and exits 2."""

from __future__ import annotations

import jwt
import pytest

from services.cli import main

SECRET = "s" * 48
COLLEGE, LYCEE = "0752536Z", "0752845K"


@pytest.fixture
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PASSPRO_JWT_SECRET", SECRET)
    monkeypatch.setenv("PASSPRO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PASSPRO_REDIS_URL", raising=False)


def test_a_students_token_names_their_college_and_ine(environment, capsys):
    assert main(["token", "--role", "eleve", "--uai", "0752536z", "--ine", "123456789ab", "--user", "eleve-lea"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="passpro")
    assert (claims["role"], claims["uai"], claims["ine"], claims["sub"]) == ("eleve", COLLEGE, "123456789AB", "eleve-lea")


@pytest.mark.parametrize(
    "args",
    [["--role", "eleve", "--uai", COLLEGE], ["--role", "eleve", "--uai", COLLEGE, "--ine", "12345"],
     ["--role", "eleve", "--uai", LYCEE, "--ine", "123456789AB"], ["--role", "referent", "--uai", COLLEGE, "--ine", "123456789AB"]],
    ids=["no INE", "malformed INE", "a lycée", "an INE for a référent"],
)
def test_a_token_that_does_not_fit_is_refused(environment, capsys, args):
    assert main(["token", *args, "--user", "x"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "passpro token" in captured.err
