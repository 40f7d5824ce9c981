"""What every local view has: its read positions and the student files it folds, in its own tables.

A view applies a batch of events in one transaction that also moves its read
positions, so a crash leaves either all of the batch or none of it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import NamedTuple

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shared.contracts.events import CampaignCalendarSet, CampaignOpened
from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile, empty_file, evolve_all

MAX_IN = 500  # identifiers per IN (...) list, well under SQLite's variable limit


def positions_table(metadata: MetaData) -> Table:
    return Table(
        "stream_positions",
        metadata,
        Column("stream", String(200), primary_key=True),
        Column("position", String(40), nullable=False),
    )


def student_files_table(metadata: MetaData) -> Table:
    return Table(
        "student_files",
        metadata,
        Column("campaign", String(4), primary_key=True),
        Column("ine", String(11), primary_key=True),
        Column("college_uai", String(8), index=True),
        Column("version", Integer, nullable=False),
        Column("file", Text, nullable=False),
    )


COPY_FROM = 50  # rows from which PostgreSQL's upserts and inserts go through COPY (bench/upsert_micro.py)


def _copy_rows(conn: Connection, table: Table, rows: list[dict]) -> tuple[str, list[str]] | None:
    """Rows into the table's temporary twin (made on first use in a session; the statement that takes the
    rows from it empties it) by COPY: (the twin's name, the columns) or None if the rows do not all name the same columns.
    ON COMMIT DELETE ROWS truncates the twin at every commit, so no copy of a row (a student's file) outlives
    its transaction there: an erasure's scrub has nothing to find in it."""
    columns = list(rows[0])
    if any(len(row) != len(columns) for row in rows) or any(row.keys() != rows[0].keys() for row in rows):
        return None
    twin = f"passpro_copy_{table.name}"
    with conn.connection.driver_connection.cursor() as cursor:
        # every time: a twin made in a transaction rolled back since is gone
        cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{twin}" (LIKE "{table.name}") ON COMMIT DELETE ROWS')
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{twin}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    return twin, columns


def insert_rows(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert rows, in one statement for the batch (through COPY on PostgreSQL for a large batch)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        copied = _copy_rows(conn, table, rows)
        if copied is not None:
            twin, columns = copied
            names = ", ".join(f'"{c}"' for c in columns)
            conn.exec_driver_sql(
                f'WITH copied AS (DELETE FROM "{twin}" RETURNING *) INSERT INTO "{table.name}" ({names}) SELECT {names} FROM copied'
            )
            return
    conn.execute(table.insert(), rows)


def upsert(conn: Connection, table: Table, rows: list[dict], keys: Iterable[str]) -> None:
    """Insert or replace rows by primary key, in one statement for the batch (on PostgreSQL, a large batch
    through COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT; a key met twice: the last
    row wins, as when the rows are upserted one after the other)."""
    if not rows:
        return
    keys = list(keys)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        unique = list({tuple(row[k] for k in keys): row for row in rows}.values())
        copied = _copy_rows(conn, table, unique)
        if copied is not None:
            twin, columns = copied
            names = ", ".join(f'"{c}"' for c in columns)
            updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys)
            conflict = ", ".join(f'"{k}"' for k in keys)
            action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
            conn.exec_driver_sql(
                f'WITH copied AS (DELETE FROM "{twin}" RETURNING *) '
                f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM copied ON CONFLICT ({conflict}) {action}'
            )
            return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


def load_positions(conn: Connection, table: Table, *, for_update: bool = False) -> dict[str, str]:
    """The view's read positions; `for_update` locks them (PostgreSQL) until the transaction ends."""
    query = select(table).with_for_update() if for_update else select(table)
    return {row.stream: row.position for row in conn.execute(query)}


def save_positions(conn: Connection, table: Table, positions: dict[str, str]) -> None:
    upsert(conn, table, [{"stream": s, "position": p} for s, p in positions.items()], ["stream"])


# The rows a view wrote for one student, by table name, each table's rows by primary key.
Written = Mapping[str, dict[tuple, dict]]


class Kept(NamedTuple):
    """A student's file as a transaction stored it: its JSON text, the file, and the rows the view's tables
    hold for the student alongside (`write_student_rows`; a table absent: not known)."""

    text: str
    file: StudentFile
    written: Written


class FileCache:
    """The student files a consumer last committed, kept in memory across pages (the least recently used
    dropped beyond `size`) with the JSON text stored for each, so a student met again is not parsed from
    its JSON again, and with the rows written for it, so only the rows that change are written again.

    A kept file, and its rows, are used only if the database still holds the very text it was stored as,
    read in the same transaction: a `dlq retry` run elsewhere may change a file without changing its
    version (an entry of a lower version applied late), a purge deletes it; then the row is parsed as
    before, and the student's rows written whole. The files a transaction folds are staged, and kept only
    once it commits: a rollback, or a savepoint undone, drops them (staged entries are replaced, never
    changed, so a savepoint is a copy of the dict). The consumer empties it when its positions are
    reloaded (a rebuild's swap)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._files: OrderedDict[tuple[str, str], Kept] = OrderedDict()
        self._pending: dict[tuple[str, str], Kept] = {}
        self.hits = 0
        self.misses = 0

    def get(self, campaign: str, ine: str, stored: str) -> Kept | None:
        """What was kept for this student if `stored` (the row's text) is the text it was stored as."""
        key = (campaign, ine)
        kept = self._pending.get(key) or self._files.get(key)
        if kept is None or kept.text != stored:
            self.misses += 1
            return None
        self.hits += 1
        return kept

    def stage(self, file: StudentFile, text: str, written: Written | None = None) -> None:
        """The file as this transaction stores it; `written`: the rows the tables still hold for the
        student, known only from a file kept and trusted in this transaction."""
        self._pending[(file.campaign, file.ine)] = Kept(text, file, written or {})

    def written(self, file: StudentFile, table: str) -> dict[tuple, dict] | None:
        """The rows `table` holds for the student of a file staged in this transaction, if known."""
        kept = self._pending.get((file.campaign, file.ine))
        return kept.written.get(table) if kept is not None else None

    def stage_rows(self, file: StudentFile, table: str, rows: dict[tuple, dict]) -> None:
        key = (file.campaign, file.ine)
        kept = self._pending.get(key)
        if kept is not None:
            self._pending[key] = kept._replace(written={**kept.written, table: rows})

    def savepoint(self) -> dict[tuple[str, str], Kept]:
        return dict(self._pending)

    def undo_to(self, savepoint: dict[tuple[str, str], Kept]) -> None:
        self._pending = savepoint

    def committed(self) -> None:
        files = self._files
        for key, kept in self._pending.items():
            files[key] = kept
            files.move_to_end(key)
        self._pending = {}
        while len(files) > self.size:
            files.popitem(last=False)

    def rolled_back(self) -> None:
        self._pending = {}

    def clear(self) -> None:
        self._files.clear()
        self._pending = {}


# The cache of the transaction applying events now (ViewTransaction sets it around the view's apply).
FILES: ContextVar[FileCache | None] = ContextVar("passpro_file_cache", default=None)


def load_files(conn: Connection, table: Table, campaign: str, ines: list[str]) -> dict[str, tuple[StudentFile, Written | None]]:
    """The stored files of these students, each with the rows written for it if the applying transaction's
    cache (FILES) kept it as stored (then it is not parsed again either), else None."""
    cache = FILES.get()
    found: dict[str, tuple[StudentFile, Written | None]] = {}
    for start in range(0, len(ines), MAX_IN):
        chunk = ines[start : start + MAX_IN]
        rows = conn.execute(select(table.c.ine, table.c.file).where(table.c.campaign == campaign, table.c.ine.in_(chunk)))
        for ine, text in rows:
            kept = cache.get(campaign, ine, text) if cache is not None else None
            found[ine] = (kept.file, kept.written) if kept is not None else (StudentFile.model_validate_json(text), None)
    return found


def fold_batch(
    conn: Connection, table: Table, events: list[LoggedEvent], keep: Callable[[StudentFile], StudentFile] | None = None
) -> list[StudentFile]:
    """Fold a batch's student events into the stored files, save them, and return the files changed.
    `keep` trims a file to what the view needs before it is stored (less personal data to leak)."""
    by_campaign: dict[str, dict[str, list[LoggedEvent]]] = {}
    for logged in events:
        ine = logged.event.student_ine
        if ine is not None and logged.student_version is not None:
            by_campaign.setdefault(logged.event.campaign, {}).setdefault(ine, []).append(logged)
    changed: list[StudentFile] = []
    written: list[Written | None] = []
    for campaign, by_student in by_campaign.items():
        files = load_files(conn, table, campaign, list(by_student))
        for ine, student_events in by_student.items():
            file, rows = files.get(ine) or (empty_file(campaign, ine), None)
            file = evolve_all(file, [(logged.event, logged.student_version) for logged in student_events])
            changed.append(keep(file) if keep else file)
            written.append(rows)
    rows = [
        {"campaign": f.campaign, "ine": f.ine, "college_uai": f.college_uai, "version": f.version, "file": f.model_dump_json()}
        for f in changed
    ]
    upsert(conn, table, rows, ["campaign", "ine"])
    cache = FILES.get()
    if cache is not None:
        for file, row, before in zip(changed, rows, written, strict=True):
            cache.stage(file, row["file"], before)
    return changed


STUDENT_KEY = ["campaign", "ine"]


def write_student_rows(conn: Connection, table: Table, rows_by_file: Iterable[tuple[StudentFile, list[dict]]]) -> None:
    """Each student's rows in `table` (keyed by its primary key, which starts with the campaign and the INE)
    made equal to the rows given, writing only what differs from what the table holds: known for a file the
    applying transaction's cache (FILES) kept and trusted (its text read in this transaction), from the rows
    written with it; an unchanged row is not written again, a row no longer given is deleted. For any other
    file, the student's rows are deleted and all written (a single row per student is simply replaced)."""
    cache = FILES.get()
    keys = [c.name for c in table.primary_key.columns]
    unknown: list[StudentFile] = []
    to_write: list[dict] = []
    gone: list[dict] = []
    for file, rows in rows_by_file:
        new = {tuple(row[k] for k in keys): row for row in rows}
        before = cache.written(file, table.name) if cache is not None else None
        if before is None:
            if keys != STUDENT_KEY or len(new) != 1:  # else the upsert replaces the student's one row
                unknown.append(file)
            to_write += new.values()
        else:
            to_write += [row for key, row in new.items() if before.get(key) != row]
            gone += [dict(zip(keys, key, strict=True)) for key in before if key not in new]
        if cache is not None:
            cache.stage_rows(file, table.name, new)
    delete_students(conn, table, unknown)
    if gone:
        conn.execute(delete(table).where(*(table.c[k] == bindparam(f"gone_{k}") for k in keys)),
                     [{f"gone_{k}": row[k] for k in keys} for row in gone])
    upsert(conn, table, to_write, keys)


def campaigns_table(metadata: MetaData) -> Table:
    return Table(
        "campaigns",
        metadata,
        Column("campaign", String(4), primary_key=True),
        Column("bonus_points", Integer, nullable=False),
        Column("closes_at", String(40)),
    )


def apply_campaigns(conn: Connection, table: Table, events: list[LoggedEvent]) -> None:
    rows = [
        {
            "campaign": e.event.campaign,
            "bonus_points": e.event.payload.bonus_points,
            "closes_at": e.event.payload.closes_at.isoformat() if e.event.payload.closes_at else None,
        }
        for e in events
        if isinstance(e.event.payload, CampaignOpened)
    ]
    upsert(conn, table, rows, ["campaign"])
    for e in events:  # SPEC §7: the latest calendar's closing counts (its other dates: CampaignFile, the log's fold)
        if isinstance(e.event.payload, CampaignCalendarSet):
            closes_at = e.event.payload.closes_at
            conn.execute(update(table).where(table.c.campaign == e.event.campaign)
                         .values(closes_at=closes_at.isoformat() if closes_at else None))


def campaign_bonus_points(conn: Connection, table: Table) -> dict[str, int]:
    return {row.campaign: row.bonus_points for row in conn.execute(select(table.c.campaign, table.c.bonus_points))}


def delete_students(conn: Connection, table: Table, files: list[StudentFile]) -> None:
    """Delete the rows of these students, by campaign and INE chunks, so the primary key is used
    (a tuple IN makes SQLite scan the whole table at every page)."""
    by_campaign: dict[str, list[str]] = {}
    for file in files:
        by_campaign.setdefault(file.campaign, []).append(file.ine)
    for campaign, ines in by_campaign.items():
        for start in range(0, len(ines), MAX_IN):
            chunk = ines[start : start + MAX_IN]
            conn.execute(delete(table).where(table.c.campaign == campaign, table.c.ine.in_(chunk)))


def scrub_erased(engine: Engine, tables: Iterable[Table]) -> None:
    """After an erasure is applied, leave no copy of the erased fields in the database's files.
    An UPDATE leaves the old row version behind: PostgreSQL keeps it in the table until VACUUM FULL
    rewrites it (a plain VACUUM only marks it reusable), SQLite zeroes freed space (secure_delete,
    set on every connection) but keeps old page images in its write-ahead log until a checkpoint
    truncates it. Erasures are rare, so the cost (a table rewrite, seconds at 100,000 students)
    is paid rarely. Best effort on PostgreSQL: VACUUM FULL keeps a row version that a transaction
    still open from before the erasure may see, and the server's write-ahead log and backups keep
    theirs until recycled (README: personal data)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.exec_driver_sql(f'VACUUM FULL "{table.name}"')
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def delete_campaign_rows(conn: Connection, metadata: MetaData, campaign: str, streams_prefix: str) -> dict[str, int]:
    """A view's part of a campaign's purge: in `metadata`'s tables, the rows of the campaign (a `campaign`
    column) and the read positions or checkpoints of its streams (a `stream` column under `streams_prefix`);
    rows deleted per table, those with none left out. A table the view adds later is purged with the rest."""
    deleted: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if "campaign" in table.c:
            deleted[table.name] = conn.execute(delete(table).where(table.c.campaign == campaign)).rowcount
        elif "stream" in table.c:
            where = table.c.stream.startswith(streams_prefix, autoescape=True)
            deleted[table.name] = conn.execute(delete(table).where(where)).rowcount
    return {name: n for name, n in deleted.items() if n}
