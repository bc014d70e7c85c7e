"""Temporary or permanent: which failures are worth another try, and trying again.

botocore's standard retry mode already retries throttling, 5xx and dropped connections
inside each call (the session bounds the attempts). What reaches this layer is what is
left of those, plus errors that clear with time: eventual consistency (a VPC id not yet
visible), dependencies still going away (DependencyViolation) and IAM propagation (a role
Lambda "cannot assume" for the first seconds of its life). Those are retried with jittered
exponential backoff for a bounded window (TF's rule: two minutes for IAM propagation).
Everything else is permanent: retrying AccessDenied or a bad parameter only hides it.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from envctl.aws import errors

T = TypeVar("T")

DEFAULT_WINDOW_S = 120.0


class Temporary(Exception):
    """Raise to say: this clears with time, try again (within the window)."""


class Permanent(Exception):
    """Raise to say: trying again will not help."""


def classify(e: BaseException) -> type[Temporary] | type[Permanent]:
    """Temporary for throttling, 5xx, dropped connections, eventual consistency and IAM
    propagation; Permanent for everything else (including bugs)."""
    if isinstance(e, Temporary):
        return Temporary
    if isinstance(e, Permanent):
        return Permanent
    if errors.is_transient(e) or errors.clears_with_time(e):
        return Temporary
    return Permanent


def is_temporary(e: BaseException) -> bool:
    return classify(e) is Temporary


def backoff(attempt: int, base_s: float = 1.0, max_s: float = 20.0, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number `attempt` (1, 2, …): exponential, capped, with equal jitter."""
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


def retry(fn: Callable[[], T], *, deadline_s: float = DEFAULT_WINDOW_S,
          on_retry: Callable[[int, BaseException, float], None] | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
          base_s: float = 1.0, max_s: float = 20.0, rand: Callable[[], float] = random.random) -> T:
    """Call `fn` until it returns; retry Temporary errors while the next try would still start
    within `deadline_s` of the first; raise Permanent ones (and the last Temporary) as they are.

    `on_retry(attempt, error, delay)` hears each retry before its sleep.
    """
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as e:
            if not is_temporary(e):
                raise
            delay = backoff(attempt, base_s, max_s, rand)
            if clock() + delay - start > deadline_s:
                raise
            if on_retry is not None:
                on_retry(attempt, e, delay)
            sleep(delay)
