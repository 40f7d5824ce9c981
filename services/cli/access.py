"""`passpro access-log INE` (who read a student's file) and `passpro student-file INE` (the family's copy).

Both are the rectorat's tools for a family's access request. `student-file` is itself a read of the
student's file, so it is logged before the document is written; `access-log` shows no personal field
and is not. Exit codes: 0 done, 2 when the command cannot run (bad argument, unknown student, log or
key store unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime
from pathlib import Path

from services.cli.audit import paris, unreachable
from services.cli.common import audit_client, fail, read_keyring, service_settings


def _student(args: argparse.Namespace, settings) -> tuple[str, str] | str:
    """(INE, campaign) from the arguments, or the French reason they are refused."""
    from shared.contracts.identifiers import check_campaign, check_ine

    try:
        year = check_campaign(args.campaign) if args.campaign else settings.campaign
        return check_ine(args.ine.strip().upper()), year
    except ValueError as exc:
        return str(exc)


# --- access-log -----------------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def print_access_log(ine: str, campaign: str, entries: list[dict], names: dict[str, str]) -> None:
    from shared.fr.labels import CHANNEL_LABELS, ROLE_LABELS

    print(f"Consultations du dossier de l'élève {ine} — campagne {campaign} (heure de Paris, les plus anciennes d'abord)")
    if not entries:
        print("Aucune consultation enregistrée.")
        return
    rows = [["Quand", "Qui", "Rôle", "Établissement", "Quoi", "Canal"]]
    for e in entries:
        place = f"{names.get(e['uai'], 'inconnu')} ({e['uai']})" if e["uai"] else "Rectorat de Paris"
        rows.append(
            [paris(e["at"]), e["user_id"], ROLE_LABELS.get(e["role"], e["role"]), place, e["what"],
             CHANNEL_LABELS.get(e["channel"], e["channel"])]
        )
    print("\n".join(_table(rows)))
    print(f"{len(entries)} consultation(s).")


def access_log_command(args: argparse.Namespace) -> int:
    from services.records.access import accesses_of
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")
    wanted = _student(args, settings)
    if isinstance(wanted, str):
        return fail("access-log", wanted)
    ine, year = wanted

    async def run():
        async with audit_client(settings) as redis:
            return await accesses_of(redis, StreamKeys(settings.academie), year, ine)

    try:
        known, entries, names = asyncio.run(run())
    except unreachable() as exc:
        return fail("access-log", f"journal inaccessible : {exc}")
    if not known:
        return fail("access-log", f"aucun élève {ine} dans la campagne {year}.")
    if args.json:
        print(json.dumps({"ine": ine, "campaign": year, "items": entries}, ensure_ascii=False, indent=2))
    else:
        print_access_log(ine, year, entries, names)
    return 0


# --- student-file ---------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """A minor's file: readable by its writer only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def student_file_command(args: argparse.Namespace) -> int:
    from shared.fr.formats import PARIS

    from services.records import family_copy
    from services.records.access import cli_user, log_cli_read
    from services.records.timeline import student_audit
    from shared.contracts.streams import StreamKeys
    from shared.runtime import access_log
    from shared.runtime.reference_store import load_reference

    settings = service_settings("scoring")
    wanted = _student(args, settings)
    if isinstance(wanted, str):
        return fail("student-file", wanted)
    ine, year = wanted
    out = Path(args.out or f"passpro-dossier-{ine}-{year}.html")
    if not out.parent.is_dir():
        return fail("student-file", f"le dossier {out.parent} n'existe pas.")
    user = cli_user(args.user)

    async def run():
        async with audit_client(settings) as redis:
            keys = StreamKeys(settings.academie)
            reference = await load_reference(redis, keys)
            names = {e.uai: e.name for e in reference.establishments}
            keyring = await read_keyring(settings, [(year, ine)])
            report = await student_audit(
                redis, keys, year, ine, None, names, keyring, show_time=family_copy.paris_time
            )
            if report is None:
                return None
            await log_cli_read(redis, keys, year, [ine], access_log.FAMILY_COPY, user)
            accesses = [a.as_dict() for a in await access_log.read(redis, keys, year, ine)]
            return family_copy.build(
                report, accesses, reference, generated_at=datetime.now(PARIS),
                generated_by=f"{user} (rectorat)",
            )

    try:
        content = asyncio.run(run())
    except unreachable() as exc:
        return fail("student-file", f"journal ou clés inaccessibles : {exc}")
    if content is None:
        return fail("student-file", f"aucun élève {ine} dans la campagne {year}.")
    try:
        _write_private(out, family_copy.render(content))
    except OSError as exc:
        return fail("student-file", f"impossible d'écrire {out} : {exc}")
    erased = " (données personnelles effacées)" if content["erased"] else ""
    print(f"Copie pour la famille de l'élève {ine}{erased}, campagne {year}, écrite dans {out}.")
    print("Sa lecture est enregistrée dans les consultations du dossier (passpro access-log).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("access-log", help="who read a student's file: when, who, role, establishment, what, channel")
    p.add_argument("ine")
    p.add_argument("--campaign")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=access_log_command)

    p = sub.add_parser("student-file", help="the family's copy: a printable French HTML document of the student's file")
    p.add_argument("ine")
    p.add_argument("--campaign")
    p.add_argument("--out", help="the HTML file to write; default passpro-dossier-<INE>-<campaign>.html")
    p.add_argument("--user", help="who makes the copy (logged); default cli:<login>")
    p.set_defaults(func=student_file_command)
