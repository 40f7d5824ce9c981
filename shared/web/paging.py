"""A list page's place among its pages: the page asked for, the links « Page précédente / suivante »."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PAGE_SIZE = 50


@dataclass(frozen=True)
class Paging:
    number: int  # from 1
    size: int
    pages: int  # at least 1: an empty list is one empty page
    previous: str | None  # the links keep the list's other query parameters (its filters)
    next: str | None

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page_number(asked: str | None) -> int:
    """The page asked for in `?page=`; anything but a positive number reads as the first page."""
    return int(asked) if asked and asked.isdigit() and int(asked) > 0 else 1


def paging(number: int, total: int, path: str, params: dict[str, str], size: int = PAGE_SIZE) -> Paging:
    """Where page `number` stands among `total` items; a number past the last page is the last page."""
    pages = max(1, -(-total // size))
    number = min(number, pages)
    kept = {k: v for k, v in params.items() if v}

    def link(n: int) -> str:
        query = urlencode(kept | ({"page": str(n)} if n > 1 else {}))
        return f"{path}?{query}" if query else path

    previous = link(number - 1) if number > 1 else None
    return Paging(number, size, pages, previous, link(number + 1) if number < pages else None)
