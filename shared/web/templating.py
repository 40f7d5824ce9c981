"""The one Jinja environment factory: every service's pages and the family copy render through it, with the
French catalogue's labels as globals and its formatters as filters."""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from shared.fr import labels
from shared.fr.formats import number, paris, paris_input, plural, points

SHARED_TEMPLATES = Path(__file__).parent / "templates"


def environment(templates_dir: Path) -> Environment:
    """Templates of `templates_dir` first, then the shared ones (base, forms, error and sign-in pages)."""
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(templates_dir), FileSystemLoader(SHARED_TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(paris=paris, paris_input=paris_input, points=points, number=number, plural=plural)
    env.globals.update(
        ROLE_LABELS=labels.ROLE_LABELS,
        COLLEGE_AVIS_LABELS=labels.COLLEGE_AVIS_LABELS,
        LYCEE_AVIS_LABELS=labels.LYCEE_AVIS_LABELS,
        ASSESSMENT_LABELS=labels.ASSESSMENT_LABELS,
        MODE_LABELS=labels.MODE_LABELS,
        MODE_PROSE=labels.MODE_PROSE,
        INTERVIEW_STATUS_LABELS=labels.INTERVIEW_STATUS_LABELS,
        CANCEL_REASONS=labels.CANCEL_REASONS,
        EVENT_LABELS=labels.EVENT_LABELS,
    )
    return env
