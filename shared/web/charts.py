"""Charts drawn on the server as inline SVG (no script), each with its data as a table for screen readers."""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape

from shared.fr.formats import points


def _lines(label: str, width: int) -> list[str]:
    """A bar's label on one or two lines (split at « — »), each cut to fit: the full text is in the table."""
    return [part if len(part) <= width else part[: width - 1] + "…" for part in label.split(" — ")[:2]]


def bar_chart(title: str, bars: Iterable[tuple[str, int]], *, unit: str = "", tone: str = "") -> Markup:
    """A horizontal bar chart as inline SVG, with its data as a table for screen readers and printing."""
    bars = list(bars)
    width, line_h, bar_h, gap = 420, 17, 16, 12
    biggest = max((v for _, v in bars), default=0) or 1
    parts = []
    y = 0
    for label, value in bars:
        for line in _lines(label, 50):
            parts.append(f'<text x="0" y="{y + 13}" class="chart-label">{escape(line)}</text>')
            y += line_h
        bar = int((width - 90) * value / biggest)
        parts.append(
            f'<rect x="0" y="{y + 2}" width="{max(bar, 2)}" height="{bar_h}" rx="3" class="chart-bar {tone}"/>'
            f'<text x="{max(bar, 2) + 6}" y="{y + 15}" class="chart-value">{escape(points(value))}{escape(unit)}</text>'
        )
        y += bar_h + gap
    if not bars:
        parts.append('<text x="0" y="20" class="chart-label">Aucune donnée pour ces filtres.</text>')
        y = 30
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th><td>{escape(points(value))}{escape(unit)}</td></tr>'
        for label, value in bars
    )
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {width} {y}" class="bars" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
        f"<details><summary>Données du graphique</summary><table><tbody>{rows}</tbody></table></details></figure>"
    )


def line_chart(title: str, labels: list[str], series: list[tuple[str, list[int], str]]) -> Markup:
    """Cumulative counts over time as inline SVG lines, with the data as a table."""
    width, height, left, bottom = 800, 240, 40, 30
    top = max((max(values, default=0) for _, values, _ in series), default=0) or 1
    n = max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - 10) * i / n

    def y(v: int) -> float:
        return 10 + (height - bottom - 10) * (1 - v / top)

    parts = [
        f'<line x1="{left}" y1="{y(0)}" x2="{width - 10}" y2="{y(0)}" class="chart-axis"/>',
        f'<text x="0" y="{y(top) + 4}" class="chart-value">{top}</text>',
        f'<text x="0" y="{y(0) + 4}" class="chart-value">0</text>',
    ]
    for i, label in enumerate(labels):
        if len(labels) <= 8 or i % max(len(labels) // 6, 1) == 0 or i == len(labels) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" class="chart-value" text-anchor="middle">{escape(label)}</text>'
            )
    for name, values, tone in series:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{coords}" class="chart-line {tone}"/>')
    legend = "".join(f'<li><span class="swatch {tone}"></span>{escape(name)}</li>' for name, _, tone in series)
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name, _, _ in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th>'
        + "".join(f"<td>{values[i]}</td>" for _, values, _ in series)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    return Markup(
        f'<figure class="chart wide"><figcaption>{escape(title)}</figcaption><ul class="legend">{legend}</ul>'
        f'<svg viewBox="0 0 {width} {height}" class="lines" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
        f"<details><summary>Données du graphique</summary>"
        f'<table><thead><tr><th scope="col">Semaine du</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></details></figure>"
    )
