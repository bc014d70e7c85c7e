"""The one generic wait: poll a status until it reaches a target, bounded, explaining itself.

Kinds keep their own waiters (which states are pending, which are the target, what the
failure reason is) and share only this loop, like TF's StateChangeConf:

    wait_until(lambda: _status(client, nat_id), pending={"pending"}, target={"available"},
               timeout=self.timeouts.create, describe=f"NAT gateway {nat_id}")

`fetch()` returns `(status, reason)` (reason: AWS's failure message, or None), or None when
the resource is gone. "gone" may be named in `target` (waiting for a delete) or in `pending`
(a resource not yet visible right after create, eventual consistency).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

GONE = "gone"
T = TypeVar("T")

Fetch = Callable[[], "tuple[str, str | None] | None"]


class WaitFailed(RuntimeError):
    """The resource reached a status that is neither pending nor the target."""

    def __init__(self, describe: str, status: str, reason: str | None, target: Collection[str]):
        self.status = status
        self.reason = reason
        wanted = " or ".join(sorted(target))
        because = f": {reason}" if reason else ""
        super().__init__(f"{describe} is {status}, expected {wanted}{because}")


class WaitTimeout(TimeoutError):
    """The target was not reached in time; says the last status seen and why."""

    def __init__(self, describe: str, timeout: float, status: str | None, reason: str | None,
                 target: Collection[str]):
        self.status = status
        self.reason = reason
        wanted = " or ".join(sorted(target))
        because = f" ({reason})" if reason else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {describe} to be {wanted}; "
                         f"last status: {status}{because}")


def wait_until(fetch: Fetch, *, pending: Collection[str], target: Collection[str], timeout: float,
               interval: float = 2.0, max_interval: float = 15.0, stable_reads: int = 1,
               describe: str = "the resource", on_status: Callable[[str], None] | None = None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> tuple[str, str | None] | None:
    """Poll `fetch` until its status is in `target` `stable_reads` times in a row.

    Returns the last `(status, reason)`, or None when the target was "gone" and it is.
    Raises WaitFailed for an unexpected status and WaitTimeout after `timeout` seconds.
    The interval grows by half each poll up to `max_interval`; `on_status` hears each new status.
    """
    deadline = clock() + timeout
    delay = interval
    in_target = 0
    last: tuple[str, str | None] | None = None
    while True:
        got = fetch()
        status, reason = (GONE, None) if got is None else got
        if on_status and (last is None or status != last[0]):
            on_status(status)
        last = (status, reason)
        if status in target:
            in_target += 1
            if in_target >= stable_reads:
                return got
        elif status in pending:
            in_target = 0
        else:
            raise WaitFailed(describe, status, reason, target)
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(describe, timeout, status, reason, target)
        sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)


def wait_for(describe_item: Callable[[], T | None], status_of: Callable[[T], tuple[str, str | None]],
             **options: Any) -> T | None:
    """wait_until over a describe: returns the answer whose status reached the target (None:
    gone), so the describe that sees a resource ready is also its read, not made twice.

    `describe_item()` answers the resource, or None when it does not exist (yet); `options`
    are wait_until's.
    """
    last: list[T | None] = [None]

    def fetch() -> tuple[str, str | None] | None:
        item = last[0] = describe_item()
        return None if item is None else status_of(item)

    wait_until(fetch, **options)
    return last[0]
