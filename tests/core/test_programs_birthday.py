"""Birthday bonuses and anniversary milestones at their edges, on a hand-built history
(docs/loyalty.md: "a bonus at 00:00 UTC on the day, at most once per 365 days; a birthday first
seen fewer than 30 days before the date pays from next year"; a 29 February birthday is kept
on 28 February in common years, :func:`shopsync.core.loyalty._birthday_at`)."""

from __future__ import annotations

import datetime as dt

from shopsync.core.loyalty import DAY, UNIT, BirthdayInput, History, OrderFacts, derive, to_micros
from shopsync.core.policy import Policy

RULES = Policy.from_dict({"loyalty": {"tiers": {"tiers": []}}}).loyalty
MILESTONES = Policy.from_dict(
    {"loyalty": {"tiers": {"tiers": []}, "milestones": {"anniversary_points": 250}}}
).loyalty


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return to_micros(dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc))


def birthdays(entered: int, month: int, day: int, as_of: int) -> list[str]:
    history = History("c", birthdays=(BirthdayInput(entered, month, day),))
    entries = derive(history, RULES, as_of, currency="USD").entries
    return [e.key.rsplit(":", 1)[1] for e in entries if e.key.startswith("bonus:birthday:")]


def test_a_leap_day_birthday_every_year_on_the_28th_in_common_years() -> None:
    got = birthdays(utc(2023, 1, 1), 2, 29, utc(2028, 12, 31))
    assert got == [
        "2023-02-28",
        "2024-02-29",
        "2025-02-28",
        "2026-02-28",
        "2027-02-28",
        "2028-02-29",
    ]


def test_paid_at_midnight_utc_on_the_day_not_a_microsecond_before() -> None:
    entered = utc(2023, 1, 1)
    assert birthdays(entered, 6, 15, utc(2023, 6, 15) - 1) == []
    assert birthdays(entered, 6, 15, utc(2023, 6, 15)) == ["2023-06-15"]


def test_entered_thirty_days_before_pays_this_year_twenty_nine_waits() -> None:
    day = utc(2024, 6, 15)
    assert birthdays(day - 30 * DAY, 6, 15, day) == ["2024-06-15"]
    assert birthdays(day - 30 * DAY + 1, 6, 15, day) == []
    assert birthdays(day - 30 * DAY + 1, 6, 15, utc(2025, 6, 15)) == ["2025-06-15"]


def test_an_anniversary_of_a_leap_day_first_order() -> None:
    first = utc(2024, 2, 29, 10)
    order = OrderFacts("o1", first, first, None, "USD", 50 * UNIT, 50 * UNIT)
    derivation = derive(History("c", (order,)), MILESTONES, utc(2026, 3, 1), currency="USD")
    keys = [e.key for e in derivation.entries if e.key.startswith("bonus:anniversary:")]
    assert keys == ["bonus:anniversary:c:2025-02-28", "bonus:anniversary:c:2026-02-28"]
