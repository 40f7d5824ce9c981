"""`passpro campaign open|archive|purge|import`: a campaign from its opening to its archive, its purge once
the appeal period has run out, and its re-import for an audit (services/records/archive.py, retention.py).

Exit codes: 0 when done, 1 when the purge or the import is refused by a rule (nothing was changed),
2 when the command cannot run (bad argument, unreadable file, log or database unreachable, key missing).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import hashlib
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.cli import calendar
from services.cli.audit import scoring_records, unreachable
from services.cli.common import SERVICES, Refused, fail, open_campaign, service_settings

ACADEMIE = re.compile(r"^[a-z0-9-]{1,40}$")


def clock() -> datetime:
    """Now, for the purge's delay (the tests set it here rather than wait two months)."""
    return datetime.now(UTC)


def _os_reason(exc: OSError) -> str:
    """Why a file could not be read or written, in French (the system's own text is English)."""
    reasons = {
        errno.ENOENT: "fichier ou dossier introuvable", errno.EISDIR: "c'est un dossier",
        errno.ENOTDIR: "un élément du chemin n'est pas un dossier", errno.EACCES: "accès refusé",
        errno.EPERM: "opération interdite", errno.EROFS: "système de fichiers en lecture seule",
        errno.ENOSPC: "plus de place sur le disque", errno.EEXIST: "le fichier existe déjà",
    }
    return reasons.get(exc.errno, f"erreur système n° {exc.errno}")


def _year(value: str) -> str:
    from shared.contracts.identifiers import check_campaign

    return check_campaign(value.strip())


def _size(n: int) -> str:
    for unit in ("octets", "Kio", "Mio", "Gio"):
        if n < 1024 or unit == "Gio":
            return f"{n} {unit}" if unit == "octets" else f"{n:.1f} {unit}".replace(".", ",")
        n /= 1024
    return f"{n} octets"


# --- open -------------------------------------------------------------------------------------------


def campaign_open(args: argparse.Namespace) -> int:
    from shared.domain.errors import RuleViolation
    from shared.contracts.identifiers import check_campaign

    settings = service_settings("scoring")
    closes_at = datetime.fromisoformat(args.closes_at) if args.closes_at else None
    if closes_at is not None and closes_at.tzinfo is None:
        print("--closes-at doit préciser un fuseau (ex. 2027-05-31T23:59:00+02:00)", file=sys.stderr)
        return 2
    try:
        outcome = asyncio.run(open_campaign(settings, check_campaign(args.year), args.bonus, closes_at))
    except (RuleViolation, ValueError) as exc:
        print(f"passpro campaign open: {exc}", file=sys.stderr)
        return 1
    print(f"Campagne {args.year} ouverte (bonus {args.bonus} points), position {outcome.positions.service}.")
    return 0


# --- archive ----------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet, readable by its owner only; nothing is left if it fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_out(out: Path) -> None:
    if out.exists():
        raise Refused(f"le fichier {out} existe déjà : une archive n'en remplace jamais une autre, choisissez un autre nom.")
    if not out.parent.is_dir():
        raise Refused(f"le dossier {out.parent} n'existe pas.")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise Refused(f"impossible d'écrire dans le dossier {out.parent} (droits).")


def campaign_archive(args: argparse.Namespace) -> int:
    from services.records.archive import ArchiveError, collect, seal_archive
    from services.records.retention import record_archive
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")
    key = settings.checkpoint_key_bytes()
    out = Path(args.out).expanduser()
    try:
        year = _year(args.year)
        if key is None:
            raise Refused("PASSPRO_CHECKPOINT_KEY doit être fournie : c'est la clé d'audit qui signe l'archive.")
        _check_out(out)
    except (ValueError, Refused) as exc:
        return fail("campaign archive", str(exc))
    user = args.user or f"cli:{getpass.getuser()}"
    started = time.monotonic()

    async def run():
        async with scoring_records(settings, up_to_date=True, keystore=True) as (redis, engine, keystore):
            document = await collect(redis, StreamKeys(settings.academie), engine, keystore, year,
                                     created_by=user, now=clock())
            data = seal_archive(document, settings.master(), key)
            try:
                _write_new(out, data)
            except OSError as exc:
                raise Refused(f"impossible d'écrire {out} : {_os_reason(exc)}.") from None
            digest = hashlib.sha256(data).hexdigest()
            try:
                await asyncio.to_thread(record_archive, engine, year, out.resolve(), digest, len(data),
                                        document["created_at"], user)
            except BaseException:
                out.unlink(missing_ok=True)  # an archive the purge does not know of is not kept
                raise
            return document, data, digest

    try:
        document, data, digest = asyncio.run(run())
    except (ArchiveError, Refused) as exc:
        return fail("campaign archive", str(exc))
    except unreachable() as exc:
        return fail("campaign archive", f"journal ou base de scoring inaccessible : {exc}")
    counts = document["counts"]
    print(f"Archive de la campagne {year} (académie {settings.academie}) écrite dans {out} : {_size(len(data))}, "
          f"en {time.monotonic() - started:.1f} s.")
    print(f"  {counts['entries']} entrées dans {counts['streams']} flux (dont {counts['student_streams']} flux "
          f"d'élèves), {counts['keys']} clés, {counts['rectorat_entries']} entrées du flux rectorat, "
          f"{counts['checkpoints']} points de contrôle, {counts['wrapped_keys']} clés d'élèves "
          f"({counts['destroyed_keys']} détruites).")
    print(f"  SHA-256 {digest} — enregistrée par {user}. Gardez-la avec la clé maîtresse et la clé d'audit.")
    return 0


# --- purge ------------------------------------------------------------------------------------------


def _other_views() -> list[tuple[str, str, str | None]]:
    """(service, database URL, schema) of each view's database besides scoring's; a SQLite file that does not
    exist holds nothing (and is not made)."""
    from shared.runtime.db import is_sqlite

    views = []
    for name in SERVICES:
        if name == "scoring":
            continue
        settings = service_settings(name)
        url = settings.resolved_database_url()
        if is_sqlite(url) and not Path(url.removeprefix("sqlite:///")).exists():
            continue
        views.append((name, url, settings.database_schema))
    from services.cli.datadir import cli_settings
    from services.notifier.settings import NotifierSettings

    notifier = cli_settings(NotifierSettings)  # the notifier's e-mails of the campaign (SPEC §7)
    url = notifier.resolved_database_url()
    if not (is_sqlite(url) and not Path(url.removeprefix("sqlite:///")).exists()):
        views.append(("notifier", url, notifier.database_schema))
    return views


async def _purge(settings, year: str, key: bytes, user: str):
    from services.records import retention
    from services.records.archive import live_summary, not_covered, open_archive, students_of
    from shared.contracts.streams import StreamKeys
    from shared.runtime.log.client import EventLog

    keys = StreamKeys(settings.academie)
    async with scoring_records(settings, up_to_date=True) as (redis, engine, _):
        campaign = await EventLog(redis, keys).read_campaign(year)
        refusal = retention.closing_refusal(campaign, clock(), timedelta(days=settings.purge_delay_days))
        if refusal:
            raise Refused(refusal)
        records = await asyncio.to_thread(retention.archives_of, engine, year)
        record, problems = await asyncio.to_thread(retention.intact_archive, records)
        if record is None:
            found = f" ({' ; '.join(problems)})" if problems else ""
            raise Refused(f"aucune archive intacte de la campagne {year}{found} : faites d'abord "
                          f"passpro campaign archive {year} --out FICHIER.")
        document = open_archive(Path(record.path).read_bytes(), settings.master(), key)
        if (document["academie"], document["campaign"]) != (settings.academie, year):
            raise Refused(f"l'archive {record.path} n'est pas celle de la campagne {year} de l'académie "
                          f"{settings.academie}.")
        missing = not_covered(document, await live_summary(redis, keys, year))
        if missing:
            raise Refused(f"l'archive du {record.created_at[:10]} ne contient pas tout ce que la campagne a "
                          f"maintenant ({len(missing)} clés ont changé depuis, dont {missing[0]}) : refaites "
                          f"passpro campaign archive {year} --out FICHIER.")
        purged = await retention.purge(
            redis, keys, year, engine, _other_views(), settings.open_keystore, students_of(document),
            record.sha256, user, clock().isoformat(),
        )
        return record, purged


def campaign_purge(args: argparse.Namespace) -> int:
    from services.records.archive import ArchiveError

    settings = service_settings("scoring")
    key = settings.checkpoint_key_bytes()
    try:
        year = _year(args.year)
        if key is None:
            raise Refused("PASSPRO_CHECKPOINT_KEY doit être fournie : elle authentifie l'archive avant la purge.")
    except (ValueError, Refused) as exc:
        return fail("campaign purge", str(exc))
    user = args.user or f"cli:{getpass.getuser()}"
    try:
        record, purged = asyncio.run(_purge(settings, year, key, user))
    except (Refused, ArchiveError) as exc:
        return fail("campaign purge", f"refusée, rien n'a été supprimé : {exc}", 1)
    except unreachable() as exc:
        return fail("campaign purge", f"journal ou base inaccessible : {exc}")
    print(f"Campagne {year} purgée de l'académie {settings.academie} (archive {record.path}, SHA-256 {record.sha256}) :")
    print(f"  {purged.redis_keys} clés du journal, {purged.dead_letters} lettres mortes, "
          f"{sum(purged.rows.values())} lignes des vues et points de contrôle, {purged.wrapped_keys} clés d'élèves.")
    for table, n in sorted(purged.rows.items()):
        print(f"    {table} : {n}")
    print("  Le flux rectorat est gardé entier (sa chaîne) ; la purge est enregistrée pour passpro audit verify.")
    return 0


# --- import -----------------------------------------------------------------------------------------


def campaign_import(args: argparse.Namespace) -> int:
    from services.records.archive import ArchiveError, open_archive, restore
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")
    key = settings.checkpoint_key_bytes()
    if key is None:
        return fail("campaign import", "PASSPRO_CHECKPOINT_KEY doit être fournie : elle authentifie l'archive.")
    if args.academie is not None and not ACADEMIE.match(args.academie):
        return fail("campaign import", f"--academie {args.academie!r} : minuscules, chiffres et tirets (40 au plus).")
    try:
        data = Path(args.file).expanduser().read_bytes()
    except OSError as exc:
        return fail("campaign import", f"impossible de lire {args.file} : {_os_reason(exc)}.")
    try:
        document = open_archive(data, settings.master(), key)
    except ArchiveError as exc:
        return fail("campaign import", f"archive refusée : {exc}")
    target = StreamKeys(args.academie or document["academie"])

    async def run():
        async with scoring_records(settings, up_to_date=True, keystore=True) as (redis, engine, keystore):
            return await restore(redis, target, engine, keystore, document, key)

    try:
        done = asyncio.run(run())
    except (ArchiveError, Refused) as exc:
        return fail("campaign import", f"refusé, rien n'a été importé : {exc}", 1)
    except unreachable() as exc:
        return fail("campaign import", f"journal ou base de scoring inaccessible : {exc}")
    origin = f"de l'académie {document['academie']}, archivée le {document['created_at'][:10]}"
    print(f"Campagne {done.campaign} ({origin}) importée dans l'académie {done.academie} :")
    print(f"  {done.keys} clés, {done.entries} entrées avec leurs identifiants d'origine, "
          f"{done.rectorat_entries_added} entrées ajoutées au flux rectorat, {done.checkpoints} points de contrôle"
          f"{' (re-signés sous les noms de cette académie après vérification)' if done.resigned else ''}, "
          f"{done.wrapped_keys} clés d'élèves.")
    print("  Vérifiez-la avec passpro audit verify ; passpro rebuild en refait la projection de scoring.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    campaign = sub.add_parser("campaign", help="campaigns").add_subparsers(dest="action", required=True)
    p = campaign.add_parser("open", help="CampaignOpened")
    p.add_argument("year")
    p.add_argument("--bonus", type=int, default=2500)
    p.add_argument("--closes-at")
    p.set_defaults(func=campaign_open)
    calendar.register_into(campaign)  # `passpro campaign calendar` (services/cli/calendar.py)

    p = campaign.add_parser("archive", help="write the campaign's log, checkpoints and keys to one signed, encrypted file")
    p.add_argument("year")
    p.add_argument("--out", required=True, help="the archive file to write (must not exist)")
    p.add_argument("--user", help="who archives (recorded); default cli:<login>")
    p.set_defaults(func=campaign_archive)

    p = campaign.add_parser("purge", help="delete an archived campaign once closed for PASSPRO_PURGE_DELAY_DAYS")
    p.add_argument("year")
    p.add_argument("--user", help="who purges (recorded); default cli:<login>")
    p.set_defaults(func=campaign_purge)

    p = campaign.add_parser("import", help="restore an archived campaign (into another académie for an audit)")
    p.add_argument("file")
    p.add_argument("--academie", help="the académie to import into; default the archive's own")
    p.set_defaults(func=campaign_import)
