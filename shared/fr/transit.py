"""Public transport in French: a stop of the reference data as a student reads it, « Métro Bastille (lignes 1, 5 et 8) »."""

from __future__ import annotations

from shared.contracts.reference import Stop

MODE_NAMES = {"metro": "Métro", "rer": "RER", "tram": "Tramway", "bus": "Bus"}


def lines_text(lines: tuple[str, ...] | list[str]) -> str:
    """« ligne 8 », « lignes A et D », « lignes 1, 5 et 8 »."""
    if len(lines) == 1:
        return f"ligne {lines[0]}"
    return f"lignes {', '.join(lines[:-1])} et {lines[-1]}"


def stop_label(stop: Stop) -> str:
    return f"{MODE_NAMES[stop.mode]} {stop.stop} ({lines_text(stop.lines)})"
