"""The Affelnet export, recorded (who, when, the positions it covers, its SHA-256), and the exports made: a scoring report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, select

from services.scoring import queries
from services.scoring.views import exports
from services.scoring.views import positions as positions_table
from shared.runtime.projection.views import load_positions

T = TypeVar("T")
SNAPSHOT_ATTEMPTS = 50


class ProjectionMoving(RuntimeError):
    """The projection kept changing while it was read: try again when it is quieter."""


def consistent(conn: Connection, read: Callable[[Connection], T]) -> tuple[T, dict[str, str]]:
    """`read` and the positions it reflects. The positions are read before and after: the consumer moves
    them in the same transaction as the rows, so equal positions mean no commit happened in between
    (SQLite and PostgreSQL's READ COMMITTED give each statement its own snapshot)."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        before = load_positions(conn, positions_table)
        result = read(conn)
        after = load_positions(conn, positions_table)
        if before == after:
            return result, after
        conn.rollback()
    raise ProjectionMoving("the scoring projection kept moving while it was read")


@dataclass(frozen=True)
class AffelnetExport:
    campaign: str
    content: str
    rows: int
    sha256: str
    positions: dict[str, str]


def export_affelnet(engine: Engine, campaign: str, user_id: str) -> AffelnetExport:
    """The Affelnet file, recorded (who, when, the positions it covers, its SHA-256) in the same transaction."""
    with engine.connect() as conn:
        (content, rows), positions = consistent(conn, lambda c: queries.affelnet_csv(c, campaign))
        digest = queries.record_export(conn, campaign, user_id, positions, content, rows)
        conn.commit()
    return AffelnetExport(campaign, content, rows, digest, positions)


def list_exports(
    engine: Engine, campaign: str | None = None, *, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The exports made (oldest first), a page of them chosen in SQL (`limit` None: all), and how many there are."""
    where = [exports.c.campaign == campaign] if campaign else []
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(exports).where(*where)).scalar_one()
        rows = conn.execute(select(exports).where(*where).order_by(exports.c.id).limit(limit).offset(offset or None))
        return [
            {
                "id": row.id,
                "campaign": row.campaign,
                "exported_at": row.exported_at,
                "user_id": row.user_id,
                "positions": json.loads(row.positions),
                "rows": row.rows,
                "sha256": row.sha256,
            }
            for row in rows
        ], total
