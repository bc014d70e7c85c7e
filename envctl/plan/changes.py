"""What a plan says: one ResourceChange per resource, frozen and JSON-serialisable.

The same Plan object is shown by `envctl diff` and executed by `envctl create`, so what the
user saw is what runs. The desired node and the observed resource a change is about are not
copied in here: the executor looks them up by address in the graph and the observed map.

`Plan.to_json()` is a documented contract for CI (version 1):

    {"version": 1, "project": "acme", "environment": "qa",
     "summary": {"create": 1, "update": 0, "replace": 0, "delete": 0, "noop": 4, "orphan": 0},
     "changes": [{"address": "queue/work-units", "kind": "queue", "action": "create",
                  "physical_name": "acme-qa-work-units", "id": null,
                  "changes": [{"path": "visibility_timeout_s", "before": null, "after": 30,
                               "forces_replace": false}],
                  "replace_because": [], "blocked": null}, ...]}

Values are plain JSON; a value not known before a dependency exists is the string
"(known after create)", and the value of a map key that names a secret (a function's
environment variable PARTNER_API_TOKEN, DB_PASSWORD, …: see `is_sensitive`) is "(sensitive)".
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel

from envctl.model.address import Address
from envctl.model.diff import AttrChange
from envctl.model.graph import Ref, Template, Unknown

JSON_VERSION = 1
UNKNOWN_TEXT = "(known after create)"


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"
    ORPHAN = "orphan"      # tagged for this environment but not in the spec: listed, left alone unless pruning

    def __str__(self) -> str:
        return self.value


# Actions that change AWS; NOOP and ORPHAN do not.
MUTATING = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE})


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource.

    `changes` are attribute-level differences (for CREATE: every attribute, `before` None);
    `replace_because` names the fields that force a REPLACE; `blocked` is the reason a
    change will not be made (a stateful resource, a protected environment), else None.
    """

    address: Address
    action: Action
    physical_name: str | None = None
    id: str | None = None                      # the live resource's id; None for CREATE
    changes: tuple[AttrChange, ...] = ()
    replace_because: tuple[str, ...] = ()
    blocked: str | None = None

    @property
    def kind(self) -> str:
        return self.address.kind

    @property
    def mutating(self) -> bool:
        """True when executing this change calls AWS (a blocked change never does)."""
        return self.action in MUTATING and self.blocked is None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "kind": self.kind,
            "action": self.action.value,
            "physical_name": self.physical_name,
            "id": self.id,
            "changes": [{"path": c.path, "before": masked(jsonable(c.before)), "after": masked(jsonable(c.after)),
                         "forces_replace": c.forces_replace} for c in self.changes],
            "replace_because": list(self.replace_because),
            "blocked": self.blocked,
        }


@dataclass(frozen=True)
class Plan:
    """Every resource of one environment and what happens to it, in execution order."""

    project: str
    environment: str
    changes: tuple[ResourceChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        """No create, update, replace or delete (blocked ones included: they are differences)."""
        return not any(c.action in MUTATING for c in self.changes)

    @property
    def blocked(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.blocked is not None)

    def counts(self) -> dict[Action, int]:
        """Number of resources per action, every action present (zero included)."""
        out = {a: 0 for a in Action}
        for c in self.changes:
            out[c.action] += 1
        return out

    def get(self, address: Address) -> ResourceChange | None:
        return next((c for c in self.changes if c.address == address), None)

    def __iter__(self):
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "project": self.project,
            "environment": self.environment,
            "summary": {a.value: n for a, n in self.counts().items()},
            "changes": [c.to_json() for c in self.changes],
        }


def jsonable(value: Any) -> Any:
    """Plain JSON form of a props value: models → objects, tuples → lists, unknowns → text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Unknown):
        return UNKNOWN_TEXT
    if isinstance(value, Ref):
        return f"${{{value}}}"
    if isinstance(value, (Template, Address)):
        return str(value)
    if isinstance(value, BaseModel):
        return {k: jsonable(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


# Map keys whose values are not shown in plans (text or JSON): a function's environment may
# carry a token or a password, and plans end up in CI logs. The spec holds them in clear, so
# this hides them from logs, not from readers of the repository: real secrets belong in
# Secrets Manager (the database's master password is managed there by AWS).
SENSITIVE_TEXT = "(sensitive)"
_SENSITIVE_KEY = re.compile(r"secret|passw(or)?d|token|credential|private_?key|api_?key", re.IGNORECASE)


def is_sensitive(key: str) -> bool:
    """A map key that names a secret: *SECRET*, *PASSWORD*/*PASSWD*, *TOKEN*, *CREDENTIAL*,
    *PRIVATE_KEY*, *API_KEY* (any case)."""
    return bool(_SENSITIVE_KEY.search(key))


def masked(plain: Any) -> Any:
    """A `jsonable` value with the values of sensitive keys, at any depth, replaced by "(sensitive)"."""
    if isinstance(plain, dict):
        return {k: SENSITIVE_TEXT if is_sensitive(k) and v is not None else masked(v) for k, v in plain.items()}
    if isinstance(plain, list):
        return [masked(v) for v in plain]
    return plain
