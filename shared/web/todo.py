"""The day's work (SPEC §7) at the top of each role's home page: a short list read from the service's view tables,
paged in SQL (`afaire=` the page number, so the page's own list keeps `page=`), with the role's filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

TODO_SIZE = 10


@dataclass(frozen=True)
class TodoItem:
    text: str
    href: str
    when: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class Filter:
    """A <select> of the list: its query name, label, options (value, label) and the value chosen."""

    name: str
    label: str
    options: list[tuple[str, str]]
    chosen: str = ""


@dataclass
class Todo:
    title: str  # « Avis à donner »
    empty: str  # what the page says when nothing is due
    items: list[TodoItem]
    total: int
    number: int = 1
    size: int = TODO_SIZE
    filters: list[Filter] = field(default_factory=list)
    path: str = "/"

    def _link(self, number: int) -> str:
        params = {f.name: f.chosen for f in self.filters if f.chosen} | ({"afaire": str(number)} if number > 1 else {})
        return f"{self.path}?{urlencode(params)}" if params else self.path

    @property
    def previous(self) -> str | None:
        return self._link(self.number - 1) if self.number > 1 else None

    @property
    def next(self) -> str | None:
        return self._link(self.number + 1) if self.number * self.size < self.total else None


def todo_page(value: str | None) -> int:
    """The `afaire=` page number (1 when absent or not a small positive number)."""
    return int(value) if value and value.isdigit() and 0 < int(value) < 100_000 else 1
