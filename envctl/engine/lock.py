"""The environment lock: one run at a time may change an environment, held in AWS itself.

AWS is the state (DESIGN.md principle 1), so the lock lives there too, next to what it
guards: an item in a DynamoDB table of the account and region, `envctl-locks` (another
name through the CLI's ENVCTL_LOCK_TABLE). The table is shared by every project and
environment of the account and region, so it carries no envctl:project/environment tags
(only `envctl:lock-table=true`): no environment discovers it, destroy never deletes it.
It is made on first use (on demand billing, encrypted); two runs making it at once both
wait for it to be ACTIVE.

One item per environment, keyed `<project>/<environment>`:

    environment  "acme/qa"
    holder       "alice@ci-7"            user@host of the run
    pid          123
    command      "create"
    acquired_at  1718000467.2            seconds since the epoch, this machine's clock
    expires_at   1718000527.2            the lease: acquired_at + 60 s, renewed while the run lasts
    token        "9f1c…"                 random, this run's alone

- acquire = PutItem if `attribute_not_exists(environment) OR expires_at < :now OR token = :mine`:
  a free lock, an expired lease (a run that died without releasing) or our own (a retried
  put whose answer was lost) is taken; otherwise the item AWS returns names the holder and
  the run waits, polling with backoff, up to a timeout (0: fail at once).
- renew = PutItem of the same item with a later expires_at, if `token = :mine`, every
  lease/3 on a daemon thread (a put rather than an UpdateItem: a run makes the same kinds
  of call however long it lasts, which the fault tests' sweeps count on). A failed
  condition means the lock was broken (`envctl unlock`) or the lease ran out and another
  run took it: the run is told (LockLost) and renewal stops.
- release = DeleteItem if `token = :mine`: on exit, on errors and on Ctrl-C (the finally
  path). A run killed outright (SIGKILL, a lost machine) leaves the item, which blocks
  others until its lease runs out (at most a minute) or `envctl unlock` breaks it.

Time: leases are set and compared with the clocks of the machines running envctl, so it
assumes they agree to within a few seconds (NTP), well under the lease. A clock far behind
would see a dead run's lease as live for longer; one far ahead could take a live lease
(its holder then finds out at its next renewal, as LockLost).

This module never prints: what the caller may want to show (waiting for a holder, an
expired lease taken over, the lock lost) arrives through `on_event`.
"""
from __future__ import annotations

import datetime
import getpass
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from envctl.aws import errors
from envctl.aws.waiters import GONE, WaitTimeout, wait_until

DEFAULT_TABLE = "envctl-locks"
LOCK_TABLE_TAG = "envctl:lock-table"
KEY = "environment"
DEFAULT_LEASE_S = 60.0
DEFAULT_TIMEOUT_S = 300.0
TABLE_TIMEOUT_S = 120.0            # for a new table to become ACTIVE (seconds on AWS)


# ------------------------------------------------------------------ what the caller hears

@dataclass(frozen=True)
class Holder:
    """Who holds (or held) an environment's lock, as its item says."""

    key: str                        # "acme/qa"
    holder: str                     # "alice@ci-7"
    pid: int
    command: str
    acquired_at: float
    expires_at: float
    token: str

    def describe(self, now: float | None = None) -> str:
        """`alice@ci-7 (pid 123, create, since 12:01:07 UTC, lease until 12:02:07 UTC)`; the
        date too for a day other than `now`'s."""
        today = _utc(time.time() if now is None else now).date()
        since, until = _when(self.acquired_at, today), _when(self.expires_at, today)
        return f"{self.holder} (pid {self.pid}, {self.command}, since {since}, lease until {until})"

    def expired(self, now: float) -> bool:
        return self.expires_at < now


@dataclass(frozen=True)
class LockWaiting:
    """The lock is held by another run; this one waits for it (said once per holder)."""

    holder: Holder
    timeout: float


@dataclass(frozen=True)
class LockTakenOver:
    """The lock was taken from a run whose lease had run out (it died without releasing)."""

    previous: Holder


@dataclass(frozen=True)
class LockLost:
    """Renewal found the lock no longer ours: broken by `envctl unlock`, or taken after the
    lease ran out. Other runs may now change the environment too."""

    key: str
    now_held_by: Holder | None


@dataclass(frozen=True)
class LockNotReleased:
    """Release failed (AWS unreachable…); the item stays until its lease runs out."""

    key: str
    reason: str
    expires_at: float


class LockHeld(Exception):
    """The lock stayed held by another run for the whole timeout."""

    def __init__(self, holder: Holder, waited: float, now: float | None = None):
        self.holder = holder
        self.waited = waited
        super().__init__(f"{holder.key} is locked by {holder.describe(now)}")


# ------------------------------------------------------------------ the lock

def me() -> str:
    """user@host of this run."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 — no passwd entry (containers): the name is only informative
        user = os.environ.get("USER") or "unknown"
    return f"{user}@{socket.gethostname()}"


class EnvironmentLock:
    """The lock of one environment, for one run. `acquire`, then `release` (or use `hold`).

    `clock` (seconds since the epoch) and `sleep` are injectable, for tests.
    """

    def __init__(self, client: Any, project: str, environment: str, *, command: str,
                 table: str = DEFAULT_TABLE, lease_s: float = DEFAULT_LEASE_S,
                 on_event: Callable[[object], None] = lambda event: None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 holder: str | None = None, pid: int | None = None):
        self.client = client
        self.key = f"{project}/{environment}"
        self.command = command
        self.table = table
        self.lease_s = lease_s
        self.on_event = on_event
        self.clock = clock
        self.sleep = sleep
        self.holder = holder or me()
        self.pid = os.getpid() if pid is None else pid
        self.token = uuid.uuid4().hex
        self.acquired_at = 0.0
        self.held = False
        self._maybe_held = False        # a put was sent and its fate is unknown (interrupted, lost reply)
        self.waited = False             # another run held the lock when this one asked: plans may be stale
        self.lost = threading.Event()
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None

    # ---- acquire / renew / release
    def acquire(self, timeout: float = DEFAULT_TIMEOUT_S, *, poll_s: float = 1.0, max_poll_s: float = 10.0) -> None:
        """Take the lock, waiting up to `timeout` seconds for another run's; then keep it
        renewed. Raises LockHeld naming the holder when it stays taken."""
        blocker: dict[str, Holder] = {}

        def attempt() -> tuple[str, str | None]:
            other = self._try_put()
            if other is None:
                return "acquired", None
            if blocker.get("last") is None or blocker["last"].token != other.token:
                self.on_event(LockWaiting(other, timeout))
            blocker["last"] = other
            self.waited = True
            return "held", other.describe()

        try:
            wait_until(attempt, pending={"held"}, target={"acquired"}, timeout=timeout, interval=poll_s,
                       max_interval=max_poll_s, describe=f"the lock of {self.key}", sleep=self.sleep,
                       clock=self.clock)
        except WaitTimeout:
            raise LockHeld(blocker["last"], timeout, self.clock()) from None
        self._start_renewing()

    def renew(self) -> bool:
        """Push the lease on; False (and LockLost) when the lock is no longer ours."""
        try:
            self.client.put_item(TableName=self.table, Item=self._item(self.acquired_at, self.clock()),
                                 ConditionExpression="#token = :token", ExpressionAttributeNames={"#token": "token"},
                                 ExpressionAttributeValues={":token": {"S": self.token}})
            return True
        except Exception as e:
            if not (errors.is_condition_failed(e) or errors.is_not_found(e)):
                raise
        self.held = False
        self.lost.set()
        try:
            now_held_by = read(self.client, self.key, self.table)
        except Exception:  # noqa: BLE001 — who has it now is only informative
            now_held_by = None
        self.on_event(LockLost(self.key, now_held_by))
        return False

    def release(self) -> None:
        """Stop renewing and delete the item if it is still ours. Never raises for AWS errors
        (the lease runs out by itself): LockNotReleased says why."""
        self._stop_renewing.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if not (self.held or self._maybe_held):
            return
        self.held = self._maybe_held = False
        try:
            self.client.delete_item(TableName=self.table, Key=self._key(), ConditionExpression="#token = :token",
                                    ExpressionAttributeNames={"#token": "token"},
                                    ExpressionAttributeValues={":token": {"S": self.token}})
        except Exception as e:
            if errors.is_condition_failed(e) or errors.is_not_found(e):
                return              # broken or taken over meanwhile: nothing of ours to delete
            if not errors.is_aws_error(e):
                raise
            self.on_event(LockNotReleased(self.key, errors.describe(e), self.clock() + self.lease_s))

    # ---- private
    def _try_put(self) -> Holder | None:
        """One attempt: None when the lock is ours now, else who holds it."""
        now = self.clock()
        self._maybe_held = True
        try:
            answer = self._put(self._item(now, now), now)
        except Exception as e:
            if not errors.is_condition_failed(e):
                raise
            self._maybe_held = False
            old = errors.condition_failed_item(e)
            holder = _holder(old) if old else read(self.client, self.key, self.table)
            return holder or self._try_put()      # released just now: try again at once
        self.held, self._maybe_held = True, False
        self.acquired_at = now
        previous = _holder(answer.get("Attributes"))
        if previous is not None and previous.token != self.token:
            self.on_event(LockTakenOver(previous))
        return None

    def _put(self, item: dict, now: float) -> dict:
        params = dict(
            TableName=self.table, Item=item,
            ConditionExpression="attribute_not_exists(#key) OR expires_at < :now OR #token = :token",
            ExpressionAttributeNames={"#key": KEY, "#token": "token"},
            ExpressionAttributeValues={":now": _number(now), ":token": {"S": self.token}},
            ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        try:
            return self.client.put_item(**params)
        except Exception as e:
            if not errors.is_not_found(e):
                raise
        ensure_table(self.client, self.table, sleep=self.sleep)     # first use in this account and region
        return self.client.put_item(**params)

    def _item(self, acquired_at: float, now: float) -> dict:
        return {KEY: {"S": self.key}, "holder": {"S": self.holder}, "pid": {"N": str(self.pid)},
                "command": {"S": self.command}, "acquired_at": _number(acquired_at),
                "expires_at": _number(now + self.lease_s), "token": {"S": self.token}}

    def _key(self) -> dict:
        return {KEY: {"S": self.key}}

    def _start_renewing(self) -> None:
        self._stop_renewing.clear()

        def renew_until_stopped() -> None:
            # Event.wait is the timer: it returns True (and the loop ends) when release() is called.
            while not self._stop_renewing.wait(self.lease_s / 3):
                try:
                    if not self.renew():
                        return
                except Exception:  # noqa: BLE001 — a failed renewal is retried at the next tick;
                    pass           # if the lease runs out meanwhile, the next renew reports LockLost
        self._renewer = threading.Thread(target=renew_until_stopped, name=f"lock {self.key}", daemon=True)
        self._renewer.start()


@contextmanager
def hold(client: Any, project: str, environment: str, *, command: str, timeout: float = DEFAULT_TIMEOUT_S,
         **options) -> Iterator[EnvironmentLock]:
    """`with hold(ddb, "acme", "qa", command="create", timeout=300) as lock:` — released on
    the way out, whatever the way (exceptions and Ctrl-C included)."""
    lock = EnvironmentLock(client, project, environment, command=command, **options)
    try:
        lock.acquire(timeout)
        yield lock
    finally:
        lock.release()


# ------------------------------------------------------------------ reading and breaking

def read(client: Any, key: str, table: str = DEFAULT_TABLE) -> Holder | None:
    """Who holds the lock `key` ("acme/qa"), expired or not; None when nobody (or no table yet)."""
    try:
        item = client.get_item(TableName=table, Key={KEY: {"S": key}}, ConsistentRead=True).get("Item")
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    return _holder(item)


def break_lock(client: Any, key: str, table: str = DEFAULT_TABLE, token: str | None = None) -> bool:
    """Delete the lock `key` (envctl unlock). With `token`, only if that holder still has it.
    True when an item was deleted."""
    params: dict[str, Any] = dict(TableName=table, Key={KEY: {"S": key}}, ReturnValues="ALL_OLD")
    if token is not None:
        params.update(ConditionExpression="#token = :token", ExpressionAttributeNames={"#token": "token"},
                      ExpressionAttributeValues={":token": {"S": token}})
    try:
        return bool(client.delete_item(**params).get("Attributes"))
    except Exception as e:
        if errors.is_condition_failed(e) or errors.is_not_found(e):
            return False
        raise


def ensure_table(client: Any, table: str = DEFAULT_TABLE, *, timeout: float = TABLE_TIMEOUT_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Make the lock table if it is not there, and wait until it is ACTIVE. Two runs making
    it at once both succeed: the second one's ResourceInUseException means "being made"."""

    def status() -> tuple[str, None] | None:
        try:
            return client.describe_table(TableName=table)["Table"]["TableStatus"], None
        except Exception as e:
            if errors.is_not_found(e):
                return None         # not visible yet, right after create
            raise

    for attempt in (1, 2, 3):
        try:
            client.create_table(
                TableName=table, KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST", SSESpecification={"Enabled": True},
                Tags=[{"Key": LOCK_TABLE_TAG, "Value": "true"}])
            break
        except Exception as e:
            if errors.is_in_use(e):
                break               # made by another run (or by our own attempt, cut off)
            # Cut off (the session never re-sends a create blindly), throttled or a 5xx: it may
            # have been made; look before trying again.
            if not errors.is_transient(e) or attempt == 3:
                raise
            if status() is not None:
                break
    wait_until(status, pending={"CREATING", "UPDATING", GONE}, target={"ACTIVE"}, timeout=timeout,
               interval=1.0, describe=f"DynamoDB table {table}", sleep=sleep)


# ------------------------------------------------------------------ private

def _holder(item: dict | None) -> Holder | None:
    if not item or KEY not in item:
        return None

    def text(name: str) -> str:
        return item.get(name, {}).get("S", "?")

    def number(name: str) -> float:
        return float(item.get(name, {}).get("N", "0"))

    return Holder(key=text(KEY), holder=text("holder"), pid=int(number("pid")), command=text("command"),
                  acquired_at=number("acquired_at"), expires_at=number("expires_at"), token=text("token"))


def _number(seconds: float) -> dict:
    return {"N": str(Decimal(seconds).quantize(Decimal("0.001")))}


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _when(seconds: float, today: datetime.date) -> str:
    """12:01:07 UTC today; 2024-05-01 12:01:07 UTC another day."""
    moment = _utc(seconds)
    return moment.strftime("%H:%M:%S UTC" if moment.date() == today else "%Y-%m-%d %H:%M:%S UTC")
