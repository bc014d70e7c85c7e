"""EventBridge schedule expressions, checked as EventBridge checks them (moto accepts anything)."""
from __future__ import annotations

import pytest

from envctl.spec.schedule import check_cron, check_rate

VALID_CRON = [
    "0 2 * * ? *",                  # every night at 02:00
    "0/15 * * * ? *",               # every 15 minutes
    "*/5 8-17 ? * MON-FRI *",       # working hours, names for days
    "0 12 ? * 2#1 *",               # the first Monday of the month
    "0 18 L * ? *",                 # the last day of the month
    "0 9 15W * ? *",                # the weekday nearest the 15th
    "0 9 ? * 6L *",                 # the last Friday
    "0 0 1 JAN,JUL ? 2026-2030",    # month names, a list, a year range
    "0 0 ? * SUN *",
    "59 23 31 12 ? 2199",
]

INVALID_CRON = [
    ("0 2 * * *", "needs 6 fields (minutes hours day-of-month month day-of-week year), got 5"),
    ("0 2 * * ? * *", "got 7"),
    ("", "got 0"),
    ("0 2 * * * *", "exactly one of day-of-month and day-of-week must be '?'"),
    ("0 2 ? * ? *", "exactly one of day-of-month and day-of-week must be '?'"),
    ("60 2 * * ? *", "'60' is not a valid minutes (0-59)"),
    ("0 24 * * ? *", "'24' is not a valid hours (0-23)"),
    ("0 2 0 * ? *", "'0' is not a valid day-of-month (1-31)"),
    ("0 2 32 * ? *", "'32' is not a valid day-of-month (1-31)"),
    ("0 2 ? 13 MON *", "'13' is not a valid month (1-12)"),
    ("0 2 ? FOO MON *", "'FOO' is not a valid month (1-12)"),
    ("0 2 ? * 8 *", "'8' is not a valid day-of-week (1-7)"),
    ("0 2 ? * FUNDAY *", "'FUNDAY' is not a valid day-of-week (1-7)"),
    ("0 2 * * ? 1969", "'1969' is not a valid year (1970-2199)"),
    ("*/0 * * * ? *", "bad step '0' in minutes"),
    ("0/x * * * ? *", "bad step 'x' in minutes"),
    ("0 2 ? * MON#6 *", "bad '#' in day-of-week"),
    ("0 2 L * L *", "exactly one of day-of-month and day-of-week must be '?'"),
    ("a 2 * * ? *", "'a' is not a valid minutes"),
    ("0 2 ? * 2#1 L", "'L' is not a valid year"),
]

VALID_RATE = ["1 minute", "5 minutes", "1 hour", "12 hours", "1 day", "7 days"]

INVALID_RATE = [
    ("1 minutes", "use '1 minute'"),
    ("5 minute", "use '5 minutes'"),
    ("1 days", "use '1 day'"),
    ("0 minutes", "must be at least 1"),
    ("5 fortnights", "must be 'N minutes', 'N hours' or 'N days'"),
    ("five minutes", "must be 'N minutes'"),
    ("5minutes", "must be 'N minutes'"),
    ("-1 minutes", "must be 'N minutes'"),
    ("", "must be 'N minutes'"),
]


@pytest.mark.parametrize("expr", VALID_CRON)
def test_valid_cron(expr):
    check_cron(expr)


@pytest.mark.parametrize(("expr", "message"), INVALID_CRON)
def test_invalid_cron(expr, message):
    with pytest.raises(ValueError) as e:
        check_cron(expr)
    assert message in str(e.value)


@pytest.mark.parametrize("expr", VALID_RATE)
def test_valid_rate(expr):
    check_rate(expr)


@pytest.mark.parametrize(("expr", "message"), INVALID_RATE)
def test_invalid_rate(expr, message):
    with pytest.raises(ValueError) as e:
        check_rate(expr)
    assert message in str(e.value)
