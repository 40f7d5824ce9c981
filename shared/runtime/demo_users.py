"""Who the demo users are (`passpro up --demo`): the demo data writes as them, the sign-in page offers them."""

from __future__ import annotations

from shared.contracts.reference import Establishment, ReferenceData


def demo_establishments(reference: ReferenceData) -> tuple[list[Establishment], list[Establishment]]:
    """The two collèges and the two lycées (with at least two formations) the demo uses."""
    colleges = [e for e in reference.establishments if e.type == "college"][:2]
    lycees = [e for e in reference.establishments if e.type == "lycee" and len(e.formations) >= 2][:2]
    return colleges, lycees


def demo_users(reference: ReferenceData) -> list[tuple[str, str, str | None]]:
    """(user id, role, uai) of every demo user."""
    colleges, lycees = demo_establishments(reference)
    users: list[tuple[str, str, str | None]] = [("rectorat.demo", "rectorat", None)]
    for c in colleges:
        users += [(f"principal.{c.uai}", "principal", c.uai), (f"referent.{c.uai}", "referent", c.uai)]
    for lycee in lycees:
        users += [(f"equipe.{lycee.uai}", "lycee_staff", lycee.uai), (f"proviseur.{lycee.uai}", "proviseur", lycee.uai)]
    return users
