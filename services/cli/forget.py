"""`passpro forget INE --reason "..."`: erase a student's personal data (RGPD), as the rectorat.

Exit codes: 0 when the student is erased (also when an earlier run had done it),
1 when no campaign knows the student, 2 when the command cannot run (bad argument,
log or key store unreachable). Nothing is written when it does not exit 0.
"""

from __future__ import annotations

import argparse
import asyncio

from services.cli.common import fail, redis_client, service_settings

ERASED_FIELDS = (
    "nom, prénom, classe, référent (nom et courriel), commentaire du collège, "
    "motifs d'annulation, de retrait et de réintégration, conseils du compte rendu d'entretien"
)


def _actor(user: str):
    from pydantic import ValidationError

    from shared.contracts.events import Actor
    from shared.runtime.http.guard import french_message

    try:
        return Actor(user_id=user, role="rectorat", uai=None)
    except ValidationError as exc:
        raise ValueError(f"--user invalide : {french_message(exc.errors()[0])}") from None


def forget(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from services.records.erasure import InvalidReason, UnknownStudent, check_reason
    from services.records.erasure import forget as erase
    from shared.contracts.events import UnreadableEntry
    from shared.contracts.identifiers import check_campaign, check_ine
    from shared.contracts.streams import StreamKeys
    from shared.runtime.keys.crypto import CryptoError
    from shared.runtime.log.client import EventLog

    settings = service_settings("scoring")
    try:
        ine = check_ine(args.ine.strip().upper())
        campaign = check_campaign(args.campaign.strip()) if args.campaign else None
        reason = check_reason(args.reason)
        actor = _actor(args.user)
    except (ValueError, InvalidReason) as exc:
        return fail("forget", str(exc))

    async def run():
        keystore = await asyncio.to_thread(settings.open_keystore)
        try:
            async with redis_client(settings) as redis:
                return await erase(EventLog(redis, StreamKeys(settings.academie), keystore), keystore,
                                   campaign, ine, reason, actor)
        finally:
            keystore.close()

    try:
        done = asyncio.run(run())
    except InvalidReason as exc:
        return fail("forget", str(exc))
    except UnknownStudent as exc:
        where = "la campagne" if len(exc.campaigns) == 1 else "les campagnes"
        looked = f"rien dans {where} {', '.join(exc.campaigns)}" if exc.campaigns else "aucune campagne ne le connaît"
        return fail("forget", f"aucun élève {exc.ine} dans Passpro ({looked}) ; rien n'a été effacé.", 1)
    except CryptoError:
        return fail("forget", "la clé maître (PASSPRO_MASTER_KEY) n'ouvre pas les clés des élèves : prenez celle des services.")
    except UnreadableEntry as exc:
        return fail("forget", f"historique de l'élève illisible : {exc}")
    except (RedisError, SQLAlchemyError, OSError) as exc:
        return fail("forget", f"journal ou magasin de clés inaccessible : {exc}")
    print_forgotten(done)
    return 0


def print_forgotten(done) -> None:
    from shared.contracts.personal import ERASED

    new = any(e.recorded_now or e.key_destroyed_now for e in done.erasures)
    state = "données personnelles effacées (RGPD)" if new else "déjà effacé, rien de plus à faire"
    print(f"Élève {done.ine} : {state}.")
    for e in done.erasures:
        where = f" (position {e.position})" if e.position else ""
        recorded = ("effacement inscrit au journal" if e.recorded_now else "effacement déjà inscrit au journal") + where
        key = "clé de l'élève détruite" if e.key_destroyed_now else "clé de l'élève déjà détruite"
        print(f"  campagne {e.campaign} : {recorded} ; {key}.")
    for year in done.not_found_in:
        print(f"  campagne {year} : aucun dossier de cet élève.")
    print(f"Se lisent désormais « {ERASED} » partout (pages, API, vues, exports) : {ERASED_FIELDS}.")
    print("Le bonus et la piste d'audit sont conservés : identifiants, avis, dates et chaîne du journal restent "
          "vérifiables (passpro audit verify).")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forget",
        help="erase a student's personal data (RGPD): StudentForgotten in the log, then their key destroyed",
        description="Efface les données personnelles d'un élève (rectorat) dans chaque campagne qui le connaît. "
        "Relancer la commande termine un effacement interrompu.",
    )
    p.add_argument("ine")
    p.add_argument("--reason", required=True,
                   help="the request answered, kept in clear in the log: never the student's name "
                        "(e.g. \"Demande de la famille du 12/03/2027\")")
    p.add_argument("--campaign", help="also this campaign (a student whose entries predate sealing has no key)")
    p.add_argument("--user", default="passpro-cli", help="who erases, recorded as the rectorat actor")
    p.set_defaults(func=forget)
