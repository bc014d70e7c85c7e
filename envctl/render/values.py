"""How attribute values read in a plan: short, one line each, unknowns spelled out.

A changed list (rules, routes, subnet ids) shows only the items that go (`- …`) and come
(`+ …`); a changed map (tags) only its keys that differ. `before` is live AWS, `after` the
spec, so `- x` reads "create removes x". Values of keys that name a secret (a function's
PARTNER_API_TOKEN, …; plan.changes.is_sensitive) read "(sensitive)": compared, never shown.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from envctl.plan.changes import SENSITIVE_TEXT, UNKNOWN_TEXT, is_sensitive, jsonable, masked

ITEM_WIDTH = 100       # one list item or map entry
SIDE_WIDTH = 60        # each side of `before → after`


def show(value: Any, width: int = SIDE_WIDTH) -> str:
    """One value as compact JSON (unknowns unquoted), cut to `width` characters."""
    return _cut(_text(masked(jsonable(value))), width)


def attribute_lines(before: Any, after: Any, *, created: bool = False) -> list[str]:
    """The lines that show one attribute's change (at least one line, never empty)."""
    old, new = jsonable(before), jsonable(after)
    if created:
        if isinstance(new, list) and new:
            return [_cut(_text(_compact(masked(item))), ITEM_WIDTH) for item in new]
        if isinstance(new, dict) and new:
            return [_cut(f"{k}: {_entry(k, v)}", ITEM_WIDTH) for k, v in new.items()]
        return [show(new)]
    if isinstance(old, list) and isinstance(new, list):
        lines = _list_lines(old, new)
        if lines:
            return lines
    if isinstance(old, dict) and isinstance(new, dict):
        lines = _map_lines(old, new)
        if lines:
            return lines
    return [f"{show(old)} → {show(new)}"]


# ------------------------------------------------------------------ helpers

def _list_lines(old: list, new: list) -> list[str]:
    """`- item` for each item only live AWS has, `+ item` for each only the spec has.
    Empty when the lists hold the same items (an order change: the caller shows both)."""
    def key(item) -> str:
        return json.dumps(item, sort_keys=True)

    gone = Counter(map(key, old)) - Counter(map(key, new))
    come = Counter(map(key, new)) - Counter(map(key, old))
    lines = []
    for sign, items, wanted in (("-", old, gone), ("+", new, come)):
        for item in items:
            if wanted[key(item)] > 0:
                wanted[key(item)] -= 1
                lines.append(_cut(f"{sign} {_text(_compact(masked(item)))}", ITEM_WIDTH))
    return lines


def _map_lines(old: dict, new: dict) -> list[str]:
    lines = []
    for k in [*old, *(k for k in new if k not in old)]:
        if k not in new:
            lines.append(_cut(f"- {k}: {_entry(k, old[k])}", ITEM_WIDTH))
        elif k not in old:
            lines.append(_cut(f"+ {k}: {_entry(k, new[k])}", ITEM_WIDTH))
        elif old[k] != new[k]:
            changed = f"{SENSITIVE_TEXT}, changed" if is_sensitive(k) else f"{show(old[k])} → {show(new[k])}"
            lines.append(f"{k}: {changed}")
    return lines


def _entry(key: str, value: Any) -> str:
    """One map entry's value as shown: hidden when its key names a secret."""
    return SENSITIVE_TEXT if is_sensitive(key) and value is not None else _text(masked(value))


def _compact(item: Any) -> Any:
    """A list item without its unset (null) fields: a rule reads as what it allows."""
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if v is not None}
    return item


def _text(plain: Any) -> str:
    if plain in (UNKNOWN_TEXT, SENSITIVE_TEXT):
        return plain
    return (json.dumps(plain, ensure_ascii=False).replace(json.dumps(UNKNOWN_TEXT), UNKNOWN_TEXT)
            .replace(json.dumps(SENSITIVE_TEXT), SENSITIVE_TEXT))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
