"""The views' batched writes on PostgreSQL: from COPY_FROM rows on, through COPY into a temporary twin of the
table, then one INSERT … SELECT (… ON CONFLICT for an upsert); the rows stored are those of the statement
path: new and existing keys, a key met twice (the last row wins), NULLs, texts with tabs and newlines,
booleans; used twice in one transaction; after a transaction that made the twin was rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Boolean, Column, Engine, Integer, String, Table, Text, select

from shared.runtime.db import ensure_schema, make_engine, new_metadata
from shared.runtime.projection import views

metadata = new_metadata()
things = Table(
    "things", metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("note", Text),
    Column("count", Integer, nullable=False),
    Column("flag", Boolean),
)
plain = Table("plain_things", metadata, Column("id", Integer, primary_key=True), Column("note", Text))


@pytest.fixture
def engine(postgres_url: str, pg_schema: str) -> Iterator[Engine]:
    ensure_schema(postgres_url, pg_schema)
    engine = make_engine(postgres_url, pg_schema)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def rows(n: int, start: int = 0, count: int = 1) -> list[dict]:
    return [{"campaign": "2027", "ine": f"{i:09d}AB", "note": None if i % 7 == 0 else f"a\tb\nc \\ é {i}",
             "count": count + i, "flag": None if i % 5 == 0 else i % 2 == 0} for i in range(start, start + n)]


def stored(engine: Engine, table: Table = things) -> set[tuple]:
    with engine.connect() as conn:
        return set(conn.execute(select(table)).all())


def write(engine: Engine, copy_from: int, batches: list[list[dict]], monkeypatch: pytest.MonkeyPatch) -> set[tuple]:
    monkeypatch.setattr(views, "COPY_FROM", copy_from)
    with engine.begin() as conn:
        conn.execute(things.delete())
        conn.execute(plain.delete())
    with engine.begin() as conn:  # several batches in one transaction: the twin is emptied after each
        for batch in batches:
            views.upsert(conn, things, batch, ["campaign", "ine"])
        views.insert_rows(conn, plain, [{"id": i, "note": f"n{i}"} for i in range(120)])
    return stored(engine) | {("plain", *r) for r in stored(engine, plain)}


def test_upserts_through_copy_store_what_the_statements_store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = [rows(200), rows(150, start=100, count=10), rows(60, start=180, count=20) + rows(60, start=180, count=30)]
    by_statements = write(engine, 10**9, batches, monkeypatch)
    by_copy = write(engine, 50, batches, monkeypatch)
    assert by_copy == by_statements
    assert len(by_copy) == 250 + 120
    assert ("2027", "000000181AB", "a\tb\nc \\ é 181", 211, False) in by_copy  # the key met twice: its last row


def test_the_copy_path_works_again_after_the_transaction_that_made_its_twin_rolled_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "COPY_FROM", 50)
    with engine.connect() as conn:
        views.upsert(conn, things, rows(80), ["campaign", "ine"])
        conn.rollback()
        views.upsert(conn, things, rows(90), ["campaign", "ine"])
        conn.commit()
    assert len(stored(engine)) == 90
