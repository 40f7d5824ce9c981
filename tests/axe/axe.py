"""axe-core in the browser tests: the npm package (package.json, its lock file; `npm ci` once, node_modules kept)
injected into a Playwright page, and the page's violations of the WCAG 2.1 A and AA rules."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

AXE_DIR = Path(__file__).resolve().parent
WCAG = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


def npm_ci() -> None:
    """Install axe-core from package-lock.json once (node_modules is kept between runs)."""
    installed = AXE_DIR / "node_modules" / ".package-lock.json"
    lock = AXE_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (apt-get install nodejs npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AXE_DIR, check=True, timeout=300)


@cache
def source() -> str:
    npm_ci()
    return (AXE_DIR / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def violations(page, tags: tuple[str, ...] = WCAG) -> list[str]:
    """The page's violations, one line each: rule, impact, what it says, the elements at fault. The script is
    evaluated through the browser's debugging protocol, so the page's own policy (no inline script) stands."""
    page.evaluate(source())
    found = page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: "tag", values: tags}})).violations
             .map(v => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map(n => n.target.join(" ")).join(", ")}`)""",
        list(tags),
    )
    return [f"{page.url}: {line}" for line in found]
