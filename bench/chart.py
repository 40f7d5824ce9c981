"""The chart of BENCHMARKS.md: the projection's catch-up rate against the size of the log, on both databases.

matplotlib is only needed here (the `bench` extra); it draws with its Agg
backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path


def draw(series: list[dict], path: Path, peer: dict | None = None) -> Path:
    """`series`: [{"events": N, "sqlite": events/s, "postgres": events/s}, ...], smallest log first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [point["events"] for point in series]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for db, style, label_offset in (("sqlite", "o-", 7), ("postgres", "s-", -13)):  # labels above / below
        rates = [point.get(db) for point in series]
        if any(rate is not None for rate in rates):
            axes.plot(sizes, rates, style, label=f"Passpro projection, {db}")
            for size, rate in zip(sizes, rates, strict=True):
                if rate is not None:
                    axes.annotate(f"{rate:,.0f}", (size, rate), textcoords="offset points", xytext=(0, label_offset),
                                  ha="center", fontsize=8)
    if peer and peer.get("events_per_s"):
        axes.axhline(peer["events_per_s"], color="grey", linestyle=":",
                     label=f"eventsourcing peer, postgres ({peer['events_per_s']:,.0f}/s)")
    axes.set_xscale("log")
    axes.set_xlabel("events in the log (caught up from the start)")
    axes.set_ylabel("events applied per second")
    axes.set_ylim(bottom=0)
    axes.set_title("Scoring projection: catch-up rate against log size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
