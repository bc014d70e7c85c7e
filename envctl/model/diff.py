"""Field-by-field comparison of two props models: the generic half of every kind's diff."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from envctl.model.graph import Unknown, has_unknown


@dataclass(frozen=True)
class AttrChange:
    """One attribute that differs: `before` is live AWS, `after` is the spec."""

    path: str
    before: Any
    after: Any
    forces_replace: bool = False

    @property
    def unknown(self) -> bool:
        return has_unknown(self.after)


def diff_props(desired: BaseModel, observed: BaseModel, replace_on: frozenset[str] = frozenset(),
               set_fields: frozenset[str] = frozenset(), ignore: frozenset[str] = frozenset()) -> list[AttrChange]:
    """Every top-level field whose value differs. Fields in `set_fields` compare without order."""
    changes = []
    for name in type(desired).model_fields:
        if name in ignore:
            continue
        after = getattr(desired, name)
        before = getattr(observed, name)
        if _equal(after, before, name in set_fields):
            continue
        changes.append(AttrChange(name, plain(before), plain(after), name in replace_on))
    return changes


def _equal(a: Any, b: Any, as_set: bool) -> bool:
    if has_unknown(a):
        return False
    if as_set and isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return sorted(map(_key, a)) == sorted(map(_key, b))
    return plain(a) == plain(b)


def _key(v: Any) -> str:
    return json.dumps(plain(v), sort_keys=True, default=str)


def plain(value: Any) -> Any:
    """JSON-able form of a props value (models → dicts, tuples → lists, Unknown stays)."""
    if isinstance(value, Unknown):
        return value
    if isinstance(value, BaseModel):
        return {k: plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
