"""Fake resource kinds over an in-memory cloud, for planner and executor tests.

Three kinds, shaped like the real ones: `net` (like a VPC), `box` (like a subnet: lives in
a net, replaced when it moves) and `store` (stateful, like a table; may point at a box).
The cloud records every mutating call, counts calls in flight, and injects faults and
hooks per (verb, address), so tests can assert order, concurrency and retries.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from botocore.exceptions import ClientError

from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.graph import Graph, Node, has_unknown
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, Value

PROJECT, ENV = "acme", "qa"


class NetProps(Props):
    cidr: str
    dns: bool = True


class BoxProps(Props):
    net_id: Value
    size: int = 1


class StoreProps(Props):
    name: str
    box_id: Value | None = None
    retention: int = 7


@dataclass
class Record:
    address: Address
    props: Props
    tags: dict[str, str]


@dataclass
class Fault:
    error: BaseException
    after: bool = False          # the call took effect, then the answer was lost (ambiguous)


@dataclass
class FakeCloud:
    records: dict[str, Record] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)        # (verb, address), mutating calls only
    faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)
    hooks: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)
    active: int = 0
    max_active: int = 0

    def __post_init__(self):
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def fail(self, verb: str, address: str, *errors: BaseException, after: bool = False) -> None:
        self.faults.setdefault((verb, address), []).extend(Fault(e, after) for e in errors)

    def call(self, verb: str, address: Address, effect: Callable[[], object]):
        """Run one mutating call: log it, count it in flight, apply hooks and faults."""
        key = (verb, str(address))
        with self.lock:
            self.calls.append(key)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            faults = self.faults.get(key)
            fault = faults.pop(0) if faults else None
        try:
            hook = self.hooks.get(key)
            if hook:
                hook()
            if fault and not fault.after:
                raise fault.error
            result = effect()
            if fault:
                raise fault.error
            return result
        finally:
            with self.lock:
                self.active -= 1

    def verbs(self, verb: str) -> list[str]:
        return [a for v, a in self.calls if v == verb]

    def put(self, address: str, props: Props, tags: Mapping[str, str] | None = None) -> str:
        """A resource that already exists (made by an earlier run, or by hand)."""
        a = Address.parse(address)
        ident = self.new_id(a.kind)
        self.records[ident] = Record(a, props, dict(tags if tags is not None else our_tags(address)))
        return ident


class FakeKind(Provisioner):
    """Everything but the class attributes is shared by the three fake kinds."""

    def __init__(self, cloud: FakeCloud):
        self.cloud = cloud

    def discover(self, ctx: Ctx):
        return [self._observed(i, r) for i, r in list(self.cloud.records.items())
                if r.address.kind == self.kind and ctx.is_ours(r.tags)]

    def read(self, ctx: Ctx, id: str):
        r = self.cloud.records.get(id)
        return None if r is None else self._observed(id, r)

    def find(self, ctx: Ctx, node: Node):
        return next((self._observed(i, r) for i, r in list(self.cloud.records.items())
                     if r.tags.get(tagging.RESOURCE) == str(node.address)), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        assert not has_unknown(node.props), f"{node.address} created with unknown values"

        def effect():
            ident = self.cloud.new_id(self.kind)
            self.cloud.records[ident] = Record(node.address, node.props, dict(node.tags))
            return ident

        return self.cloud.call("create", node.address, effect)

    def update(self, ctx: Ctx, observed: Observed, node: Node, changes) -> None:
        def effect():
            self.cloud.records[observed.id].props = node.props

        self.cloud.call("update", observed.address, effect)

    def update_tags(self, ctx: Ctx, observed: Observed, tags) -> None:
        def effect():
            self.cloud.records[observed.id].tags = dict(tags)

        self.cloud.call("update_tags", observed.address, effect)

    def delete(self, ctx: Ctx, observed: Observed) -> None:
        self.cloud.call("delete", observed.address, lambda: self.cloud.records.pop(observed.id, None))

    def outputs(self, observed: Observed):
        return {"id": observed.id, "arn": f"arn:fake:{observed.id}"}

    def _observed(self, ident: str, r: Record) -> Observed:
        return Observed(r.address, ident, r.props, dict(r.tags))


class Net(FakeKind):
    kind = "net"
    props = NetProps
    replace_on = frozenset({"cidr"})


class Box(FakeKind):
    kind = "box"
    props = BoxProps
    replace_on = frozenset({"net_id"})
    uses = frozenset({"net", "box"})


class CreateFirstBox(Box):
    """A box kind whose replacement is created before the old one is deleted."""
    delete_before_replace = False


class TagsOnlyBox(Box):
    """A box kind whose delete reads its tags alone, as the serverless kinds do; like some tag
    APIs (moto's), it answers "no tags" for a box that is gone."""

    def __init__(self, cloud: FakeCloud):
        super().__init__(cloud)
        self.tag_reads: list[Address] = []          # each box whose tags alone were read

    def read_for_delete(self, ctx: Ctx, observed: Observed):
        self.tag_reads.append(observed.address)
        r = self.cloud.records.get(observed.id)
        return replace(observed, tags=dict(r.tags) if r is not None else {})


class BatchBox(Box):
    """A box kind whose deletes AWS takes three to a call, all or none (as CloudWatch's
    DeleteAlarms takes 100 alarms): one "delete_many" call, logged against each box it names."""
    delete_batch = 3

    def delete_many(self, ctx: Ctx, observed) -> None:
        def effect():
            for o in observed:
                self.cloud.records.pop(o.id, None)

        names = ",".join(sorted(str(o.address) for o in observed))
        self.cloud.call("delete_many", names, effect)


class Store(FakeKind):
    kind = "store"
    props = StoreProps
    replace_on = frozenset({"name"})
    stateful = True
    uses = frozenset({"box"})


def kinds(cloud: FakeCloud | None = None, box=Box) -> dict[str, Provisioner]:
    cloud = cloud or FakeCloud()
    return {"net": Net(cloud), "box": box(cloud), "store": Store(cloud)}


def our_tags(address: str, **extra: str) -> dict[str, str]:
    return tagging.for_resource(PROJECT, ENV, address, {"team": "platform", **extra})


def node(address: str, props: Props, deps: tuple[str, ...] = ()) -> Node:
    a = Address.parse(address)
    return Node(a, props, f"{PROJECT}-{ENV}-{a.name}", our_tags(address),
                frozenset(Address.parse(d) for d in deps))


def graph(*nodes: Node) -> Graph:
    g = Graph()
    for n in nodes:
        g.add(n)
    g.check()
    return g


def observed(address: str, ident: str, props: Props, tags: Mapping[str, str] | None = None) -> Observed:
    return Observed(Address.parse(address), ident, props, dict(tags if tags is not None else our_tags(address)))


def aws_error(code: str, status: int = 400, message: str = "nope", operation: str = "CreateThing") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)
