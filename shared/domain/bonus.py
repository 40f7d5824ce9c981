"""The bonus rule of SPEC §3.2, a pure function of a student's file and the campaign's bonus."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.student_file import Interview, StudentFile


@dataclass(frozen=True)
class VoeuBonus:
    lycee_uai: str
    formation_code: str
    lycee_avis: str | None
    bonus_points: int
    college_avis_present: bool | None
    interview_held: bool


def held_interviews(file: StudentFile) -> dict[tuple[str, str], Interview]:
    """Each vœu's held interview (the first one, as `StudentFile.held_interview` finds it), in one pass."""
    held: dict[tuple[str, str], Interview] = {}
    for interview in file.interviews.values():
        if interview.status == "held":
            held.setdefault(interview.voeu, interview)
    return held


def voeu_bonuses(
    file: StudentFile, campaign_bonus_points: int, held: dict[tuple[str, str], Interview] | None = None
) -> list[VoeuBonus]:
    """One row per vœu: the campaign's points when its latest lycée avis is favorable, else 0;
    a withdrawn student's bonuses are 0. `held`: the file's `held_interviews` if the caller has them."""
    if held is None:
        held = held_interviews(file)
    rows = []
    for lycee_uai, formation_code in file.voeux():
        latest = file.latest_lycee_avis(lycee_uai, formation_code)
        interview = held.get((lycee_uai, formation_code))
        favorable = latest is not None and latest.avis == "favorable"
        rows.append(
            VoeuBonus(
                lycee_uai=lycee_uai,
                formation_code=formation_code,
                lycee_avis=latest.avis if latest else None,
                bonus_points=campaign_bonus_points if favorable and not file.withdrawn else 0,
                college_avis_present=interview.college_avis_present if interview else None,
                interview_held=interview is not None,
            )
        )
    return rows


def total_bonus_points(rows: list[VoeuBonus]) -> int:
    return sum(r.bonus_points for r in rows)
