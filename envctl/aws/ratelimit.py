"""Client-side rate limiting: a token bucket per API action, set from AWS's limits, adapting to throttles.

AWS throttles each account per region with token buckets. EC2 publishes its own: every API
action has a bucket, and its size and refill rate depend on the kind of action
(https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). envctl keeps the
same buckets on its side and takes a token before every HTTP attempt (retries too), so raising
--parallelism queues calls here instead of sending a storm that AWS refuses: botocore's retry
quota runs dry under a storm, and calls then fail that patience would have let through.

The buckets cannot see other clients of the account, and most services do not publish their
limits, so each bucket also adapts: a throttling answer halves its rate (and empties it), and
while calls go through the rate grows back slowly (RECOVERY), up to the configured rate.

A bucket may go into debt: a caller takes its token at once and sleeps until the token would
have arrived, outside the lock, so waiting callers are served in the order they came.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from envctl.aws import errors


@dataclass(frozen=True)
class Limit:
    rate: float       # tokens added a second
    burst: float      # what the bucket holds when full


# (signing name, kind) → Limit, where kind is "read" or "write" (aws.session.is_read).
# EC2: the published request-rate limits for non-mutating (Describe*) and mutating actions.
# CloudWatch: its published per-action quotas (PutMetricAlarm and DeleteAlarms 3/s, DescribeAlarms 9/s).
# Others publish no token buckets: DEFAULT refills generously but holds little, so that a first
# burst cannot overrun a smaller real bucket by much; the adaptation finds the real rate.
LIMITS: dict[tuple[str, str], Limit] = {
    ("ec2", "read"): Limit(20, 100),
    ("ec2", "write"): Limit(5, 200),
    ("monitoring", "read"): Limit(9, 9),
    ("monitoring", "write"): Limit(3, 3),
}
# Actions whose published limit differs from their kind's.
ACTION_LIMITS: dict[tuple[str, str], Limit] = {
    ("ec2", "RunInstances"): Limit(2, 1000),
    ("ec2", "TerminateInstances"): Limit(20, 1000),
}
DEFAULT = Limit(50, 10)
# Envctl aims a little under the published rates: its clock and AWS's are not the same clock,
# and requests sent in order can arrive out of it.
MARGIN = 0.9
SLOWEST = 0.05        # adaptation never goes below this share of the configured rate
RECOVERY = 0.05       # after a throttle, the rate grows back by this share of the configured rate a second


def published_limit(service: str, action: str, read: bool) -> Limit | None:
    """AWS's published limit of one action: its own, else its kind's in its service; None if unpublished."""
    return ACTION_LIMITS.get((service, action)) or LIMITS.get((service, "read" if read else "write"))


def limit_for(service: str, action: str, read: bool) -> Limit:
    return published_limit(service, action, read) or DEFAULT


class TokenBucket:
    def __init__(self, limit: Limit, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.ceiling = limit.rate * MARGIN
        self.rate = self.ceiling
        self.burst = max(1.0, limit.burst * MARGIN)
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._last = self._grown = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until it is there; returns the seconds slept."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        """AWS refused a call of this bucket for its rate: halve the rate and start empty."""
        with self._lock:
            self._refill()
            self.rate = max(self.ceiling * SLOWEST, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)
            self._grown = self._last

    def succeeded(self) -> None:
        with self._lock:
            if self.rate < self.ceiling:
                self._refill()
                self.rate = min(self.ceiling, self.rate + self.ceiling * RECOVERY * (self._last - self._grown))
                self._grown = self._last

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now


class RateLimiter:
    """The buckets of one AWS session (one account and region), made on first use.

    `before_send` and `after_attempt` are botocore event handlers (see AwsSession.client):
    the first takes a token before each HTTP attempt, the second tells the bucket how AWS
    answered.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 is_read: Callable[[str], bool]):
        self._clock, self._sleep, self._is_read = clock, sleep, is_read
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self.throttles = 0          # throttling answers seen (each one also retried by botocore)

    def bucket(self, service: str, action: str) -> TokenBucket:
        key = (service, action)
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = TokenBucket(limit_for(service, action, self._is_read(action)),
                                                     clock=self._clock, sleep=self._sleep)
            return b

    def handlers(self, service: str) -> tuple[Callable, Callable]:
        """botocore handlers for one client whose signing name is `service`."""

        def before_send(event_name: str = "", **kwargs) -> None:
            self.bucket(service, event_name.rsplit(".", 1)[-1]).take()

        def after_attempt(response=None, operation=None, **kwargs) -> None:
            if response is None or operation is None:
                return None             # no answer (a dropped connection): nothing said about the rate
            bucket = self.bucket(service, operation.name)
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code", "")
            if code in errors.THROTTLE or getattr(http, "status_code", 0) == 429:
                with self._lock:
                    self.throttles += 1
                bucket.throttled()
            elif getattr(http, "status_code", 500) < 400:
                bucket.succeeded()
            return None                 # never decides the retry: botocore's handler does

        return before_send, after_attempt
