"""The executor with fake kinds over an in-memory cloud: order, bounds, failures, refusals, retries."""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from botocore.exceptions import ConnectionClosedError

from envctl.model import tags as tagging

from envctl.engine import DEFAULT_PARALLELISM, events
from envctl.engine.executor import State, execute
from envctl.model.address import Address
from envctl.model.graph import Graph, Ref
from envctl.plan.changes import Action
from envctl.plan.planner import destroy_plan, plan
from envctl.provisioners.base import Ctx, Observed
from tests.engine.fakes import (ENV, PROJECT, BatchBox, Box, BoxProps, CreateFirstBox, FakeCloud, NetProps, Store, StoreProps,
                                TagsOnlyBox, aws_error, graph, kinds, node, our_tags)

A = Address.parse


def ref(address: str, attr: str = "id") -> Ref:
    return Ref(A(address), attr)


class World:
    """A fake cloud, its kinds, and the plan → execute round trip the CLI makes."""

    def __init__(self, box=None):
        self.cloud = FakeCloud()
        self.kinds = kinds(self.cloud, **({"box": box} if box else {}))
        self.ctx = Ctx(aws=None, project=PROJECT, environment=ENV)
        self.events: list = []
        self.sleeps: list[float] = []

    def observed(self):
        return {o.address: o for p in self.kinds.values() for o in p.discover(self.ctx)}

    def plan(self, desired: Graph, **options):
        return plan(desired, self.observed(), provisioners=self.kinds, **options)

    def apply(self, desired: Graph, the_plan=None, observed=None, **options):
        observed = self.observed() if observed is None else observed
        the_plan = the_plan or plan(desired, observed, provisioners=self.kinds)
        return execute(the_plan, desired, observed, self.ctx, provisioners=self.kinds, on_event=self.events.append,
                       sleep=self.sleeps.append, **options)

    def props(self, address: str):
        (r,) = [r for r in self.cloud.records.values() if r.address == A(address)]
        return r.props

    def ident(self, address: str) -> str:
        (i,) = [i for i, r in self.cloud.records.items() if r.address == A(address)]
        return i


def stack(n_boxes: int = 1) -> Graph:
    """net/main ← box/b0…  ← store/data (on box/b0)."""
    nodes = [node("net/main", NetProps(cidr="10.0.0.0/16"))]
    nodes += [node(f"box/b{i}", BoxProps(net_id=ref("net/main"))) for i in range(n_boxes)]
    nodes.append(node("store/data", StoreProps(name="data", box_id=ref("box/b0"))))
    return graph(*nodes)


def test_creates_in_dependency_order_with_refs_resolved():
    w = World()
    result = w.apply(stack())
    assert result.ok and not result.interrupted
    assert w.cloud.verbs("create") == ["net/main", "box/b0", "store/data"]
    net_id, box_id = w.ident("net/main"), w.ident("box/b0")
    assert w.props("box/b0").net_id == net_id and w.props("store/data").box_id == box_id
    assert {str(a): o.state for a, o in result.outcomes.items()} == {
        "net/main": State.CREATED, "box/b0": State.CREATED, "store/data": State.CREATED}
    assert result.outputs[A("box/b0")] == {"id": box_id, "arn": f"arn:fake:{box_id}"}
    assert [type(e).__name__ for e in w.events if e.address == A("net/main")] == ["Started", "Done"]
    # Tags are on every created resource.
    # tagged on create: the spec's tags, envctl's ownership tags, and when it was created
    for r in w.cloud.records.values():
        assert {k: v for k, v in r.tags.items() if k != tagging.CREATED} == our_tags(str(r.address))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", r.tags[tagging.CREATED])


def test_second_run_changes_nothing():
    w = World()
    w.apply(stack())
    w.cloud.calls.clear()
    again = w.plan(stack())
    assert again.is_empty
    result = w.apply(stack(), again)
    assert result.ok and w.cloud.calls == []
    assert {o.state for o in result.outcomes.values()} == {State.UNCHANGED}
    assert set(result.outputs) == {A("net/main"), A("box/b0"), A("store/data")}


@pytest.mark.parametrize("options, expected", [({"parallelism": 3}, 3), ({}, DEFAULT_PARALLELISM)],
                         ids=["--parallelism 3", "default"])
def test_parallelism_is_bounded_and_reached(options, expected):
    """`expected` creates run at once, no more: each box is held until that many are in
    flight (or a moment passes), with more boxes than workers. The default is 20."""
    assert DEFAULT_PARALLELISM == 20
    w = World()
    gate = threading.Condition()

    def hold():
        with gate:
            gate.notify_all()
            gate.wait_for(lambda: w.cloud.active >= expected, timeout=2)
        threading.Event().wait(0.01)

    boxes = expected + 6
    for i in range(boxes):
        w.cloud.hooks[("create", f"box/b{i}")] = hold
    w.cloud.put("net/main", NetProps(cidr="10.0.0.0/16"))
    result = w.apply(stack(boxes), **options)
    assert result.ok
    assert w.cloud.max_active == expected


def test_ready_steps_are_taken_kind_by_kind_so_one_slow_kind_does_not_hold_every_worker():
    """Ready at once: three stores (first in plan order) and two free boxes; two workers. The
    second worker takes a box, not the next store: the kind with the fewest steps running."""
    w = World()
    desired = graph(node("net/main", NetProps(cidr="10.0.0.0/16")),
                    *[node(f"box/b{i}", BoxProps(net_id=ref("net/main"))) for i in range(3)],
                    *[node(f"store/s{i}", StoreProps(name=f"s{i}", box_id=ref("box/b0"))) for i in range(3)])
    w.apply(desired)
    observed = w.observed()
    the_plan = destroy_plan(observed, provisioners=w.kinds)
    started: list[str] = []
    together = threading.Barrier(2, timeout=5)

    def hold(address: str):
        started.append(address)
        if len(started) <= 2:
            together.wait()            # the first two run side by side

    for a in [*(f"store/s{i}" for i in range(3)), "box/b1", "box/b2"]:
        w.cloud.hooks[("delete", a)] = lambda a=a: hold(a)
    result = w.apply(desired, the_plan, observed, parallelism=2)
    assert result.ok
    assert sorted(a.split("/")[0] for a in started[:2]) == ["box", "store"], started


def test_of_one_kind_the_step_with_the_longest_chain_behind_it_starts_first():
    """Ready at once on one worker: boxes b0, b1, b2 (plan order), and a store waits for b2. b2
    goes first: workers kept busy with b0 and b1 would hold back the store's whole chain."""
    w = World()
    desired = graph(node("net/main", NetProps(cidr="10.0.0.0/16")),
                    *[node(f"box/b{i}", BoxProps(net_id=ref("net/main"))) for i in range(3)],
                    node("store/data", StoreProps(name="data", box_id=ref("box/b2"))))
    result = w.apply(desired, parallelism=1)
    assert result.ok
    assert w.cloud.verbs("create") == ["net/main", "box/b2", "box/b0", "box/b1", "store/data"]


def test_a_long_chain_of_steps_is_ordered_without_deep_recursion():
    """Each box waits for the one before: 3,000 steps, one chain (Python's stack holds 1,000 frames)."""
    from envctl.engine.executor import _chains

    keys = [(A(f"box/b{i}"), "apply") for i in range(3000)]
    users = {k: {keys[i + 1]} if i + 1 < len(keys) else set() for i, k in enumerate(keys)}
    chain = _chains(users)
    assert chain[keys[0]] == 3000 and chain[keys[-1]] == 1


def test_ordering_deletes_walks_each_nodes_props_once(monkeypatch):
    """Who uses whom comes from each node's references, found once per node: not once per pair
    (a destroy of 1,000 resources spent 40 s before its first delete walking a million pairs)."""
    from envctl.model import graph as graph_module

    walks = []
    refs_in = graph_module.refs_in

    def counted(value):
        if isinstance(value, (NetProps, BoxProps, StoreProps)):
            walks.append(value)
        return refs_in(value)

    monkeypatch.setattr(graph_module, "refs_in", counted)
    w = World()
    desired = stack(60)
    w.apply(desired)
    observed = w.observed()
    walks.clear()
    result = w.apply(desired, destroy_plan(observed, provisioners=w.kinds), observed)
    assert result.ok and len(w.cloud.records) == 0
    assert len(walks) <= len(desired.nodes)


def test_a_slow_change_does_not_hold_up_independent_ones():
    """Ready queue, not batches: store/data (after box/b0) starts while box/b1 is still busy."""
    w = World()
    w.cloud.put("net/main", NetProps(cidr="10.0.0.0/16"))
    store_created = threading.Event()
    seen = {}
    w.cloud.hooks[("create", "store/data")] = store_created.set
    w.cloud.hooks[("create", "box/b1")] = lambda: seen.setdefault("store first", store_created.wait(5))
    result = w.apply(stack(2), parallelism=4)
    assert result.ok and seen == {"store first": True}


def test_a_failure_skips_its_dependents_and_nothing_else():
    w = World()
    desired = graph(node("net/n1", NetProps(cidr="10.1.0.0/16")),
                    node("box/a", BoxProps(net_id=ref("net/n1"))),
                    node("store/a", StoreProps(name="a", box_id=ref("box/a"))),
                    node("net/n2", NetProps(cidr="10.2.0.0/16")),
                    node("box/b", BoxProps(net_id=ref("net/n2"))))
    w.cloud.fail("create", "net/n1", aws_error("AccessDenied", 403, "not allowed to create nets"))
    result = w.apply(desired)
    states = {str(a): o.state for a, o in result.outcomes.items()}
    assert states == {"net/n1": State.FAILED, "net/n2": State.CREATED, "box/a": State.SKIPPED,
                      "box/b": State.CREATED, "store/a": State.SKIPPED}
    assert not result.ok
    assert result.outcomes[A("net/n1")].message == "creating net (net/n1): CreateThing: AccessDenied: not allowed to create nets"
    assert w.cloud.verbs("create").count("net/n1") == 1, "a permanent error is not retried"
    assert result.outcomes[A("box/a")].message == "waits for net/n1, which failed"
    assert events.Skipped(A("store/a"), "waits for box/a, which failed") in w.events
    assert events.Failed(A("net/n1"), Action.CREATE, result.outcomes[A("net/n1")].message) in w.events


def test_stop_starts_nothing_new_and_reports_the_rest_as_not_started():
    w = World()
    stop = threading.Event()
    w.cloud.hooks[("create", "net/main")] = stop.set          # Ctrl-C while the first call is in flight
    result = w.apply(stack(), stop=stop)
    assert result.interrupted and not result.ok
    assert w.cloud.verbs("create") == ["net/main"]
    assert result.outcomes[A("net/main")].state is State.CREATED
    assert result.outcomes[A("box/b0")].state is State.NOT_STARTED
    assert result.outcomes[A("store/data")].state is State.NOT_STARTED


def test_changed_since_plan_is_refused():
    w = World()
    w.apply(stack())
    changed = graph(*[node(n.address.kind + "/" + n.address.name,
                           n.props.model_copy(update={"size": 3}) if n.kind == "box" else n.props)
                      for n in stack()])
    observed = w.observed()
    the_plan = plan(changed, observed, provisioners=w.kinds)
    assert the_plan.get(A("box/b0")).action is Action.UPDATE
    w.cloud.records[w.ident("box/b0")].props = w.props("box/b0").model_copy(update={"size": 7})   # by hand, now
    w.cloud.calls.clear()
    result = w.apply(changed, the_plan, observed)
    assert result.outcomes[A("box/b0")].state is State.FAILED
    assert result.outcomes[A("box/b0")].message == "updating box (box/b0): changed since plan; run diff again"
    assert w.cloud.calls == []
    assert w.props("box/b0").size == 7


def test_a_resource_no_longer_ours_is_not_touched():
    w = World()
    w.apply(stack())
    observed = w.observed()
    the_plan = destroy_plan(observed, provisioners=w.kinds)
    w.cloud.records[w.ident("net/main")].tags = {"Owner": "someone-else"}     # re-tagged by hand
    result = w.apply(Graph(), the_plan, observed)
    assert result.outcomes[A("net/main")].state is State.FAILED
    assert "not tagged as this environment's; refusing to touch it" in result.outcomes[A("net/main")].message
    assert w.cloud.verbs("delete") == ["store/data", "box/b0"]
    assert w.ident("net/main")


def test_a_delete_goes_ahead_when_only_settings_changed_since_plan():
    """A delete checks again that the resource is ours, not its settings: it is the same resource."""
    w = World()
    w.apply(stack())
    observed = w.observed()
    the_plan = destroy_plan(observed, provisioners=w.kinds)
    w.cloud.records[w.ident("box/b0")].props = w.props("box/b0").model_copy(update={"size": 7})   # by hand, now
    result = w.apply(Graph(), the_plan, observed)
    assert result.ok, result.outcomes
    assert w.cloud.verbs("delete") == ["store/data", "box/b0", "net/main"]


@pytest.mark.parametrize("gone", [False, True])
def test_a_delete_that_reads_tags_alone_tells_gone_from_not_ours_with_a_full_read(gone):
    w = World(box=TagsOnlyBox)
    w.apply(stack(2))
    observed = w.observed()
    the_plan = destroy_plan(observed, provisioners=w.kinds)
    w.cloud.records[w.ident("box/b1")].tags = {"Owner": "someone-else"}     # re-tagged by hand
    if gone:
        del w.cloud.records[w.ident("box/b0")]                           # deleted by hand: "no tags"
    result = w.apply(Graph(), the_plan, observed)
    assert sorted(map(str, w.kinds["box"].tag_reads)) == ["box/b0", "box/b1"]
    b0, b1 = result.outcomes[A("box/b0")], result.outcomes[A("box/b1")]
    assert (b0.state, b0.message) == ((State.DELETED, "already gone") if gone else (State.DELETED, None))
    assert b1.state is State.FAILED and "not tagged as this environment's" in b1.message
    assert w.cloud.verbs("delete") == ["store/data"] + ([] if gone else ["box/b0"])


def boxes(n: int) -> Graph:
    """net/main ← box/b0 … box/b{n-1}: the boxes' deletes are all ready at once."""
    return graph(node("net/main", NetProps(cidr="10.0.0.0/16")),
                 *(node(f"box/b{i}", BoxProps(net_id=ref("net/main"))) for i in range(n)))


def destroy_boxes(n: int, before=lambda w: None):
    """A World of BatchBoxes (3 deletes a call), made, then destroyed; `before` acts by hand
    between the plan and the destroy."""
    w = World(box=BatchBox)
    w.apply(boxes(n))
    observed = w.observed()
    the_plan = destroy_plan(observed, provisioners=w.kinds)
    before(w)
    w.cloud.calls.clear()
    w.events.clear()
    return w, w.apply(Graph(), the_plan, observed, parallelism=4)


def test_deletes_that_aws_takes_together_go_in_one_call_each_checked_first():
    w, result = destroy_boxes(6)
    assert result.ok, result.outcomes
    assert sorted(w.cloud.verbs("delete_many")) == ["box/b0,box/b1,box/b2", "box/b3,box/b4,box/b5"]
    assert w.cloud.verbs("delete") == ["net/main"], "the net goes once the boxes are gone"
    assert w.cloud.records == {}
    started = [e.address for e in w.events if isinstance(e, events.Started)]
    done = [e.address for e in w.events if isinstance(e, events.Done)]
    assert sorted(started) == sorted(done) == sorted(A(f"box/b{i}") for i in range(6)) + [A("net/main")]


def test_a_box_no_longer_ours_is_refused_alone_and_the_others_go_in_one_call():
    w, result = destroy_boxes(3, before=lambda w: w.cloud.records[w.ident("box/b1")].tags.update(
        {tagging.ENVIRONMENT: "prod"}))
    b1 = result.outcomes[A("box/b1")]
    assert b1.state is State.FAILED and "not tagged as this environment's; refusing to touch it" in b1.message
    assert w.cloud.verbs("delete_many") == ["box/b0,box/b2"]
    assert result.outcomes[A("net/main")].state is State.SKIPPED, "the net waits for box/b1, which failed"
    assert [str(r.address) for r in w.cloud.records.values()] == ["net/main", "box/b1"]


def test_a_box_already_gone_is_said_so_and_the_others_go_in_one_call():
    w, result = destroy_boxes(3, before=lambda w: w.cloud.records.pop(w.ident("box/b2")))
    assert result.ok, result.outcomes
    assert result.outcomes[A("box/b2")].message == "already gone"
    assert w.cloud.verbs("delete_many") == ["box/b0,box/b1"]


def test_a_call_for_several_that_fails_is_made_one_by_one_so_each_error_names_its_resource():
    def faults(w):
        w.cloud.fail("delete_many", "box/b0,box/b1,box/b2", aws_error("ValidationError", message="one is in use"))
        w.cloud.fail("delete", "box/b1", aws_error("ValidationError", message="box/b1 is in use"))
    w, result = destroy_boxes(3, before=faults)
    assert w.cloud.verbs("delete_many") == ["box/b0,box/b1,box/b2"]
    assert sorted(w.cloud.verbs("delete")) == ["box/b0", "box/b1", "box/b2"]
    b1 = result.outcomes[A("box/b1")]
    assert b1.state is State.FAILED and "box/b1 is in use" in b1.message
    assert [result.outcomes[A(a)].state for a in ("box/b0", "box/b2")] == [State.DELETED, State.DELETED]
    assert [str(r.address) for r in w.cloud.records.values()] == ["net/main", "box/b1"]
    (said,) = [e for e in w.events if isinstance(e, events.Waiting)]
    assert said.status == "deleting 3 one by one after ValidationError: one is in use"


def test_a_replacements_delete_is_not_taken_with_others():
    w = World(box=BatchBox)
    w.apply(boxes(2))
    new_net = graph(node("net/main", NetProps(cidr="10.1.0.0/16")),          # replaces the net, then the boxes on it
                    *(node(f"box/b{i}", BoxProps(net_id=ref("net/main"))) for i in range(2)))
    w.cloud.calls.clear()
    result = w.apply(new_net, parallelism=4)
    assert result.ok, result.outcomes
    assert {result.outcomes[A(a)].state for a in ("box/b0", "box/b1")} == {State.REPLACED}
    assert w.cloud.verbs("delete_many") == [] and sorted(w.cloud.verbs("delete")) == ["box/b0", "box/b1", "net/main"]


def test_temporary_errors_are_retried_with_backoff():
    w = World()
    w.cloud.fail("create", "net/main", aws_error("Throttling", 400), aws_error("DependencyViolation"))
    result = w.apply(stack())
    assert result.ok
    assert w.cloud.verbs("create").count("net/main") == 3
    assert len(w.sleeps) == 2 and 0.5 <= w.sleeps[0] <= 1 and 1 <= w.sleeps[1] <= 2
    retries = [e.status for e in w.events if isinstance(e, events.Waiting)]
    assert len(retries) == 2 and "Throttling" in retries[0]


def test_temporary_errors_give_up_after_the_window():
    w = World()
    w.cloud.fail("create", "net/main", *[aws_error("DependencyViolation", message="still in use")] * 50)
    result = w.apply(stack(), retry_window_s=10)
    assert result.outcomes[A("net/main")].message == ("creating net (net/main): CreateThing: DependencyViolation: "
                                                      "still in use")
    assert 1 < w.cloud.verbs("create").count("net/main") < 10


def test_an_ambiguous_create_failure_adopts_what_it_created():
    """A 5xx after the create happened: look (find) before trying again, and adopt."""
    w = World()
    w.cloud.fail("create", "net/main", aws_error("InternalError", 500), after=True)
    result = w.apply(stack())
    assert result.ok
    assert w.cloud.verbs("create").count("net/main") == 1
    assert len([r for r in w.cloud.records.values() if r.address == A("net/main")]) == 1
    assert result.outcomes[A("net/main")].id == w.ident("net/main")


def test_destroy_deletes_users_first_by_the_kind_table():
    w = World()
    w.apply(stack(2))
    w.cloud.calls.clear()
    result = w.apply(Graph(), destroy_plan(w.observed(), provisioners=w.kinds), parallelism=1)
    assert result.ok
    assert w.cloud.verbs("delete") == ["store/data", "box/b0", "box/b1", "net/main"]
    assert w.cloud.records == {} and result.outputs == {}


def test_deleting_in_parallel_still_waits_for_users():
    w = World()
    w.apply(stack(3))
    in_flight = {}

    def record(address):
        def hook():
            in_flight[address] = {str(r.address) for r in w.cloud.records.values()}
        return hook

    for address in ("net/main", "box/b0", "box/b1", "box/b2"):
        w.cloud.hooks[("delete", address)] = record(address)
    result = w.apply(Graph(), destroy_plan(w.observed(), provisioners=w.kinds), parallelism=8)
    assert result.ok
    assert in_flight["net/main"] == {"net/main"}, "the net is deleted only once nothing uses it"
    assert "store/data" not in in_flight["box/b0"]


def test_prune_deletes_an_orphan_after_its_users_moved_away():
    w = World()
    w.apply(stack())
    # The spec moves box/b0 to a new net and drops the old one.
    desired = graph(node("net/new", NetProps(cidr="10.9.0.0/16")),
                    node("box/b0", BoxProps(net_id=ref("net/new"))),
                    node("store/data", StoreProps(name="data", box_id=ref("box/b0"))))
    the_plan = w.plan(desired, prune=True)
    assert [(str(c.address), c.action.value) for c in the_plan] == [
        ("net/new", "create"), ("box/b0", "replace"), ("store/data", "update"), ("net/main", "delete")]
    w.cloud.calls.clear()
    result = w.apply(desired, the_plan, parallelism=8)
    assert result.ok, result.outcomes
    calls = w.cloud.calls
    assert calls.index(("delete", "box/b0")) < calls.index(("delete", "net/main"))
    assert w.props("store/data").box_id == w.ident("box/b0")
    assert w.props("box/b0").net_id == w.ident("net/new")


def test_replace_deletes_first_when_the_kind_says_so():
    w = World()
    w.apply(stack())
    moved = graph(node("net/main", NetProps(cidr="10.7.0.0/16")),
                  node("box/b0", BoxProps(net_id=ref("net/main"))),
                  node("store/data", StoreProps(name="data", box_id=ref("box/b0"))))
    w.cloud.calls.clear()
    result = w.apply(moved)
    assert result.ok
    assert [o.state for o in result.outcomes.values()] == [State.REPLACED, State.REPLACED, State.UPDATED]
    assert w.cloud.calls == [("delete", "box/b0"), ("delete", "net/main"), ("create", "net/main"),
                             ("create", "box/b0"), ("update", "store/data")]
    assert w.props("store/data").box_id == w.ident("box/b0")


def test_replace_creates_first_when_the_kind_allows():
    w = World(box=CreateFirstBox)
    w.apply(stack())
    old_box = w.ident("box/b0")
    bigger = graph(node("net/main", NetProps(cidr="10.0.0.0/16")),
                   node("box/b0", BoxProps(net_id="net-elsewhere")),
                   node("store/data", StoreProps(name="data", box_id=ref("box/b0"))))
    w.cloud.calls.clear()
    result = w.apply(bigger)
    assert result.ok
    assert w.cloud.calls == [("create", "box/b0"), ("update", "store/data"), ("delete", "box/b0")]
    assert w.ident("box/b0") != old_box and w.props("store/data").box_id == w.ident("box/b0")


def test_blocked_changes_are_skipped_and_hold_back_what_waits_for_them():
    w = World()
    w.apply(stack())
    w.cloud.calls.clear()
    observed = w.observed()
    the_plan = destroy_plan(observed, protected=True, provisioners=w.kinds)
    result = w.apply(Graph(), the_plan, observed)
    assert w.cloud.calls == []
    assert {o.state for o in result.outcomes.values()} == {State.SKIPPED}
    assert not result.ok


def test_unknown_provisioner_output_fails_the_node_not_the_run():
    w = World()
    desired = graph(node("net/main", NetProps(cidr="10.0.0.0/16")),
                    node("box/b0", BoxProps(net_id=ref("net/main", "no_such_output"))))
    result = w.apply(desired)
    assert result.outcomes[A("net/main")].state is State.CREATED
    assert result.outcomes[A("box/b0")].message == (
        "creating box (box/b0): net/main.no_such_output is not known: net/main provides no 'no_such_output'")


def test_events_arrive_one_at_a_time():
    w = World()
    lock = threading.Lock()
    overlaps = []

    def on_event(e):
        if not lock.acquire(blocking=False):
            overlaps.append(e)
            return
        try:
            threading.Event().wait(0.002)          # a slow presenter
        finally:
            lock.release()

    for i in range(6):
        w.cloud.fail("create", f"box/b{i}", aws_error("Throttling"))      # Waiting events from workers
    result = execute(w.plan(stack(6)), stack(6), {}, w.ctx, provisioners=w.kinds, on_event=on_event,
                     parallelism=6, sleep=lambda s: None)
    assert result.ok and overlaps == []


def test_a_blocked_delete_holds_back_the_deletes_of_what_it_uses():
    w = World()
    w.apply(stack())
    only_net = graph(node("net/main", NetProps(cidr="10.0.0.0/16")))
    the_plan = w.plan(only_net, prune=True, protected=True)
    assert [(str(c.address), c.action.value, c.blocked is not None) for c in the_plan] == [
        ("net/main", "noop", False), ("store/data", "delete", True), ("box/b0", "delete", False)]
    w.cloud.calls.clear()
    result = w.apply(only_net, the_plan)
    assert w.cloud.calls == []
    assert result.outcomes[A("store/data")].message.startswith("blocked: stateful")
    assert result.outcomes[A("box/b0")].message == "waits for store/data, which is blocked"


# ------------------------------------------------------------------ converge after create, re-diff on retry

class HalfStore(Store):
    """A store kind whose create leaves the retention at its default and drops the user tags:
    a create cut short (a table made, its TTL never set), to be finished by the executor."""

    def create(self, ctx, node):
        own = {k: v for k, v in node.tags.items() if k.startswith("envctl:")}
        return super().create(ctx, replace(node, props=node.props.model_copy(update={"retention": 7}), tags=own))


class RecordingStore(Store):
    """A store kind that remembers the attribute paths each update was asked to change."""

    def __init__(self, cloud):
        super().__init__(cloud)
        self.asked: list[list[str]] = []

    def update(self, ctx, observed, node, changes):
        self.asked.append(sorted(c.path for c in changes))
        super().update(ctx, observed, node, changes)


def long_kept_store() -> Graph:
    return graph(node("store/data", StoreProps(name="data", retention=30)))


def test_a_half_made_create_is_finished_in_the_same_run():
    w = World()
    w.kinds["store"] = HalfStore(w.cloud)
    result = w.apply(long_kept_store())
    assert result.ok and result.outcomes[A("store/data")].state is State.CREATED
    assert w.cloud.calls == [("create", "store/data"), ("update", "store/data"), ("update_tags", "store/data")]
    assert w.props("store/data").retention == 30
    record = w.cloud.records[w.ident("store/data")]
    assert record.tags["team"] == "platform" and tagging.CREATED in record.tags
    assert w.plan(long_kept_store()).is_empty


def test_a_complete_create_is_not_touched_again():
    w = World()
    result = w.apply(long_kept_store())
    assert result.ok and w.cloud.calls == [("create", "store/data")]


def test_a_create_adopted_after_an_ambiguous_failure_is_finished_too():
    w = World()
    w.kinds["store"] = HalfStore(w.cloud)
    w.cloud.fail("create", "store/data", ConnectionClosedError(endpoint_url="http://aws"), after=True)
    result = w.apply(long_kept_store())
    assert result.ok
    assert w.cloud.calls == [("create", "store/data"), ("update", "store/data"), ("update_tags", "store/data")]
    assert [r.props.retention for r in w.cloud.records.values()] == [30]
    assert result.outcomes[A("store/data")].id == w.ident("store/data")


def test_an_adopted_resource_that_is_not_ours_is_refused():
    w = World()
    w.cloud.fail("create", "store/data", ConnectionClosedError(endpoint_url="http://aws"))
    # What find meets after the broken create: the name taken by someone else's store.
    foreign = Observed(A("store/data"), "store-foreign", StoreProps(name="data"), {"Owner": "someone-else"})
    w.kinds["store"].find = lambda ctx, node: foreign
    result = w.apply(long_kept_store())
    assert result.outcomes[A("store/data")].state is State.FAILED
    assert "is not managed by envctl for this environment" in result.outcomes[A("store/data")].message
    assert w.cloud.verbs("update") == []


def test_a_retried_update_applies_only_what_still_differs():
    """The first update did half its work, then its connection broke: the retry reads the
    store again and asks only for the other half."""
    w = World()
    w.kinds["store"] = RecordingStore(w.cloud)
    w.cloud.put("net/main", NetProps(cidr="10.0.0.0/16"))
    w.apply(stack())
    wanted = graph(*[n if n.kind != "store" else node("store/data", StoreProps(name="data", box_id="box-elsewhere",
                                                                                 retention=30))
                     for n in stack()])
    the_plan = w.plan(wanted)
    assert [ch.path for ch in the_plan.get(A("store/data")).changes] == ["box_id", "retention"]

    def half_done():
        record = w.cloud.records[w.ident("store/data")]
        record.props = record.props.model_copy(update={"retention": 30})

    w.cloud.hooks[("update", "store/data")] = half_done
    w.cloud.fail("update", "store/data", ConnectionClosedError(endpoint_url="http://aws"))
    result = w.apply(wanted, the_plan)
    assert result.ok
    assert w.kinds["store"].asked == [["box_id", "retention"], ["box_id"]]
    assert (w.props("store/data").box_id, w.props("store/data").retention) == ("box-elsewhere", 30)


def test_an_update_whose_reply_was_lost_is_not_repeated():
    w = World()
    w.apply(stack())
    bigger = graph(*[node(f"{n.kind}/{n.address.name}", n.props.model_copy(update={"size": 3}))
                     if n.kind == "box" else n for n in stack()])
    w.cloud.calls.clear()
    w.cloud.fail("update", "box/b0", ConnectionClosedError(endpoint_url="http://aws"), after=True)
    result = w.apply(bigger)
    assert result.ok and result.outcomes[A("box/b0")].state is State.UPDATED
    assert w.cloud.calls == [("update", "box/b0")]
    assert w.props("box/b0").size == 3


def test_a_retried_update_refuses_what_the_plan_did_not_show():
    w = World()
    w.apply(stack())
    bigger = graph(*[node(f"{n.kind}/{n.address.name}", n.props.model_copy(update={"size": 3}))
                     if n.kind == "box" else n for n in stack()])
    the_plan = w.plan(bigger)

    def moved_by_hand():           # while the first update was in flight, someone moved the box
        record = w.cloud.records[w.ident("box/b0")]
        record.props = record.props.model_copy(update={"net_id": "net-elsewhere"})

    w.cloud.hooks[("update", "box/b0")] = moved_by_hand
    w.cloud.fail("update", "box/b0", aws_error("Throttling"))
    result = w.apply(bigger, the_plan)
    assert result.outcomes[A("box/b0")].state is State.FAILED
    assert result.outcomes[A("box/b0")].message == "updating box (box/b0): changed since plan (net_id); run diff again"
    assert w.cloud.verbs("update") == ["box/b0"]


def test_client_tokens_hold_within_a_run_and_change_between_runs():
    one, other = Ctx(aws=None, project=PROJECT, environment=ENV), Ctx(aws=None, project=PROJECT, environment=ENV)
    address = A("nat_gateway/nat-a")
    assert one.client_token(address) == one.client_token(address)
    assert one.client_token(address) != other.client_token(address)
    assert one.client_token(address) != one.client_token(A("nat_gateway/nat-b"))
    assert one.client_token(address, "v2") != one.client_token(address)
    assert len(one.client_token(address)) <= 64


def test_a_steps_reads_run_side_by_side_on_the_executors_read_pool():
    """`ctx.read_all` in a step: both reads at once (each waits for the other), not one by one."""
    both = threading.Barrier(2, timeout=5)

    class ReadingBox(Box):
        def read_for_delete(self, ctx, observed):
            ctx.read_all([both.wait, both.wait])
            return super().read_for_delete(ctx, observed)

    w = World(box=ReadingBox)
    w.apply(stack())
    observed = w.observed()
    result = w.apply(Graph(), destroy_plan(observed, provisioners=w.kinds), observed)
    assert result.ok, result.outcomes
    assert w.cloud.records == {}


def test_a_map_inside_a_read_runs_one_by_one_rather_than_wait_for_its_own_pool():
    """One read thread, busy with the outer read: the inner reads run on it, in the caller."""
    pool = ThreadPoolExecutor(max_workers=1)
    ctx = Ctx(aws=None, project=PROJECT, environment=ENV, read_pool=pool)
    done = []
    worker = threading.Thread(target=lambda: done.append(
        ctx.map(lambda outer: ctx.map(lambda inner: (outer, inner), [1, 2]), ["a", "b"])))
    worker.start()
    worker.join(timeout=5)
    pool.shutdown(wait=False, cancel_futures=True)      # were it stuck: its inner reads are cancelled
    assert done == [[[("a", 1), ("a", 2)], [("b", 1), ("b", 2)]]]
