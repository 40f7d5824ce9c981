"""The French formatters: Paris time across the DST changes, numbers as Babel's fr writes them, plurals."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.fr.formats import (
    PARIS,
    as_datetime,
    day_month,
    from_paris_input,
    number,
    paris,
    paris_input,
    plural,
    points,
)

NNBSP = "\u202f"  # narrow no-break space: CLDR fr's group separator
NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("utc", "shown"),
    [
        # 28 March 2027, 02:00 CET -> 03:00 CEST: the minute before and the minute after the jump.
        (datetime(2027, 3, 28, 0, 59, tzinfo=UTC), f"28 mars 2027 à 1{NBSP}h{NBSP}59"),
        (datetime(2027, 3, 28, 1, 0, tzinfo=UTC), f"28 mars 2027 à 3{NBSP}h{NBSP}00"),
        # 31 October 2027, 03:00 CEST -> 02:00 CET: 02:59 comes twice, once on each side of the change.
        (datetime(2027, 10, 31, 0, 59, tzinfo=UTC), f"31 octobre 2027 à 2{NBSP}h{NBSP}59"),
        (datetime(2027, 10, 31, 1, 0, tzinfo=UTC), f"31 octobre 2027 à 2{NBSP}h{NBSP}00"),
        (datetime(2027, 10, 31, 1, 59, tzinfo=UTC), f"31 octobre 2027 à 2{NBSP}h{NBSP}59"),
        # Winter is UTC+1, summer UTC+2.
        (datetime(2027, 1, 15, 23, 30, tzinfo=UTC), f"16 janvier 2027 à 0{NBSP}h{NBSP}30"),
        (datetime(2027, 5, 12, 12, 30, tzinfo=UTC), f"12 mai 2027 à 14{NBSP}h{NBSP}30"),
    ],
)
def test_paris_time_follows_the_dst_changes(utc: datetime, shown: str) -> None:
    assert paris(utc) == shown
    assert paris(utc.isoformat()) == shown  # the log's ISO text reads the same


def test_paris_styles_and_the_first_of_the_month() -> None:
    moment = datetime(2027, 5, 1, 7, 5, 9, tzinfo=UTC)  # 09:05:09 in Paris, a Saturday
    assert paris(moment, "date") == "1er mai 2027"
    assert paris(moment, "day") == "samedi 1er mai 2027"
    assert paris(moment, "time") == f"9{NBSP}h{NBSP}05"
    assert paris(moment) == f"1er mai 2027 à 9{NBSP}h{NBSP}05"
    assert paris(moment, "short") == "01/05/2027 à 09:05"
    assert paris(moment, "seconds") == "01/05/2027 09:05:09"
    assert paris(datetime(2027, 5, 11, tzinfo=UTC), "date") == "11 mai 2027"  # « 11 », never « 11er »
    assert paris(datetime(2027, 5, 21, tzinfo=UTC), "day") == "vendredi 21 mai 2027"


def test_no_moment_reads_as_the_missing_text() -> None:
    assert paris(None) == "" and paris("") == ""
    assert paris(None, "short", missing="—") == "—"


def test_a_naive_moment_is_utc_and_an_offset_is_kept() -> None:
    assert as_datetime("2027-05-12T12:30:00") == datetime(2027, 5, 12, 12, 30, tzinfo=UTC)
    other = datetime(2027, 5, 12, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert as_datetime(other) is other


def test_datetime_local_inputs_are_paris_time() -> None:
    assert paris_input(datetime(2027, 3, 28, 1, 0, tzinfo=UTC)) == "2027-03-28T03:00"
    read = from_paris_input(" 2027-10-31T12:00 ")
    assert read == datetime(2027, 10, 31, 12, 0, tzinfo=PARIS)
    assert read.astimezone(UTC) == datetime(2027, 10, 31, 11, 0, tzinfo=UTC)  # winter time again
    assert from_paris_input("demain") == "demain"  # the model refuses it, in French
    assert paris_input(None) == ""


def test_a_week_is_named_by_its_monday_day_and_month() -> None:
    assert day_month(date(2025, 10, 6)) == "06/10"
    assert day_month(date(2027, 1, 4)) == "04/01"


def test_numbers_and_points_group_by_three_with_a_narrow_no_break_space() -> None:
    assert points(2500) == f"2{NNBSP}500"
    assert number(1234567) == f"1{NNBSP}234{NNBSP}567"
    assert points(999) == "999"
    assert points(None) == "0" and points(0) == "0"


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 élève"), (1, "1 élève"), (2, "2 élèves"), (1500, f"1{NNBSP}500 élèves"),
     (1_000_000, f"1{NNBSP}000{NNBSP}000 élèves")],
)
def test_plural_counts_zero_and_one_as_singular(count: int, shown: str) -> None:
    assert plural(count, "élève") == shown


def test_plural_takes_an_irregular_form() -> None:
    assert plural(1, "vœu", "vœux") == "1 vœu"
    assert plural(3, "vœu", "vœux") == "3 vœux"
