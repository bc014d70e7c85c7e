"""The environment lock (engine/lock.py) against the emulator: a conditional item in a
DynamoDB table made on first use, with a lease that is renewed, taken over when it runs
out, released by its holder only, and broken by `unlock`.

Time is a fake clock wherever the lease matters (its sleep moves the clock), so waiting for
a lock takes no real time; one test lets the renewal thread run on a real 0.3 s lease.
"""
from __future__ import annotations

import datetime
import threading
import time

import pytest

from envctl.engine import lock as locking
from envctl.engine.lock import (EnvironmentLock, Holder, LockHeld, LockLost, LockTakenOver, LockWaiting,
                                break_lock, hold, read)

T0 = datetime.datetime(2024, 5, 1, 12, 1, 7, tzinfo=datetime.timezone.utc).timestamp()


class Clock:
    """Seconds since the epoch that move only when someone sleeps."""

    def __init__(self, now: float = T0):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ddb(aws):
    return aws.client("dynamodb")


MADE: list[EnvironmentLock] = []


@pytest.fixture(autouse=True)
def _release_what_tests_leave():
    """Every lock a test made is released after it, so that no renewal thread outlives it."""
    yield
    while MADE:
        MADE.pop().release()


def make(ddb, clock, *, environment="qa", holder="alice@ci-7", pid=123, command="create", events=None, **kw):
    lock = EnvironmentLock(ddb, "acme", environment, command=command, holder=holder, pid=pid, clock=clock,
                           sleep=clock.sleep, on_event=(events.append if events is not None else lambda e: None),
                           **kw)
    MADE.append(lock)
    return lock


def item(ddb, key="acme/qa") -> dict | None:
    return ddb.get_item(TableName="envctl-locks", Key={"environment": {"S": key}}, ConsistentRead=True).get("Item")


# ------------------------------------------------------------------ acquire and release

def test_the_first_acquire_makes_the_table_and_writes_who_holds_the_lock(aws, ddb, clock):
    first = make(ddb, clock)

    first.acquire(timeout=0)

    table = ddb.describe_table(TableName="envctl-locks")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [{"AttributeName": "environment", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"] == [
        {"Key": "envctl:lock-table", "Value": "true"}]
    assert item(ddb) == {"environment": {"S": "acme/qa"}, "holder": {"S": "alice@ci-7"}, "pid": {"N": "123"},
                         "command": {"S": "create"}, "acquired_at": {"N": f"{T0:.3f}"},
                         "expires_at": {"N": f"{T0 + 60:.3f}"}, "token": {"S": first.token}}
    assert first.held and not first.waited

    first.release()

    assert item(ddb) is None
    assert not first.held


def test_hold_releases_on_the_way_out_even_on_an_error_or_ctrl_c(aws, ddb, clock):
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with hold(ddb, "acme", "qa", command="destroy", timeout=0, clock=clock, sleep=clock.sleep) as held:
                assert item(ddb)["token"] == {"S": held.token}
                raise error
        assert item(ddb) is None


def test_locks_of_other_environments_do_not_block_each_other(aws, ddb, clock):
    qa, prod = make(ddb, clock, environment="qa"), make(ddb, clock, environment="prod")

    qa.acquire(timeout=0)
    prod.acquire(timeout=0)

    assert item(ddb, "acme/qa")["token"]["S"] == qa.token
    assert item(ddb, "acme/prod")["token"]["S"] == prod.token
    qa.release(), prod.release()


def test_two_runs_making_the_table_at_once_both_get_their_lock(aws, ddb):
    # Each with its own client, as two processes would; the loser of CreateTable sees ResourceInUse.
    locks = [EnvironmentLock(aws.client("dynamodb"), "acme", f"env-{i}", command="create") for i in range(4)]
    failures = []

    def take(lock):
        try:
            lock.acquire(timeout=0)
        except Exception as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert aws.log.count("CreateTable") >= 1
    assert ddb.list_tables()["TableNames"] == ["envctl-locks"]
    assert all(lock.held for lock in locks)
    for lock in locks:
        lock.release()


def test_a_put_retried_after_a_lost_answer_still_gets_the_lock(aws, ddb, clock):
    # The first PutItem took effect but its answer was lost; botocore sends it again.
    first = make(ddb, clock)
    assert first._try_put() is None

    assert first._try_put() is None             # the same token: ours already, not "held by alice"
    assert item(ddb)["token"]["S"] == first.token


@pytest.fixture(scope="module")
def faults():
    from envctl.sandbox.middleware import FaultInjector, chain
    from envctl.sandbox.server import EmulatedAws

    injector = FaultInjector()
    server = EmulatedAws(wrap=chain(injector)).start()
    yield server, injector
    server.stop()


@pytest.mark.parametrize("fault", ["lost reply", "drop"])
@pytest.mark.parametrize("action", ["CreateTable", "PutItem", "DeleteItem"])
def test_a_lock_call_cut_off_is_looked_after(faults, monkeypatch, fault, action):
    # The session's own client, which never re-sends a cut-off create (aws/session.py); each
    # lock call's first try is cut off, before (drop) or after (lost reply) it is carried out.
    from envctl.aws.session import AwsOptions, AwsSession
    from envctl.sandbox.middleware import Fault

    server, injector = faults
    server.reset()
    injector.configure()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    ddb = AwsSession(AwsOptions(endpoint_url=server.endpoint), "eu-north-1").client("dynamodb")
    injector.force(Fault(fault), service="dynamodb", action=action)

    with hold(ddb, "acme", "qa", command="create", timeout=0) as held:
        assert item(ddb)["token"]["S"] == held.token
    injector.off()

    assert [s.action for s in injector.log.injected()] == [action]
    assert ddb.list_tables()["TableNames"] == ["envctl-locks"]
    assert item(ddb) is None


# ------------------------------------------------------------------ waiting for another run

def test_a_second_run_waits_then_fails_naming_the_holder(aws, ddb, clock):
    make(ddb, clock).acquire(timeout=0)
    events = []
    second = make(ddb, clock, holder="bob@laptop", pid=456, events=events)

    with pytest.raises(LockHeld) as failed:
        second.acquire(timeout=30)

    assert str(failed.value) == ("acme/qa is locked by alice@ci-7 (pid 123, create, since 12:01:07 UTC, "
                                 "lease until 12:02:07 UTC)")
    assert failed.value.holder.pid == 123
    assert sum(clock.slept) == pytest.approx(30)             # waited the whole timeout, then gave up
    assert len(clock.slept) >= 4 and clock.slept[0] == 1.0   # polling, with backoff
    assert clock.slept[1] > clock.slept[0]
    assert [type(e) for e in events] == [LockWaiting]        # said once, not at every poll
    assert events[0].holder.holder == "alice@ci-7" and events[0].timeout == 30
    assert second.waited and not second.held
    assert item(ddb)["holder"] == {"S": "alice@ci-7"}        # the holder's lock is untouched


def test_timeout_zero_fails_at_once(aws, ddb, clock):
    make(ddb, clock).acquire(timeout=0)
    aws.log.clear()

    with pytest.raises(LockHeld, match="acme/qa is locked by alice@ci-7"):
        make(ddb, clock, holder="bob@laptop").acquire(timeout=0)

    assert clock.slept == []
    assert [c.action for c in aws.log.snapshot()] == ["PutItem"]     # the failed put named the holder


def test_the_waiting_run_gets_the_lock_as_soon_as_it_is_released(aws, ddb, clock):
    first = make(ddb, clock)
    first.acquire(timeout=0)
    second = make(ddb, clock, holder="bob@laptop")
    real_sleep = clock.sleep

    def sleep(seconds):          # the first run finishes while the second one waits
        real_sleep(seconds)
        if len(clock.slept) == 3:
            first.release()

    second.sleep = sleep
    second.acquire(timeout=300)

    assert second.held and second.waited
    assert len(clock.slept) == 3
    assert item(ddb)["holder"] == {"S": "bob@laptop"}
    second.release()


# ------------------------------------------------------------------ the lease

def test_an_expired_lease_is_taken_over_and_its_old_holder_finds_out(aws, ddb, clock):
    first_events, second_events = [], []
    dead = make(ddb, clock, events=first_events)
    dead.acquire(timeout=0)
    clock.now += 61                                  # the holder died: nobody renewed its lease

    second = make(ddb, clock, holder="bob@laptop", pid=456, events=second_events)
    second.acquire(timeout=0)

    assert second.held and not second.waited
    [taken] = second_events
    assert isinstance(taken, LockTakenOver) and taken.previous.holder == "alice@ci-7"
    assert item(ddb)["token"]["S"] == second.token
    # The old holder (not so dead after all) learns at its next renewal, and its release
    # leaves the new holder's lock alone.
    assert dead.renew() is False
    [lost] = first_events
    assert isinstance(lost, LockLost) and lost.key == "acme/qa" and lost.now_held_by.holder == "bob@laptop"
    assert dead.lost.is_set()
    dead.release()
    assert item(ddb)["token"]["S"] == second.token
    second.release()


def test_renewal_pushes_the_lease_on(aws, ddb, clock):
    first = make(ddb, clock)
    first.acquire(timeout=0)
    clock.now += 50

    assert first.renew() is True

    assert item(ddb)["expires_at"] == {"N": f"{T0 + 110:.3f}"}
    assert item(ddb)["acquired_at"] == {"N": f"{T0:.3f}"}
    clock.now += 30                                  # past the first lease, within the renewed one
    with pytest.raises(LockHeld):
        make(ddb, clock, holder="bob@laptop").acquire(timeout=0)
    first.release()


def test_the_renewal_thread_keeps_a_short_lease_alive(aws, ddb):
    # A real clock and a 0.3 s lease renewed every 0.1 s: after 0.6 s it still holds.
    first = EnvironmentLock(ddb, "acme", "qa", command="create", lease_s=0.3)
    first.acquire(timeout=0)
    acquired_until = float(item(ddb)["expires_at"]["N"])

    time.sleep(0.6)

    assert float(item(ddb)["expires_at"]["N"]) > acquired_until + 0.2
    with pytest.raises(LockHeld):
        EnvironmentLock(ddb, "acme", "qa", command="create").acquire(timeout=0)
    assert aws.log.count("PutItem") >= 1 + 2 + 1             # acquired, renewed twice or more, one refused
    first.release()
    assert item(ddb) is None
    puts = aws.log.count("PutItem")
    time.sleep(0.25)
    assert aws.log.count("PutItem") == puts                  # the thread stopped with the release


# ------------------------------------------------------------------ reading and breaking

def test_read_says_who_holds_it_and_nothing_when_free_or_no_table_yet(aws, ddb, clock):
    assert read(ddb, "acme/qa") is None                      # no table: nothing locked, nothing made
    assert ddb.list_tables()["TableNames"] == []
    first = make(ddb, clock)
    first.acquire(timeout=0)

    assert read(ddb, "acme/qa") == Holder("acme/qa", "alice@ci-7", 123, "create", T0, T0 + 60, first.token)
    assert read(ddb, "acme/prod") is None
    first.release()


def test_only_the_holders_token_releases_it(aws, ddb, clock):
    first = make(ddb, clock)
    first.acquire(timeout=0)
    other = make(ddb, clock, holder="bob@laptop")
    other.held = True                                         # pretend: a release without the token

    other.release()
    assert break_lock(ddb, "acme/qa", token="not-the-holders") is False

    assert item(ddb)["token"]["S"] == first.token
    first.release()


def test_unlock_breaks_the_lock_and_the_next_run_takes_it(aws, ddb, clock):
    events = []
    stale = make(ddb, clock, events=events)
    stale.acquire(timeout=0)
    holder = read(ddb, "acme/qa")

    assert break_lock(ddb, "acme/qa", token=holder.token) is True

    assert item(ddb) is None
    assert break_lock(ddb, "acme/qa", token=holder.token) is False      # already gone
    after = make(ddb, clock, holder="bob@laptop")
    after.acquire(timeout=0)
    assert stale.renew() is False
    assert isinstance(events[-1], LockLost) and events[-1].now_held_by.holder == "bob@laptop"
    after.release()


def test_the_lock_table_is_not_part_of_any_environment(aws, ddb, clock):
    from envctl.aws.session import AwsOptions, AwsSession
    from envctl.engine.observe import environments, observe
    from envctl.provisioners.base import Ctx

    first = make(ddb, clock)
    first.acquire(timeout=0)
    session = AwsSession(AwsOptions(), aws.region)
    session.scope = ("acme", "qa")

    assert observe(Ctx(aws=session, project="acme", environment="qa"), kinds=["table"]).resources == {}
    assert environments(session) == []
    first.release()
    assert ddb.list_tables()["TableNames"] == ["envctl-locks"]


def test_holder_times_name_the_day_when_it_is_not_today():
    holder = Holder("acme/qa", "alice@ci-7", 1, "destroy", T0, T0 + 60, "t")

    assert holder.describe(now=T0) == "alice@ci-7 (pid 1, destroy, since 12:01:07 UTC, lease until 12:02:07 UTC)"
    assert holder.describe(now=T0 + 86400) == ("alice@ci-7 (pid 1, destroy, since 2024-05-01 12:01:07 UTC, "
                                               "lease until 2024-05-01 12:02:07 UTC)")
    assert locking.me().count("@") == 1
