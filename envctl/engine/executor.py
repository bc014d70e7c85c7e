"""The executor: carry out exactly the Plan the user saw, in dependency order, in parallel.

A ready queue, not waves: each step starts as soon as the steps it waits for are done,
on a bounded thread pool. The steps of a plan:

- CREATE / UPDATE: one step, after the creates/updates/replacements of the node's deps;
- DELETE: one step, after every resource that may use it is gone or has moved away
  (desired graph edges reversed where both ends are in the graph, else the kinds' static
  `uses` table, own kind ignored);
- REPLACE: two steps, "remove" (the old one) and "create" (the new one), ordered by the
  kind's `delete_before_replace`; a create-first replacement removes the old resource only
  after its users have moved to the new one.
NOOPs are done from the start and provide their observed outputs to Refs.

Before touching an existing resource the executor reads it again: it refuses a resource
that is not tagged as this environment's, and one it updates that changed since the plan was
made ("changed since plan; run diff again"). Before a delete it reads the tags alone where the
kind can (`read_for_delete`): what is deleted is the same resource whatever its settings.
Deletes of a kind that AWS takes several to a call (`delete_batch`: CloudWatch answers
DeleteAlarms 3 times a second), ready at the same time, go in one call on one worker; each is
read and checked first, as alone. Each provisioner call is retried while its error is
temporary (engine/retry.py); a create that failed ambiguously (5xx, dropped connection) looks
for what it may have created (`find`) before trying again.

Creates converge: what create made (or found, after an ambiguous failure) is read back and
diffed against the spec, and whatever differs (a rule, a route, a table's TTL that a cut-off
create never set; tags) is updated in the same step. An update that is retried reads the
resource again and applies only what still differs, since the failed attempt may have been
carried out (its reply lost). A failed step skips everything
that waits for it; independent work carries on. Setting `stop` (Ctrl-C) starts no new
work, lets calls in flight finish, and reports the rest as not started.

Progress goes only through `on_event` (engine/events.py), one event at a time.
"""
from __future__ import annotations

import datetime
import heapq
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from enum import Enum

from envctl.aws import errors
from envctl.engine import DEFAULT_PARALLELISM, retry
from envctl.engine.events import Done, Failed, Skipped, Started, Waiting
from envctl.aws.waiters import WaitFailed
from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.graph import Graph, Node, Ref, resolve, topological
from envctl.plan.changes import Action, Plan, ResourceChange
from envctl.plan.planner import comparable_tags, kind_uses, provisioner_lookup, tag_change, wanted_tags
from envctl.provisioners.base import Ctx, DeletionProtected, NotOurs, Observed, Provisioner


class State(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_STARTED = "not started"

    def __str__(self) -> str:
        return self.value


SUCCESS = frozenset({State.CREATED, State.UPDATED, State.REPLACED, State.DELETED, State.UNCHANGED})
_DONE = {Action.CREATE: State.CREATED, Action.UPDATE: State.UPDATED, Action.REPLACE: State.REPLACED,
         Action.DELETE: State.DELETED}
_VERBING = {Action.CREATE: "creating", Action.UPDATE: "updating", Action.REPLACE: "replacing",
            Action.DELETE: "deleting"}


@dataclass(frozen=True)
class Outcome:
    """What happened to one resource. `error` keeps the exception of a failure (for -v)."""

    address: Address
    action: Action
    state: State
    id: str | None = None
    message: str | None = None
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Result:
    outcomes: dict[Address, Outcome]            # every resource of the plan, in plan order
    outputs: dict[Address, dict[str, str]]      # every resource known now (created, updated, untouched)
    interrupted: bool                           # stopped with work not started
    elapsed: float

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.state in SUCCESS for o in self.outcomes.values())

    def by_state(self, state: State) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.state is state]


class Refused(Exception):
    """The executor will not act: the live resource is not what the plan showed, or not ours."""


def execute(plan: Plan, desired: Graph, observed: Mapping[Address, Observed], ctx: Ctx, *,
            parallelism: int = DEFAULT_PARALLELISM, on_event: Callable[[object], None] = lambda e: None,
            stop: threading.Event | None = None, provisioners: Mapping[str, Provisioner] | None = None,
            retry_window_s: float = retry.DEFAULT_WINDOW_S, sleep: Callable[[float], None] = time.sleep) -> Result:
    """Execute `plan`, made by `planner.plan(desired, observed)`; never raises for a failed change.

    `parallelism` resources are worked on at once; each may read its settings that take a call
    each side by side (`Ctx.map`), on a second pool of `parallelism` threads. `desired` may be
    an empty Graph (destroy without a spec); `provisioners` (kind → provisioner) replaces the
    registry in tests; `sleep` is what retries sleep with.
    """
    parallelism = max(1, parallelism)
    reads = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="envctl-read")
    try:
        run = _Run(plan, desired, observed, replace(ctx, read_pool=reads), provisioner_lookup(provisioners),
                   on_event, retry_window_s, sleep)
        return run.execute(parallelism, stop or threading.Event())
    finally:
        reads.shutdown(wait=False, cancel_futures=True)     # idle unless a second Ctrl-C cut the run short


# ------------------------------------------------------------------ private

REMOVE, APPLY, CREATE_NEW = "remove", "apply", "create"   # step phases; REPLACE has remove + create
Key = tuple[Address, str]


@dataclass(eq=False)
class _Step:
    change: ResourceChange
    phase: str
    order: int
    waits: set[Key] = field(default_factory=set)

    @property
    def key(self) -> Key:
        return (self.change.address, self.phase)


@dataclass(frozen=True)
class _Finish:
    ok: bool
    id: str | None = None
    message: str | None = None
    outputs: Mapping[str, str] | None = None      # new outputs of the address; None: keep
    gone: bool = False                            # the address no longer exists
    error: BaseException | None = None


class _ReadyQueue:
    """Which steps may start: those whose waits are all done.

    Of the ready steps, the next is taken from the kind with the fewest steps running: a kind
    that AWS paces slowly (CloudWatch takes 3 alarm writes a second) then holds one or two
    workers waiting for its rate limit, not all of them, while other kinds' work waits behind
    it. Among those, the step with the longest chain of steps waiting for it goes first (then
    plan order): a queue that a role, a function and a bucket wait for starts before a table
    nothing waits for, so that when workers are short the longest chain is not the one kept
    waiting. The chain is counted in steps, not in seconds: how long each takes depends on the
    kind and on AWS (a NAT gateway minutes, a queue a tenth of a second), which no plan knows.
    Deletes taken together (`pop_deletes_like`) hold one worker.
    """

    def __init__(self, steps: dict[Key, _Step]):
        self.steps = steps
        self.remaining = {k: set(s.waits) for k, s in steps.items()}
        self.users: dict[Key, set[Key]] = {k: set() for k in steps}
        self.of_address: dict[Address, list[Key]] = {}
        for k, s in steps.items():
            self.of_address.setdefault(k[0], []).append(k)
            for w in s.waits:
                self.users[w].add(k)
        self.chain = _chains(self.users)                    # key → steps in the longest chain from it
        self.finished: set[Key] = set()
        self.running: dict[str, int] = {}                   # kind → steps popped, not finished
        self._popped: dict[Key, int] = {}                 # popped, not finished → workers it holds (0 or 1)
        self._ready: dict[str, list[tuple[int, int, str, Key]]] = {}     # kind → heap: longest chain, plan order
        for k, s in steps.items():
            if not s.waits:
                self._push(k)

    def has_ready(self) -> bool:
        for heap in self._ready.values():
            while heap and heap[0][-1] in self.finished:   # skipped after it became ready
                heapq.heappop(heap)
        return any(self._ready.values())

    def pop(self) -> Key:
        kind = min((k for k, heap in self._ready.items() if heap),
                   key=lambda k: (self.running.get(k, 0), self._ready[k][0]))
        key = heapq.heappop(self._ready[kind])[-1]
        self.running[kind] = self.running.get(kind, 0) + 1
        self._popped[key] = 1
        return key

    def pop_deletes_like(self, first: Key, n: int) -> list[Key]:
        """Up to `n` more ready deletes of `first`'s kind, to go in one call with it."""
        heap = self._ready.get(first[0].kind, [])
        taken, kept = [], []
        while heap and len(taken) < n:
            item = heapq.heappop(heap)
            key = item[-1]
            if key in self.finished:
                continue
            if _is_delete(self.steps[key]):
                taken.append(key)
            else:
                kept.append(item)
        for item in kept:
            heapq.heappush(heap, item)
        self._popped.update((key, 0) for key in taken)     # they share first's worker
        return taken

    def succeed(self, key: Key) -> bool:
        """Mark done, release its users; True when it was its address's last step."""
        self._finish(key)
        for u in self.users[key]:
            self.remaining[u].discard(key)
            if not self.remaining[u] and u not in self.finished:
                self._push(u)
        return all(k in self.finished for k in self.of_address[key[0]])

    def _push(self, key: Key) -> None:
        heapq.heappush(self._ready.setdefault(key[0].kind, []), (-self.chain[key], self.steps[key].order, key[1], key))

    def _finish(self, key: Key) -> None:
        self.finished.add(key)
        if key in self._popped:
            self.running[key[0].kind] -= self._popped.pop(key)

    def fail(self, key: Key) -> list[tuple[Key, Key]]:
        """Mark failed; every step waiting for it, directly or not, is skipped: [(skipped, cause)]."""
        if key in self.finished:
            return []
        self._finish(key)
        skipped = []
        todo = [(u, key) for u in sorted(self.users[key])]
        while todo:
            u, cause = todo.pop(0)
            if u in self.finished:
                continue
            self.finished.add(u)
            skipped.append((u, cause))
            todo.extend((v, u) for v in sorted(self.users[u]))
        return skipped

    def unfinished(self) -> list[Key]:
        return sorted((k for k in self.steps if k not in self.finished), key=lambda k: self.steps[k].order)


def _chains(users: Mapping[Key, set[Key]]) -> dict[Key, int]:
    """Each step's longest chain of steps that wait for it, one after another, itself included
    (1: nothing waits for it). Iterative: a spec's chains may be longer than Python's stack."""
    chain: dict[Key, int] = {}
    for root in users:
        stack = [(root, False)]
        while stack:
            key, counted = stack.pop()
            if key in chain:
                continue
            if counted:
                chain[key] = 1 + max((chain[u] for u in users[key]), default=0)
            else:
                stack.append((key, True))
                stack.extend((u, False) for u in users[key] if u not in chain)
    return chain


class _Run:
    def __init__(self, plan: Plan, desired: Graph, observed: Mapping[Address, Observed], ctx: Ctx,
                 get: Callable[[str], Provisioner], on_event, retry_window_s: float, sleep):
        self.plan = plan
        self.desired = desired
        self.observed = observed
        self.ctx = ctx
        self.get = get
        self.retry_window_s = retry_window_s
        self.sleep = sleep
        self._on_event = on_event
        self._event_lock = threading.Lock()
        self._lock = threading.Lock()
        self.outputs: dict[Address, dict[str, str]] = {a: dict(get(a.kind).outputs(o)) for a, o in observed.items()}
        self.outcomes: dict[Address, Outcome] = {}
        self.started: dict[Address, float] = {}
        self.run_started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        self.steps = self._steps()

    # ---- the loop
    def execute(self, parallelism: int, stop: threading.Event) -> Result:
        begin = time.monotonic()
        queue = _ReadyQueue(self.steps)
        for change in self.plan.changes:
            if change.action in (Action.NOOP, Action.ORPHAN):
                self._outcome(change, State.UNCHANGED, id=change.id)
            elif change.blocked is not None:
                self._outcome(change, State.SKIPPED, id=change.id, message=f"blocked: {change.blocked}")
                self._emit(Skipped(change.address, f"blocked: {change.blocked}"))
        # Blocked deletes never run: what must wait for them cannot run either.
        for key in [k for k, s in self.steps.items() if s.change.blocked is not None]:
            self._skip(queue.fail(key), "is blocked")

        running: dict[Future, list[_Step]] = {}
        pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="envctl")
        try:
            while True:
                while len(running) < parallelism and not stop.is_set() and queue.has_ready():
                    step = self.steps[queue.pop()]
                    together = [self.steps[k] for k in queue.pop_deletes_like(step.key, self._batch(step) - 1)]
                    for s in (step, *together):
                        if s.change.address not in self.started:
                            self.started[s.change.address] = time.monotonic()
                            self._emit(Started(s.change.address, s.change.action))
                    running[pool.submit(self._run, step, *together)] = [step, *together]
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f][0].order):
                    for step, result in zip(running.pop(future), future.result()):
                        self._finished(step, result, queue)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)     # a second Ctrl-C: leave now
            raise
        pool.shutdown(wait=True)

        not_started = queue.unfinished()
        for key in not_started:
            change = self.steps[key].change
            if change.address not in self.outcomes:
                why = f"stopped before it started{_half_done(change, queue)}"
                self._outcome(change, State.NOT_STARTED, id=change.id, message=why)
                self._emit(Skipped(change.address, f"not started: {why}"))
        outcomes = {c.address: self.outcomes[c.address] for c in self.plan.changes}
        with self._lock:
            outputs = {a: dict(o) for a, o in self.outputs.items()}
        return Result(outcomes, outputs, bool(not_started), time.monotonic() - begin)

    def _finished(self, step: _Step, result: _Finish, queue: "_ReadyQueue") -> None:
        address = step.change.address
        if not result.ok:
            if address not in self.outcomes:
                self._failed(step.change, result)
            self._skip(queue.fail(step.key), "failed")
            return
        with self._lock:
            if result.gone:
                self.outputs.pop(address, None)
            elif result.outputs is not None:
                self.outputs[address] = dict(result.outputs)
        if queue.succeed(step.key):
            self._succeeded(step.change, result)

    def _skip(self, skipped: list[tuple[Key, Key]], why: str) -> None:
        for key, cause in skipped:
            change = self.steps[key].change
            if change.address not in self.outcomes:        # the other half of a failed replace says nothing
                reason = f"waits for {cause[0]}, which {why}"
                self._outcome(change, State.SKIPPED, id=change.id, message=reason)
                self._emit(Skipped(change.address, reason))

    # ---- building the steps
    def _steps(self) -> dict[Key, _Step]:
        steps: dict[Key, _Step] = {}
        for order, c in enumerate(self.plan.changes):
            if c.action in (Action.CREATE, Action.UPDATE) and c.blocked is None:
                steps[(c.address, APPLY)] = _Step(c, APPLY, order)
            elif c.action is Action.DELETE:
                steps[(c.address, REMOVE)] = _Step(c, REMOVE, order)      # blocked ones too: they hold others
            elif c.action is Action.REPLACE and c.blocked is None:
                steps[(c.address, REMOVE)] = _Step(c, REMOVE, order)
                steps[(c.address, CREATE_NEW)] = _Step(c, CREATE_NEW, order)

        def creating(a: Address) -> Key | None:
            return next((k for k in ((a, APPLY), (a, CREATE_NEW)) if k in steps), None)

        def removing(a: Address) -> Key | None:
            return (a, REMOVE) if (a, REMOVE) in steps else None

        addresses = [c.address for c in self.plan.changes]
        users = self._users(addresses)
        for (a, phase), step in steps.items():
            if phase in (APPLY, CREATE_NEW):
                for d in self.desired[a].deps:
                    if creating(d):
                        step.waits.add(creating(d))
            if step.change.action is Action.REPLACE:
                first_remove = self.get(a.kind).delete_before_replace
                if phase == CREATE_NEW and first_remove:
                    step.waits.add((a, REMOVE))
                if phase == REMOVE and not first_remove:
                    step.waits.add((a, CREATE_NEW))
            if phase == REMOVE:
                removed_first = step.change.action is Action.REPLACE and self.get(a.kind).delete_before_replace
                for u in users[a]:
                    if removing(u):
                        step.waits.add(removing(u))           # users go first
                    if creating(u) and not removed_first:
                        step.waits.add(creating(u))           # users move away first
        topological(steps, {k: s.waits for k, s in steps.items()})   # CycleError: a bug in a `uses` table
        return steps

    def _users(self, addresses: list[Address]) -> dict[Address, list[Address]]:
        """Which addresses of the plan may use each one: the desired graph's edges where both ends
        are in it, else the kinds' static table. Linear in the graph's edges, plus the table for
        the few addresses outside the graph (a plan of 1,000 deletes has a million pairs)."""
        inside = [a for a in addresses if a in self.desired]
        outside = [a for a in addresses if a not in self.desired]
        users: dict[Address, list[Address]] = {a: [] for a in addresses}
        for user in inside:
            for used in self.desired[user].deps:
                if used in users and used in self.desired and used != user:
                    users[used].append(user)
        for used in addresses:
            for user in outside if used in self.desired else addresses:
                if user != used and kind_uses(self.get, user, used):
                    users[used].append(user)
        return users

    def _batch(self, step: _Step) -> int:
        """How many deletes go in one call with this one: the kind's `delete_batch`, for deletes
        only (a replacement's two halves go one by one)."""
        return self.get(step.change.kind).delete_batch if _is_delete(step) else 1

    # ---- one step (or deletes that go in one call), on a worker thread
    def _run(self, step: _Step, *together: _Step) -> list[_Finish]:
        if together:
            return self._remove_together([step, *together])
        return [self._guarded(step, self._one)]

    def _one(self, step: _Step) -> _Finish:
        if step.phase == REMOVE:
            return self._remove(step)
        if step.change.action is Action.UPDATE:
            return self._update(step)
        return self._create(step)

    @staticmethod
    def _guarded(step: _Step, work: Callable[..., _Finish], *args) -> _Finish:
        try:
            return work(step, *args)
        except Exception as e:  # noqa: BLE001 — every failure is reported against its resource
            return _failure(step, e)

    def _create(self, step: _Step) -> _Finish:
        c = step.change
        p = self.get(c.kind)
        node = self._resolved(c.address)
        node = replace(node, tags={**node.tags, tagging.CREATED: self.run_started, **self.ctx.lifecycle_tags})
        ambiguous = False

        def attempt() -> str:
            nonlocal ambiguous
            if ambiguous:       # the last call may have created it: adopt rather than duplicate
                found = p.find(self.ctx, node)
                if found is not None and found.id != c.id:
                    if not self.ctx.is_ours(found.tags):
                        raise NotOurs(c.address, f"{c.kind} {node.physical_name}")
                    return found.id
            try:
                return p.create(self.ctx, node)
            except Exception as e:
                ambiguous = ambiguous or errors.is_ambiguous(e)
                raise

        new_id = self._call(c.address, attempt)
        # Converge: a create cut short (a lost reply on its third call, a resource adopted after
        # an ambiguous failure) is finished here, in the same run, rather than left as drift.
        ready = self._call(c.address, lambda: p.wait(self.ctx, new_id, "ready"))
        if ready is None:
            raise Refused(f"{c.kind} {new_id} was created but cannot be read back")
        ready = self._reconcile(c, p, node, ready)
        return _Finish(True, new_id, outputs=p.outputs(ready))

    def _update(self, step: _Step) -> _Finish:
        c = step.change
        p = self.get(c.kind)
        live = self._live(step)
        if live is None:
            raise Refused("it no longer exists (changed since plan); run diff again")
        node = self._resolved(c.address)
        ready = self._reconcile(c, p, node, live, planned={ch.path for ch in c.changes})
        return _Finish(True, live.id, outputs=p.outputs(ready))

    def _reconcile(self, c: ResourceChange, p: Provisioner, node: Node, live: Observed,
                   planned: set[str] | None = None) -> Observed:
        """Make `live` match `node` (props, then tags) and wait until it is ready.

        Only the `planned` attribute paths may change (None: any, after a create); anything else
        that differs is refused as changed since plan. A retry reads the resource again and does
        only what still differs: the failed call may have been carried out (a lost reply), and
        repeating it would fail with "already exists" or do it twice.
        """
        first = True

        def attempt() -> bool:
            """True when it changed something (then the resource is read again once ready)."""
            nonlocal first
            current = live if first else self._read_ours(c, p, live.id)
            first = False
            changes = list(p.diff(node.props, current))
            if planned is not None:
                unexpected = [ch.path for ch in changes if ch.path not in planned or ch.forces_replace]
                if unexpected:
                    raise Refused(f"changed since plan ({', '.join(unexpected)}); run diff again")
            if changes:
                p.update(self.ctx, current, node, changes)
            tags = self._tags_to_set(node, current.tags)
            if tags is not None:
                p.update_tags(self.ctx, current, tags)
            return bool(changes) or tags is not None

        if not self._call(c.address, attempt):
            return live                 # already as the spec says: no second read (issue 7 counts calls)
        ready = self._call(c.address, lambda: p.wait(self.ctx, live.id, "ready"))
        if ready is None:
            raise Refused(f"{c.kind} {live.id} disappeared while being {'created' if planned is None else 'updated'}")
        return ready

    def _tags_to_set(self, node: Node, live_tags: Mapping[str, str]) -> dict[str, str] | None:
        """The tags an update sets, or None when they are right: the spec's (and Name), envctl's
        lifecycle tags as they are live, with this run's expiry and, when missing, its creation time,
        without those the run removes (ctx.lifecycle_removed)."""
        lifecycle = {**tagging.lifecycle(node.tags), **tagging.lifecycle(live_tags), **self.ctx.lifecycle_tags}
        lifecycle = {k: v for k, v in lifecycle.items() if k not in self.ctx.lifecycle_removed}
        if tag_change(node, live_tags) is None and lifecycle == tagging.lifecycle(live_tags):
            return None
        return {**wanted_tags(node, live_tags), **lifecycle}

    def _read_ours(self, c: ResourceChange, p: Provisioner, id: str) -> Observed:
        """Read a resource this run is working on again (a retry); it must still be there and ours."""
        live = p.read(self.ctx, id)
        if live is None:
            raise Refused(f"{c.kind} {id} disappeared while being worked on; run diff again")
        return self._ours(c.kind, id, live)

    def _ours(self, kind: str, id: str, live: Observed | None) -> Observed | None:
        """`live` as read; refused when it is no longer tagged as this environment's."""
        if live is not None and not self.ctx.is_ours(live.tags):
            raise Refused(f"{kind} {id} is not tagged as this environment's; refusing to touch it")
        return live

    def _remove(self, step: _Step) -> _Finish:
        return self._delete_checked(step, self._before_delete(step))

    def _delete_checked(self, step: _Step, live: Observed | None) -> _Finish:
        """Delete `live`, checked by `_before_delete` (None: it was gone already), alone."""
        if live is not None:
            self._call(step.change.address, lambda: self.get(step.change.kind).delete(self.ctx, live))
        return self._gone(step, live)

    def _gone(self, step: _Step, live: Observed | None) -> _Finish:
        """After its delete: wait until AWS no longer has `live`."""
        c = step.change
        if live is not None:
            self._call(c.address, lambda: self.get(c.kind).wait(self.ctx, live.id, "gone"))
        message = None if live is not None else "already gone"
        # The old half of a replacement keeps the address's outputs (the new one sets them).
        return _Finish(True, c.id, message=message, gone=c.action is Action.DELETE)

    def _remove_together(self, steps: list[_Step]) -> list[_Finish]:
        """Deletes that AWS takes in one call: each resource is read again and checked as it would
        be alone (side by side), then one call deletes those still there. Should that call fail,
        each is deleted alone, so that an error is said of the resource it belongs to."""
        p = self.get(steps[0].change.kind)
        live: dict[Address, Observed | None] = {}

        def check(step: _Step) -> _Finish | None:
            """None when it can go with the others (or is gone already); else its failure."""
            try:
                live[step.change.address] = self._before_delete(step)
            except Exception as e:  # noqa: BLE001 — refused or unreadable: this one fails alone
                return _failure(step, e)
            return None

        failures = self.ctx.map(check, steps)
        present = [s for s, failed in zip(steps, failures) if failed is None and live[s.change.address] is not None]
        if present:
            try:
                self._call(present[0].change.address,
                           lambda: p.delete_many(self.ctx, [live[s.change.address] for s in present]))
            except Exception as e:  # noqa: BLE001 — then one by one, each with its own error
                self._emit(Waiting(present[0].change.address,
                                   f"deleting {len(present)} one by one after {errors.message(e)}"))
                return [failed or self._guarded(s, self._delete_checked, live[s.change.address])
                        for s, failed in zip(steps, failures)]
        return self.ctx.map(lambda pair: pair[1] or self._guarded(pair[0], self._gone, live[pair[0].change.address]),
                            list(zip(steps, failures)))

    def _before_delete(self, step: _Step) -> Observed | None:
        """What a delete works on, its tags read again (`read_for_delete`): None when it is gone;
        refused when it is no longer tagged as this environment's. Settings changed since the
        plan do not stop a delete: it deletes the same resource, and deletes cope with them."""
        c = step.change
        p = self.get(c.kind)
        seen = self.observed.get(c.address)
        live = self._call(c.address, lambda: p.read_for_delete(self.ctx, seen)) if seen is not None else None
        if seen is None or (live is not None and not self.ctx.is_ours(live.tags)):
            # No view from the plan, or tags that say "not ours", which some tag APIs (moto's, at
            # least) also answer for a resource that is gone: a full read decides.
            live = self._call(c.address, lambda: p.read(self.ctx, c.id))
        return self._ours(c.kind, c.id, live)

    def _live(self, step: _Step) -> Observed | None:
        """Read the resource again; refuse if it is not ours or not what the plan saw."""
        c = step.change
        p = self.get(c.kind)
        live = self._ours(c.kind, c.id, self._call(c.address, lambda: p.read(self.ctx, c.id)))
        if live is None:
            return None
        seen = self.observed.get(c.address)
        if seen is not None:
            name = c.physical_name
            if p.diff(seen.props, live) or comparable_tags(seen.tags, name) != comparable_tags(live.tags, name):
                raise Refused("changed since plan; run diff again")
        return live

    def _resolved(self, address: Address) -> Node:
        node = self.desired[address]

        def lookup(ref: Ref):
            with self._lock:
                value = self.outputs.get(ref.address, {}).get(ref.attr)
            if value is None:
                raise Refused(f"{ref} is not known: {ref.address} provides no {ref.attr!r}")
            return value

        return Node(node.address, resolve(node.props, lookup), node.physical_name, node.tags, node.extra_deps)

    def _call(self, address: Address, fn):
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self._emit(Waiting(address, f"retrying in {delay:.0f}s after {errors.message(error)}"))

        return retry.retry(fn, deadline_s=self.retry_window_s, on_retry=on_retry, sleep=self.sleep)

    # ---- outcomes and events (main thread)
    def _seconds(self, address: Address) -> float:
        return time.monotonic() - self.started.get(address, time.monotonic())

    def _succeeded(self, change: ResourceChange, result: _Finish) -> None:
        seconds = self._seconds(change.address)
        self._outcome(change, _DONE[change.action], id=result.id, message=result.message, seconds=seconds)
        self._emit(Done(change.address, change.action, result.id, seconds))

    def _failed(self, change: ResourceChange, result: _Finish) -> None:
        self._outcome(change, State.FAILED, id=change.id, message=result.message,
                      seconds=self._seconds(change.address), error=result.error)
        self._emit(Failed(change.address, change.action, result.message or "failed"))

    def _outcome(self, change: ResourceChange, state: State, **kw) -> None:
        self.outcomes[change.address] = Outcome(change.address, change.action, state, **kw)

    def _emit(self, event) -> None:
        with self._event_lock:
            self._on_event(event)


def _failure(step: _Step, e: BaseException) -> _Finish:
    c = step.change
    return _Finish(False, message=f"{_VERBING[c.action]} {c.kind} ({c.address}): {_detail(e)}", error=e)


def _is_delete(step: _Step) -> bool:
    return step.phase == REMOVE and step.change.action is Action.DELETE


def _half_done(change: ResourceChange, queue: _ReadyQueue) -> str:
    if change.action is not Action.REPLACE:
        return ""
    if (change.address, REMOVE) in queue.finished:
        return " (half done: the old one is deleted, the new one not created)"
    if (change.address, CREATE_NEW) in queue.finished:
        return " (half done: the new one exists, the old one is not deleted yet)"
    return ""


def _detail(e: BaseException) -> str:
    """The why of a failure: the AWS call with its code and message, our own refusal, or (a
    bug) the exception."""
    if errors.is_aws_error(e):
        return errors.describe(e)
    if isinstance(e, (Refused, NotOurs, DeletionProtected, WaitFailed, TimeoutError, retry.Temporary,
                      retry.Permanent)):
        return str(e)
    return f"{type(e).__name__}: {e}"
