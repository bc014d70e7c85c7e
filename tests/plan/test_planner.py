"""The planner as data tables: desired graph + observed resources → actions and attribute changes."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from envctl.model.address import Address
from envctl.model.graph import Ref, Template, Unknown
from envctl.plan.changes import Action, Plan
from envctl.plan.planner import BLOCKED_DELETE, BLOCKED_DESTROY, BLOCKED_REPLACE, delete_order, destroy_plan, plan
from tests.engine.fakes import BoxProps, NetProps, StoreProps, graph, kinds, node, observed, our_tags

KINDS = kinds()
NET_ID = Ref(Address("net", "main"), "id")
BOX_ID = Ref(Address("box", "a"), "id")

# The desired graph every case starts from: a net, a box in it, a store pointing at the box.
DESIRED = graph(
    node("net/main", NetProps(cidr="10.0.0.0/16")),
    node("box/a", BoxProps(net_id=NET_ID, size=2)),
    node("store/data", StoreProps(name="data", box_id=BOX_ID)),
)
# …and what AWS holds when it is in sync.
IN_SYNC = {
    "net/main": ("net-1", NetProps(cidr="10.0.0.0/16")),
    "box/a": ("box-1", BoxProps(net_id="net-1", size=2)),
    "store/data": ("store-1", StoreProps(name="data", box_id="box-1")),
}


def test_props_hold_the_values_expand_built_as_they_are():
    """A Value field takes a string or one of envctl's own reference types, checked by type
    and kept as is (the same object); anything else is refused."""
    template = Template(("arn:", NET_ID))
    for value in (NET_ID, Unknown(NET_ID), template, "net-1"):
        assert BoxProps(net_id=value).net_id is value
    for wrong in ({"address": NET_ID.address, "attr": "id"}, ("net", "main"), 7):
        with pytest.raises(ValidationError):
            BoxProps(net_id=wrong)


def live(state: dict, tags: dict | None = None) -> dict:
    return {Address.parse(a): observed(a, i, p, (tags or {}).get(a)) for a, (i, p) in state.items()}


def with_(state: dict, **changes) -> dict:
    """IN_SYNC with some addresses' props replaced (key: address with / as __) or removed (None)."""
    out = dict(state)
    for key, value in changes.items():
        address = key.replace("__", "/")
        if value is None:
            del out[address]
        else:
            out[address] = (out.get(address, (f"{address.split('/')[0]}-9", None))[0], value)
    return out


def summary(p: Plan) -> dict[str, tuple]:
    """address → (action, changed paths, replace_because, blocked?)."""
    return {str(c.address): (c.action.value, tuple(ch.path for ch in c.changes), c.replace_because,
                             c.blocked is not None) for c in p.changes}


CASES = [
    # name, observed, options, expected {address: (action, paths, replace_because, blocked)}
    ("nothing exists: create all", {}, {}, {
        "net/main": ("create", ("cidr", "dns", "tags"), (), False),
        "box/a": ("create", ("net_id", "size", "tags"), (), False),
        "store/data": ("create", ("name", "box_id", "retention", "tags"), (), False)}),
    ("in sync: no-ops", IN_SYNC, {}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("noop", (), (), False)}),
    ("updatable field: update", with_(IN_SYNC, box__a=BoxProps(net_id="net-1", size=5)), {}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("update", ("size",), (), False),
        "store/data": ("noop", (), (), False)}),
    ("replace names the field, and cascades through a forcing ref",
     with_(IN_SYNC, net__main=NetProps(cidr="10.9.0.0/16")), {}, {
        "net/main": ("replace", ("cidr",), ("cidr",), False),
        "box/a": ("replace", ("net_id",), ("net_id",), False),
        "store/data": ("update", ("box_id",), (), False)}),
    ("stateful replace is blocked", with_(IN_SYNC, store__data=StoreProps(name="old", box_id="box-1")), {}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("replace", ("name",), ("name",), True)}),
    ("stateful replace allowed explicitly", with_(IN_SYNC, store__data=StoreProps(name="old", box_id="box-1")),
     {"allow_replace": True}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("replace", ("name",), ("name",), False)}),
    ("deleted out of band: create it again", with_(IN_SYNC, box__a=None), {}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("create", ("net_id", "size", "tags"), (), False),
        "store/data": ("update", ("box_id",), (), False)}),
    ("not in the spec: orphan", with_(IN_SYNC, box__old=BoxProps(net_id="net-1")), {}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("noop", (), (), False),
        "box/old": ("orphan", (), (), False)}),
    ("not in the spec, pruning: delete", with_(IN_SYNC, box__old=BoxProps(net_id="net-1")), {"prune": True}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("noop", (), (), False),
        "box/old": ("delete", (), (), False)}),
    ("protected: pruning a stateful resource is blocked, others not",
     with_(IN_SYNC, box__old=BoxProps(net_id="net-1"), store__old=StoreProps(name="old")),
     {"prune": True, "protected": True}, {
        "net/main": ("noop", (), (), False),
        "box/a": ("noop", (), (), False),
        "store/data": ("noop", (), (), False),
        "store/old": ("delete", (), (), True),
        "box/old": ("delete", (), (), False)}),
]


@pytest.mark.parametrize("name, state, options, expected", CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, state, options, expected):
    p = plan(DESIRED, live(state), provisioners=KINDS, **options)
    assert summary(p) == expected
    assert list(summary(p)) == list(expected), "order: dependencies first, orphans last"


def test_create_shows_unknown_after_create_and_json_says_so():
    p = plan(DESIRED, {}, provisioners=KINDS)
    box = p.get(Address("box", "a"))
    net_id = next(c for c in box.changes if c.path == "net_id")
    assert net_id.before is None and net_id.after == Unknown(NET_ID) and net_id.unknown
    doc = json.loads(json.dumps(p.to_json()))
    assert doc["version"] == 1 and (doc["project"], doc["environment"]) == ("acme", "qa")
    box_doc = next(c for c in doc["changes"] if c["address"] == "box/a")
    assert box_doc["action"] == "create" and box_doc["id"] is None and box_doc["kind"] == "box"
    assert {c["path"]: c["after"] for c in box_doc["changes"]}["net_id"] == "(known after create)"
    assert doc["summary"] == {"create": 3, "update": 0, "replace": 0, "delete": 0, "noop": 0, "orphan": 0}


def test_update_shows_before_and_after_of_exactly_the_changed_field():
    p = plan(DESIRED, live(with_(IN_SYNC, box__a=BoxProps(net_id="net-1", size=5))), provisioners=KINDS)
    (change,) = p.get(Address("box", "a")).changes
    assert (change.path, change.before, change.after, change.forces_replace) == ("size", 5, 2, False)
    assert p.get(Address("box", "a")).id == "box-1"
    assert not p.is_empty


def test_ref_to_a_replaced_dependency_is_unknown_and_still_a_change():
    p = plan(DESIRED, live(with_(IN_SYNC, net__main=NetProps(cidr="10.9.0.0/16"))), provisioners=KINDS)
    (box_id,) = p.get(Address("store", "data")).changes
    assert box_id.before == "box-1" and box_id.after == Unknown(BOX_ID)
    assert p.to_json()["changes"][2]["changes"][0]["after"] == "(known after create)"


def test_blocked_replace_keeps_dependents_on_the_existing_resource():
    """A stateful replace that will not happen leaves its outputs known to its users."""
    desired = graph(node("store/data", StoreProps(name="data")),
                    node("box/a", BoxProps(net_id=Ref(Address("store", "data"), "id"))))
    state = {"store/data": ("store-1", StoreProps(name="old")), "box/a": ("box-1", BoxProps(net_id="store-1"))}
    p = plan(desired, live(state), provisioners=KINDS)
    assert p.get(Address("store", "data")).blocked == BLOCKED_REPLACE
    assert p.get(Address("box", "a")).action is Action.NOOP


def test_tags_changed_by_hand_show_as_a_tags_change():
    tags = {"box/a": {**our_tags("box/a"), "owner": "bob", "aws:cloudformation:stack": "x",
                      "Name": "acme-qa-a"}}
    p = plan(DESIRED, live(IN_SYNC, tags), provisioners=KINDS)
    change = p.get(Address("box", "a"))
    assert change.action is Action.UPDATE
    (tag_change,) = change.changes
    assert tag_change.path == "tags"
    assert tag_change.before == {**our_tags("box/a"), "owner": "bob"}     # aws:* and Name = physical name ignored
    assert tag_change.after == our_tags("box/a")


def test_in_sync_plan_is_empty_and_counts():
    p = plan(DESIRED, live(with_(IN_SYNC, box__old=BoxProps(net_id="net-1"))), provisioners=KINDS)
    assert p.is_empty
    assert p.counts()[Action.NOOP] == 3 and p.counts()[Action.ORPHAN] == 1


def test_blocked_change_still_makes_the_plan_non_empty():
    p = plan(DESIRED, live(with_(IN_SYNC, store__data=StoreProps(name="old", box_id="box-1"))), provisioners=KINDS)
    assert not p.is_empty
    assert [c.address for c in p.blocked] == [Address("store", "data")]
    assert not p.blocked[0].mutating


def test_destroy_plan_deletes_users_first():
    p = destroy_plan(live(IN_SYNC), provisioners=KINDS)
    assert [(str(c.address), c.action, c.id, c.blocked) for c in p.changes] == [
        ("store/data", Action.DELETE, "store-1", None),
        ("box/a", Action.DELETE, "box-1", None),
        ("net/main", Action.DELETE, "net-1", None)]
    assert (p.project, p.environment) == ("acme", "qa")


@pytest.mark.parametrize("protected, force, blocked", [(False, False, None), (True, False, BLOCKED_DESTROY),
                                                      (True, True, None)])
def test_destroy_plan_protected(protected, force, blocked):
    p = destroy_plan(live(IN_SYNC), protected=protected, force=force, provisioners=KINDS)
    assert {c.blocked for c in p.changes} == {blocked}


def test_protected_prune_reason():
    p = plan(DESIRED, live(with_(IN_SYNC, store__old=StoreProps(name="old"))), prune=True, protected=True,
             provisioners=KINDS)
    assert p.get(Address("store", "old")).blocked == BLOCKED_DELETE


def test_plan_is_deterministic():
    state = live(with_(IN_SYNC, net__main=NetProps(cidr="10.9.0.0/16"), box__z=BoxProps(net_id="n"),
                       box__b=BoxProps(net_id="n")))
    first = plan(DESIRED, state, prune=True, provisioners=KINDS).to_json()
    again = plan(DESIRED, dict(reversed(list(state.items()))), prune=True, provisioners=KINDS).to_json()
    assert first == again
    assert [c["address"] for c in first["changes"]][-2:] == ["box/b", "box/z"]


def test_the_real_kind_table_has_no_cycle_across_kinds():
    """Destroy without a spec orders deletes by `uses`: it must be a DAG across kinds."""
    from envctl.provisioners import by_kind, kinds as all_kinds

    addresses = [Address(k, "x") for k in all_kinds()]
    assert sorted(delete_order(addresses, by_kind)) == sorted(addresses)
