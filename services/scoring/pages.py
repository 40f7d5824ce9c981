"""The rectorat's pages: the dashboard with its charts and filters, the Affelnet download and the student search.

A student's page (its timeline) and the family's copy are the records' (services/records/http.py), composed
in by the CLI. The Affelnet download runs the API's handler; the dashboard's bonus rows, figures
and progress chart are read, with the filters, in SQL over the projection's tables (no stored file is
parsed but the shown page's names).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from services.scoring import api, calendar_pages, handlers, queries, todo
from shared.contracts.identifiers import check_ine
from shared.runtime import access_log
from shared.runtime.http.app import runtime
from shared.fr.formats import day_month
from shared.fr.labels import COLLEGE_AVIS_LABELS
from shared.web.charts import bar_chart, line_chart
from shared.web.install import install_pages
from shared.web.pages import Web, formation_label, web

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZE = 50
MAX_WEEKS = 52

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    install_pages(app, Web("scoring", "Espace rectorat", ("rectorat",), TEMPLATES), router)
    app.include_router(calendar_pages.router)  # « Calendrier » (SPEC §7)


# --- the dashboard's progress chart -------------------------------------------------------------------

Series = list[tuple[str, list[int], str]]  # (name, one value per week, tone)


def progress(weekly: dict[str, Counter[date]]) -> tuple[list[str], Series]:
    """Cumulative collège avis given, interviews held and favorable lycée avis, week by week (Paris weeks,
    each named by its Monday), from the counts per week the projection keeps (queries.weekly_milestones)."""
    every_week = [w for counts in weekly.values() for w in counts]
    if not every_week:
        return [], []
    last = max(every_week)
    weeks = [max(min(every_week), last - timedelta(weeks=MAX_WEEKS - 1))]
    while weeks[-1] < last:
        weeks.append(weeks[-1] + timedelta(weeks=1))

    def cumulative(counts: Counter[date]) -> list[int]:
        before = sum(n for w, n in counts.items() if w < weeks[0])
        return list(accumulate((counts.get(w, 0) for w in weeks), initial=before))[1:]

    return [day_month(w) for w in weeks], [
        ("Avis du collège saisis", cumulative(weekly["avis"]), ""),
        ("Entretiens tenus", cumulative(weekly["held"]), "warn"),
        ("Avis favorables du lycée", cumulative(weekly["favorable"]), "good"),
    ]


# --- pages ------------------------------------------------------------------------------------------------


def _filters(request: Request, college: str, lycee: str, formation: str) -> tuple[dict, dict]:
    """The filters that name something of the reference data, and a French error for any other."""
    reference = runtime(request).reference
    chosen, errors = {"college_uai": "", "lycee_uai": "", "formation_code": ""}, {}
    if college:
        if reference.college(college.strip().upper()):
            chosen["college_uai"] = college.strip().upper()
        else:
            errors["college_uai"] = "Collège inconnu du référentiel."
    if lycee:
        if reference.lycee(lycee.strip().upper()):
            chosen["lycee_uai"] = lycee.strip().upper()
        else:
            errors["lycee_uai"] = "Lycée inconnu du référentiel."
    if formation:
        lycees = [reference.lycee(chosen["lycee_uai"])] if chosen["lycee_uai"] else [
            e for e in reference.establishments if e.type == "lycee"
        ]
        if any(l.offers(formation.strip()) for l in lycees):
            chosen["formation_code"] = formation.strip()
        else:
            errors["formation_code"] = "Cette formation n'est pas proposée dans Passpro par le lycée choisi."
    return chosen, errors


@router.get("/")
async def dashboard(
    request: Request, college_uai: str = "", lycee_uai: str = "", formation_code: str = "", page: int = 1,
    etablissements: str = "", afaire: str | None = None,
) -> Response:
    w, rt = web(request), runtime(request)
    who = w.user(request)
    chosen, errors = _filters(request, college_uai, lycee_uai, formation_code)
    college, lycee, formation = (chosen[k] or None for k in ("college_uai", "lycee_uai", "formation_code"))
    year = rt.settings.campaign
    page = max(page, 1)

    def read():
        with rt.engine.connect() as conn:
            numbers = queries.dashboard_figures(conn, year, college, lycee, formation)
            weeks, series = progress(queries.weekly_milestones(conn, year, college, lycee, formation))
            items, total = queries.bonus_rows(  # the API's list_bonuses query, for the page shown
                conn, year, lycee_uai=lycee, formation_code=formation, college_uai=college, min_points=None,
                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
            )
            return numbers, weeks, series, {"items": items, "total": total}

    numbers, weeks, series, rows = await asyncio.to_thread(read)
    names = await asyncio.to_thread(_names, rt, year, [r["ine"] for r in rows["items"]])
    await access_log.record_request(request, year, list(names), access_log.DASHBOARD)
    reference = rt.reference
    by_name = sorted(reference.establishments, key=lambda e: e.name)
    charts = [
        bar_chart(
            "Avis du collège",
            [(label, numbers["college_avis"].get(key, 0)) for key, label in COLLEGE_AVIS_LABELS.items()]
            + [("Non saisi", numbers["college_avis"].get(None, 0))],
        ),
        bar_chart(
            "Avis du lycée (entretiens tenus)",
            [
                ("Favorable", numbers["lycee_avis"].get("favorable", 0)),
                ("Réservé", numbers["lycee_avis"].get("reserve", 0)),
                ("À donner", numbers["lycee_avis"].get(None, 0)),
            ],
            tone="good",
        ),
        bar_chart(
            "Entretiens tenus et avis du collège manquant",
            [("Entretiens tenus", numbers["held"]), ("dont sans avis du collège", numbers["missing_college_avis"])],
            tone="warn",
        ),
        bar_chart(
            "Bonus par lycée et formation",
            [(f"{reference.get(l).name if reference.get(l) else l} — {formation_label(reference, l, f)}", points)
             for l, f, points, _ in numbers["by_voeu"]],
            unit=" pts",
            tone="good",
        ),
    ]
    progress_chart = line_chart("Avancement de la campagne (cumul par semaine)", weeks, series) if weeks else None
    context = {
        "who": who,
        "numbers": numbers,
        "charts": charts,
        "progress_chart": progress_chart,
        "rows": rows,
        "names": names,
        "page": page,
        "pages": max((rows["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "values": chosen,
        "errors": errors,
        "colleges": [(e.uai, e.name) for e in by_name if e.type == "college"],
        "lycees": [(e.uai, e.name) for e in by_name if e.type == "lycee"],
        "formations": _formation_choices(reference, lycee),
        "filtered": bool(college or lycee or formation),
        "query": "&".join(f"{k}={v}" for k, v in chosen.items() if v),
        "todo": await todo.todo_of(request, etablissements, afaire),  # the day's work (SPEC §7)
    }
    return w.render(request, "tableau.html", context, status=422 if errors else 200)


def _formation_choices(reference, lycee: str | None) -> list[tuple[str, str]]:
    lycees = [reference.lycee(lycee)] if lycee else [e for e in reference.establishments if e.type == "lycee"]
    found: dict[str, str] = {}
    for l in lycees:
        for f in l.formations:
            found.setdefault(f.code, f"{f.label} ({f.code})")
    return sorted(found.items(), key=lambda item: item[1])


def _names(rt, campaign: str, ines: list[str]) -> dict[str, str]:
    if not ines:
        return {}
    with rt.engine.connect() as conn:
        files = queries.files_of(conn, campaign, ines)
    return {f.ine: f"{f.first_name} {(f.last_name or '').upper()}" for f in files}


@router.get("/export/affelnet.csv")
async def affelnet(request: Request) -> Response:
    year, export = await handlers.export_affelnet(runtime(request), web(request).user(request), None)
    return await api.affelnet_file(request, year, export)


@router.get("/eleves")
async def find_student(request: Request, ine: str = "") -> Response:
    """The search box: to the student's page, or back to the dashboard with the error by the field."""
    w = web(request)
    w.user(request)
    wanted = "".join(ine.split()).upper()
    if not wanted:
        return RedirectResponse("/", status_code=303)
    try:
        check_ine(wanted)
    except ValueError as exc:
        return w.error_page(request, 422, str(exc), "INE invalide")
    return RedirectResponse(f"/eleves/{wanted}", status_code=303)
