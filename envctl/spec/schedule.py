"""EventBridge schedule expressions, checked as EventBridge checks them.

cron: six fields `minutes hours day-of-month month day-of-week year`, one of
day-of-month and day-of-week must be `?`. rate: `N unit`, singular unit for 1.
"""
from __future__ import annotations

import re

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()

# name, low, high, extra characters allowed, names
_FIELDS = (
    ("minutes", 0, 59, "", ()),
    ("hours", 0, 23, "", ()),
    ("day-of-month", 1, 31, "?LW", ()),
    ("month", 1, 12, "", _MONTHS),
    ("day-of-week", 1, 7, "?L#", _DAYS),
    ("year", 1970, 2199, "", ()),
)


def check_cron(expr: str) -> None:
    parts = expr.split()
    if len(parts) != 6:
        raise ValueError(f"cron {expr!r} needs 6 fields (minutes hours day-of-month month day-of-week year), "
                         f"got {len(parts)}")
    for text, (name, lo, hi, extra, names) in zip(parts, _FIELDS):
        _check_field(text, name, lo, hi, extra, names, expr)
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ValueError(f"cron {expr!r}: exactly one of day-of-month and day-of-week must be '?'")


def _check_field(text, name, lo, hi, extra, names, expr):
    if text == "?" and "?" in extra:
        return
    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            raise ValueError(f"cron {expr!r}: bad step {step!r} in {name}")
        if base in ("*",) or (base == "L" and "L" in extra):
            continue
        if "#" in base and "#" in extra:
            day, _, nth = base.partition("#")
            _value(day, name, lo, hi, names, expr)
            if not (nth.isdigit() and 1 <= int(nth) <= 5):
                raise ValueError(f"cron {expr!r}: bad '#' in {name}")
            continue
        if base.endswith("W") and "W" in extra:
            base = base[:-1]
        if base.endswith("L") and "L" in extra and len(base) > 1:
            base = base[:-1]
        start, dash, end = base.partition("-")
        _value(start, name, lo, hi, names, expr)
        if dash:
            _value(end, name, lo, hi, names, expr)


def _value(text, name, lo, hi, names, expr):
    if text.upper() in names:
        return
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise ValueError(f"cron {expr!r}: {text!r} is not a valid {name} ({lo}-{hi})")


_RATE = re.compile(r"^(\d+) (minute|minutes|hour|hours|day|days)$")


def check_rate(expr: str) -> None:
    m = _RATE.match(expr or "")
    if not m:
        raise ValueError(f"rate {expr!r} must be 'N minutes', 'N hours' or 'N days'")
    n, unit = int(m.group(1)), m.group(2)
    if n < 1:
        raise ValueError(f"rate {expr!r} must be at least 1")
    if (n == 1) != (not unit.endswith("s")):
        raise ValueError(f"rate {expr!r}: use '{n} {unit.rstrip('s') + ('' if n == 1 else 's')}'")
