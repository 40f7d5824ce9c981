"""`passpro audit student|exports|verify|checkpoint` and `passpro export affelnet`: what was done, what was sent,
and whether the log and the projection can still be trusted.

Exit codes: 0 when all is well, 1 when `verify` finds a difference or a checkpoint is refused,
2 when the command cannot run (bad argument, log or database unreachable, key missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from datetime import datetime
from pathlib import Path

from services.cli.common import Refused, audit_client, existing_database, fail, read_keyring, service_settings


def paris(moment: datetime | str | None) -> str:
    """A time as the CLI's records show it: Paris time, day first, to the second (« — » when there is none)."""
    from shared.fr.formats import paris as paris_time  # lazily: Babel costs 0.1 s of every command's start

    return paris_time(moment, "seconds", missing="—")


@contextlib.contextmanager
def scoring_engine(settings):
    from shared.runtime.db import make_engine

    engine = make_engine(existing_database(settings, "scoring"), settings.database_schema or "scoring")
    try:
        yield engine
    finally:
        engine.dispose()


def require_migrated(engine) -> None:
    from services.scoring.app import MIGRATIONS
    from shared.runtime.migrations import is_up_to_date

    if not is_up_to_date(MIGRATIONS, engine):
        raise Refused("la base de scoring n'est pas à jour : lancez d'abord passpro migrate.")


@contextlib.asynccontextmanager
async def scoring_records(settings, *, up_to_date: bool = False, keystore: bool = False):
    """What the rectorat's record commands (audit verify and checkpoint, campaign archive, purge and import)
    work on, opened and closed in one place: the audit's log client, scoring's engine (Refused unless its
    migrations are all applied, when `up_to_date`) and, when `keystore`, the key store (else None)."""
    async with audit_client(settings) as redis:
        with scoring_engine(settings) as engine:
            if up_to_date:
                await asyncio.to_thread(require_migrated, engine)
            store = await asyncio.to_thread(settings.open_keystore) if keystore else None
            try:
                yield redis, engine, store
            finally:
                if store is not None:
                    store.close()


def unreachable():
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    return (RedisError, SQLAlchemyError, OSError)


def _short(settings, key: str) -> str:
    from shared.contracts.streams import StreamKeys

    return StreamKeys(settings.academie).stream_name(key)


# --- audit student ----------------------------------------------------------------------------


def _count(n: int, word: str) -> str:
    from shared.fr.formats import plural  # lazily, as paris above

    return plural(n, word)


def _points(n: int) -> str:
    return _count(n, "point")


def print_student(report: dict) -> None:
    from shared.fr.labels import LYCEE_AVIS_LABELS

    names = {}
    for item in report["timeline"]:
        if item["establishment"]:
            names[item["establishment"]["uai"]] = item["establishment"]["name"]
    cut = report["cut"]
    if report["as_of"] is None:
        state = "état actuel"
    elif cut["student_position"]:
        state = f"état à la position {cut['student_position']} ({paris(cut['recorded_until'])})"
    else:
        state = f"état au {paris(cut['recorded_until'])}"
    print(f"Élève {report['ine']} — campagne {report['campaign']} — {state} (heure de Paris)")
    print()
    for n, item in enumerate(report["timeline"], start=1):
        actor = item["actor"]
        place = item["establishment"]
        origin = f", {place['name'] or 'établissement inconnu'} ({place['uai']})" if place else ", rectorat"
        print(f"{n:3}. {paris(item['occurred_at'])}  {item['label']}")
        where = f"position {item['position']}, version {item['student_version']}"
        print(f"     par {actor['user_id']} ({actor['role']}){origin} — {where}")
        for line in item["details"]:
            print(f"     {line}")
        print(f"     bonus après : {_points(item['bonus_after']['total_bonus_points'])}")
    if not report["timeline"]:
        print("     (aucun événement à cette date)")
    for bad in report.get("unreadable", []):
        print(f"     entrée illisible {bad['position']} : {bad['reason']}")
    print()
    withdrawn = " — élève retiré du dispositif" if report["withdrawn"] else ""
    per_avis = _points(report["campaign_bonus_points"])
    print(f"Bonus : {_points(report['total_bonus_points'])}{withdrawn} (campagne : {per_avis} par avis favorable)")
    for v in report["voeux"]:
        name = names.get(v["lycee_uai"])
        lycee = f"{v['lycee_uai']} ({name})" if name else v["lycee_uai"]
        avis = LYCEE_AVIS_LABELS.get(v["lycee_avis"], v["lycee_avis"]).lower() if v["lycee_avis"] else "pas encore donné"
        print(f"  vœu {lycee} / {v['formation_code']} : avis du lycée {avis} → {_points(v['bonus_points'])}")


def audit_student(args: argparse.Namespace) -> int:
    from services.records.access import log_cli_read
    from services.records.timeline import InvalidAsOf
    from services.records.timeline import student_audit
    from shared.contracts.identifiers import check_campaign, check_ine
    from shared.contracts.streams import StreamKeys
    from shared.runtime.access_log import AUDIT_TIMELINE
    from shared.runtime.reference_store import load_reference

    settings = service_settings("scoring")
    try:
        ine = check_ine(args.ine.strip().upper())
        year = check_campaign(args.campaign) if args.campaign else settings.campaign
    except ValueError as exc:
        return fail("audit student", str(exc))

    async def run():
        async with audit_client(settings) as redis:
            keys = StreamKeys(settings.academie)
            reference = await load_reference(redis, keys)
            names = {e.uai: e.name for e in reference.establishments}
            show_time = datetime.isoformat if args.json else paris
            keyring = await read_keyring(settings, [(year, ine)])
            report = await student_audit(redis, keys, year, ine, args.as_of, names, keyring, show_time=show_time)
            if report is not None:
                await log_cli_read(redis, keys, year, [ine], AUDIT_TIMELINE)
            return report

    try:
        report = asyncio.run(run())
    except InvalidAsOf as exc:
        return fail("audit student", str(exc))
    except unreachable() as exc:
        return fail("audit student", f"journal inaccessible : {exc}")
    if report is None:
        return fail("audit student", f"aucun élève {ine} dans la campagne {year}.")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print_student(report)
    return 0


# --- audit exports and export affelnet --------------------------------------------------------


def audit_exports(args: argparse.Namespace) -> int:
    from services.scoring.affelnet import list_exports

    settings = service_settings("scoring")
    try:
        with scoring_engine(settings) as engine:
            items, _ = list_exports(engine, args.campaign)
    except unreachable() as exc:
        return fail("audit exports", f"base de scoring inaccessible ou non migrée (passpro migrate) : {exc}")
    for item in items:
        item["positions"] = {_short(settings, k): v for k, v in sorted(item["positions"].items())}
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not items:
        print("Aucun export Affelnet enregistré.")
        return 0
    print("Exports Affelnet (heure de Paris) :")
    for item in items:
        covered = ", ".join(f"{s} {p}" for s, p in item["positions"].items()) or "aucune"
        print(
            f"  n° {item['id']}  {paris(item['exported_at'])}  campagne {item['campaign']}  par {item['user_id']}  "
            f"{_count(item['rows'], 'ligne')}  SHA-256 {item['sha256']}"
        )
        print(f"        positions couvertes : {covered}")
    return 0


async def _log_export(settings, year: str, content: str, user: str) -> None:
    from services.records.access import log_cli_read
    from shared.contracts.streams import StreamKeys
    from shared.runtime.access_log import AFFELNET_EXPORT, ines_of_affelnet_file

    async with audit_client(settings) as redis:
        await log_cli_read(redis, StreamKeys(settings.academie), year, ines_of_affelnet_file(content), AFFELNET_EXPORT, user)


def export_affelnet(args: argparse.Namespace) -> int:
    from services.records.access import cli_user
    from services.scoring.affelnet import export_affelnet as export
    from shared.contracts.identifiers import check_campaign

    settings = service_settings("scoring")
    try:
        year = check_campaign(args.campaign) if args.campaign else settings.campaign
    except ValueError as exc:
        return fail("export affelnet", str(exc))
    user = cli_user(args.user)
    try:
        with scoring_engine(settings) as engine:
            done = export(engine, year, user)
    except unreachable() as exc:
        return fail("export affelnet", f"base de scoring inaccessible ou non migrée (passpro migrate) : {exc}")
    try:  # each student the file names is logged before the file is written
        asyncio.run(_log_export(settings, year, done.content, user))
    except unreachable() as exc:
        return fail("export affelnet", f"journal des consultations inaccessible, fichier non écrit : {exc}")
    # Bytes as recorded: the SHA-256 in the exports table is the file's, line endings included.
    Path(args.out).write_bytes(done.content.encode("utf-8"))
    covered = ", ".join(f"{_short(settings, s)} {p}" for s, p in sorted(done.positions.items())) or "aucune"
    print(f"Fichier Affelnet {year} écrit dans {args.out} : {_count(done.rows, 'ligne')}, SHA-256 {done.sha256}.")
    print(f"Export enregistré (par {user}), positions couvertes : {covered}.")
    return 0


# --- audit verify and audit checkpoint --------------------------------------------------------


def print_verify(report, settings) -> None:
    from shared.contracts.streams import StreamKeys

    campaigns = ", ".join(report.campaigns) or "aucune"
    print(f"Vérification du journal — académie {settings.academie}, campagne(s) {campaigns}")
    for year, purge in sorted(report.purged.items()):  # services/records/retention.py
        reimported = any(report.entries.get(k) for k in StreamKeys(settings.academie).campaign_streams(year))
        state = "réimportée depuis, vérifiée ci-dessous" if reimported else "ses flux sont vides, à dessein"
        print(f"  campagne {year} purgée le {paris(purge['purged_at'])} par {purge['user_id']} "
              f"(archive SHA-256 {purge['archive_sha256']}) : {state}")
    for key, count in report.entries.items():
        behind = report.not_yet_applied.get(key, 0)
        lag = f" ({behind} pas encore appliquées par la projection, non comparées)" if behind else ""
        print(f"  {_short(settings, key)} : {_count(count, 'entrée')}, chaîne suivie{lag}")
    print(f"  flux d'élèves recoupés : {report.student_streams}")
    print(f"  points de contrôle vérifiés : {report.checkpoints_checked}")
    if not report.checkpoints_checked:
        print("  (aucun : seule la chaîne, sans clé, protège l'historique — lancez passpro audit checkpoint)")
    positions = ", ".join(f"{_short(settings, k)} {v}" for k, v in sorted(report.positions.items())) or "aucune"
    print(
        f"  projection comparée jusqu'à ses positions ({positions}) : "
        f"{report.rows_compared.get('student_totals', 0)} élèves, {report.rows_compared.get('voeux', 0)} vœux"
    )
    for note in report.unreadable:
        print(f"  entrée illisible (lettre morte) : {note}")
    if report.ok:
        print("Aucune différence : l'historique est intact et la projection le reflète.")
        return
    print(f"{len(report.differences)} différence(s) :")
    for difference in report.differences:
        print(f"  - {difference}")


def audit_verify(args: argparse.Namespace) -> int:
    from services.records.verify import verify_log
    from services.scoring.affelnet import ProjectionMoving
    from shared.contracts.identifiers import check_campaign
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")
    try:
        campaign = check_campaign(args.campaign) if args.campaign else None
    except ValueError as exc:
        return fail("audit verify", str(exc))

    async def run():
        async with scoring_records(settings) as (redis, engine, _):
            return await verify_log(
                redis, engine, StreamKeys(settings.academie), campaign=campaign,
                checkpoint_key=settings.checkpoint_key_bytes(),
            )

    try:
        report = asyncio.run(run())
    except ProjectionMoving as exc:
        return fail("audit verify", f"{exc}; relancez la vérification")
    except unreachable() as exc:
        return fail("audit verify", f"journal ou base de scoring inaccessible (passpro migrate ?) : {exc}")
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print_verify(report, settings)
    return 0 if report.ok else 1


def audit_checkpoint(args: argparse.Namespace) -> int:
    from services.records.checkpoints import record_checkpoints
    from shared.contracts.identifiers import check_campaign
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")
    key = settings.checkpoint_key_bytes()
    if key is None:
        return fail("audit checkpoint", "PASSPRO_CHECKPOINT_KEY doit être fournie (la clé des points de contrôle).")
    try:
        campaign = check_campaign(args.campaign) if args.campaign else None
    except ValueError as exc:
        return fail("audit checkpoint", str(exc))

    async def run():
        async with scoring_records(settings) as (redis, engine, _):
            return await record_checkpoints(redis, engine, StreamKeys(settings.academie), key, campaign=campaign)

    try:
        outcomes = asyncio.run(run())
    except unreachable() as exc:
        return fail("audit checkpoint", f"journal ou base de scoring inaccessible (passpro migrate ?) : {exc}")
    refused = False
    for outcome in outcomes:
        name = _short(settings, outcome.stream)
        cp = outcome.checkpoint
        if outcome.status == "recorded":
            print(f"{name} : point de contrôle signé à {cp.entry_id} ({_count(cp.length, 'entrée')}, hash {cp.hash})")
        elif outcome.status == "unchanged":
            print(f"{name} : inchangé depuis le point de contrôle du {paris(cp.recorded_at)} ({cp.entry_id})")
        elif outcome.status == "empty":
            print(f"{name} : vide")
        else:
            refused = True
            print(f"{name} : REFUSÉ, l'historique ne suit pas le dernier point de contrôle :")
            for problem in outcome.problems:
                print(f"  - {problem}")
    return 1 if refused else 0


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="timelines, exports, verification and checkpoints of the log").add_subparsers(
        dest="action", required=True
    )
    p = audit.add_parser("student", help="a student's timeline and bonus, now or as of a time or a log position")
    p.add_argument("ine")
    p.add_argument("--as-of", help="RFC 3339 time with offset, or a log position (ms-seq)")
    p.add_argument("--campaign")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=audit_student)

    p = audit.add_parser("exports", help="the Affelnet exports made: who, when, positions covered, rows, SHA-256")
    p.add_argument("--campaign")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=audit_exports)

    p = audit.add_parser("verify", help="replay the log, check its chain and checkpoints, compare with the projection")
    p.add_argument("--campaign")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=audit_verify)

    p = audit.add_parser("checkpoint", help="sign the head of each stream (needs PASSPRO_CHECKPOINT_KEY)")
    p.add_argument("--campaign")
    p.set_defaults(func=audit_checkpoint)

    export = sub.add_parser("export", help="exports").add_subparsers(dest="action", required=True)
    p = export.add_parser("affelnet", help="write the Affelnet file and record the export")
    p.add_argument("--out", required=True)
    p.add_argument("--campaign")
    p.add_argument("--user", help="who exports (recorded); default cli:<login>")
    p.set_defaults(func=export_affelnet)
