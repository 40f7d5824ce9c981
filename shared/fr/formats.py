"""French formatters: moments in Paris time, numbers and counts, through Babel's CLDR data for `fr`."""

from __future__ import annotations

from datetime import UTC, date, datetime

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from shared.contracts.identifiers import PARIS

FR = Locale("fr", "FR")

# Babel patterns (CLDR). The hour is written « 14 h 30 » with no-break spaces, as French typography has it.
_PATTERNS = {
    "date": "d MMMM y",
    "day": "EEEE d MMMM y",
    "time": "H'\u00a0h\u00a0'mm",
    "datetime": "d MMMM y 'à' H'\u00a0h\u00a0'mm",
    "short": "dd/MM/y 'à' HH:mm",  # a document's table: « 12/05/2027 à 14:30 »
    "seconds": "dd/MM/y HH:mm:ss",  # the CLI's records, to the second
}


def as_datetime(value: datetime | str | None) -> datetime | None:
    """A moment from a datetime or ISO text; a naive one is UTC (how the log records them)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def paris(value: datetime | str | None, style: str = "datetime", missing: str = "") -> str:
    """A moment as people in Paris read it: « 12 mai 2027 à 14 h 30 » (style: date, day, time, datetime,
    short, seconds); the first of the month is « 1er ». `missing` when there is no moment."""
    moment = as_datetime(value)
    if moment is None:
        return missing
    local = moment.astimezone(PARIS)
    text = format_datetime(local, _PATTERNS[style], tzinfo=PARIS, locale=FR)
    if local.day == 1 and style in ("date", "day", "datetime"):
        # CLDR writes « 1 mai »; French writes the first of the month as an ordinal.
        text = text.replace("1 ", "1er ", 1) if style != "day" else text.replace(" 1 ", " 1er ", 1)
    return text


def day_month(day: date) -> str:
    """A day by its day and month, « 06/10 » (a chart's week, named by its Monday)."""
    return format_date(day, "dd/MM", locale=FR)


def paris_input(value: datetime | str | None) -> str:
    """The value of an `<input type="datetime-local">`, in Paris time."""
    moment = as_datetime(value)
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M") if moment else ""


def from_paris_input(value: str) -> datetime | str:
    """A `datetime-local` value read as Paris time; the text itself when it is no date (the model says why)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)


def number(value: int | float | None) -> str:
    """2500 -> « 2 500 »: groups of three split by a narrow no-break space (U+202F), as Babel's fr has it."""
    return format_decimal(value or 0, locale=FR)


# Points are numbers, written the same way; the name says what the templates show.
points = number


def plural(count: int, singular: str, many: str | None = None) -> str:
    """« 1 élève », « 3 élèves », « 1 200 élèves »: French counts 0 and 1 as singular (CLDR's `one`)."""
    word = singular if FR.plural_form(count) == "one" else (many or singular + "s")
    return f"{number(count)} {word}"


def minutes_to_wait(retry_after: int) -> str:
    """« 15 minutes », « 1 minute »: a lock's seconds left (a Retry-After), rounded up, as a person reads them."""
    return plural(max(1, -(-retry_after // 60)), "minute")
