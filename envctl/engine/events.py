"""What the executor reports while it works: the presenter (render/progress.py) turns these
into lines or a live view. Events arrive one at a time (the executor serialises them), from
worker threads."""
from __future__ import annotations

from dataclasses import dataclass

from envctl.model.address import Address
from envctl.plan.changes import Action


@dataclass(frozen=True)
class Started:
    address: Address
    action: Action


@dataclass(frozen=True)
class Waiting:
    """Something the change is waiting for: a status to be reached, or a retry of a temporary error."""

    address: Address
    status: str


@dataclass(frozen=True)
class Done:
    address: Address
    action: Action
    id: str | None
    seconds: float


@dataclass(frozen=True)
class Failed:
    address: Address
    action: Action
    message: str


@dataclass(frozen=True)
class Skipped:
    """Not attempted: a dependency failed, the change is blocked, or the run was stopped."""

    address: Address
    reason: str


Event = Started | Waiting | Done | Failed | Skipped
