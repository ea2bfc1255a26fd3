"""The retention rule (CSP R1112-7 as summarised by records-security.md)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from console.identity import add_years, decide, retention_end


def test_twenty_years_after_last_contact() -> None:
    assert retention_end(date(2000, 5, 1), date(1950, 1, 1), None) == date(2020, 5, 1)


def test_minor_kept_at_least_to_28th_birthday() -> None:
    # Seen at 2 years old: 20 years later they are 22 -> kept until 28.
    assert retention_end(date(2002, 1, 1), date(2000, 1, 1), None) == date(2028, 1, 1)
    # Seen at 17: 20 years later they are 37, already past 28.
    assert retention_end(date(2017, 6, 1), date(2000, 1, 1), None) == date(2037, 6, 1)
    # Seen at 18 exactly: an adult.
    assert retention_end(date(2018, 1, 1), date(2000, 1, 1), None) == date(2038, 1, 1)


def test_deceased_ten_years_after_death() -> None:
    assert retention_end(date(2000, 1, 1), date(1930, 1, 1), date(2001, 3, 4)) == date(2011, 3, 4)
    # Also shortens a minor's retention ("dans tous les cas").
    assert retention_end(date(2002, 1, 1), date(2000, 1, 1), date(2003, 1, 1)) == date(2013, 1, 1)


def test_29_february_anniversary_falls_on_1_march() -> None:
    assert add_years(date(2004, 2, 29), 1) == date(2005, 3, 1)
    assert add_years(date(2004, 2, 29), 4) == date(2008, 2, 29)


def test_decisions() -> None:
    kw = {"last_contact": date(2000, 1, 1), "birth_date": date(1950, 1, 1), "death_date": None}
    assert decide("p", date(2019, 12, 31), held=False, **kw).action == "keep"
    assert decide("p", date(2020, 1, 1), held=False, **kw).action == "shred"
    assert decide("p", date(2030, 1, 1), held=True, **kw).action == "held"
    assert decide("p", date(2030, 1, 1), held=False, already_shredded=True, **kw).action == (
        "shredded"
    )


@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1)),
    age_days=st.integers(min_value=0, max_value=40_000),
    death_after=st.none() | st.integers(min_value=0, max_value=20_000),
)
def test_never_shorter_than_the_rules_allow(
    birth: date, age_days: int, death_after: int | None
) -> None:
    from datetime import timedelta

    last = birth + timedelta(days=age_days)
    death = None if death_after is None else last + timedelta(days=death_after)
    end = retention_end(last, birth, death)
    if death is not None and death < add_years(last, 10):
        assert end == add_years(death, 10)
    else:
        assert end >= add_years(last, 20)
        if last < add_years(birth, 18):
            assert end >= add_years(birth, 28)
