"""The desired graph: one node per AWS resource, edges from the references in its props."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel
from pydantic_core import core_schema

from envctl.model.address import Address


class _BuiltByEnvctl:
    """A value envctl builds itself (expand, the provisioners' reads) and never parses from
    input: a Props field holding one checks it with isinstance. Left to pydantic, every Props
    model that takes a Value would generate a schema for each of these dataclasses (and their
    Address) and re-validate them field by field: 16 of expand's 28 ms a command."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(cls)


@dataclass(frozen=True, order=True)
class Ref(_BuiltByEnvctl):
    """A value that another resource's outputs provide: Ref(queue/work-units, "arn")."""

    address: Address
    attr: str

    def __str__(self) -> str:
        return f"{self.address}.{self.attr}"


@dataclass(frozen=True)
class Unknown(_BuiltByEnvctl):
    """A value not known until its resource exists: shown as (known after create)."""

    ref: Ref

    def __str__(self) -> str:
        return "(known after create)"


@dataclass(frozen=True)
class Template(_BuiltByEnvctl):
    """A string with references inside: ("https://", Ref(...), "/path"). Joined once all are known."""

    parts: tuple  # of str | Ref

    def __str__(self) -> str:
        return "".join(f"${{{p}}}" if isinstance(p, Ref) else str(p) for p in self.parts)


@dataclass(frozen=True)
class Node:
    address: Address
    props: BaseModel
    physical_name: str
    tags: Mapping[str, str]
    extra_deps: frozenset[Address] = frozenset()   # ordering that no Ref expresses

    @property
    def kind(self) -> str:
        return self.address.kind

    @cached_property
    def deps(self) -> frozenset[Address]:
        # Cached: a walk of the props, asked for by validation, the planner and the executor's ordering.
        return frozenset(r.address for r in refs_in(self.props)) | self.extra_deps


def refs_in(value: Any) -> Iterator[Ref]:
    """Every Ref anywhere inside a props model (fields, tuples, dicts, nested models)."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Template):
        yield from (p for p in value.parts if isinstance(p, Ref))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from refs_in(getattr(value, name))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from refs_in(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from refs_in(item)


def resolve(value: Any, lookup) -> Any:
    """Replace every Ref by lookup(ref): a concrete value, or Unknown(ref) when not known yet."""
    if isinstance(value, Ref):
        return lookup(value)
    if isinstance(value, Template):
        parts = [lookup(p) if isinstance(p, Ref) else p for p in value.parts]
        unknown = next((p for p in parts if isinstance(p, Unknown)), None)
        return unknown if unknown is not None else "".join(str(p) for p in parts)
    if isinstance(value, BaseModel):
        changed = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = resolve(old, lookup)
            if new is not old:
                changed[name] = new
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, tuple):
        items = tuple(resolve(v, lookup) for v in value)
        return items if any(a is not b for a, b in zip(items, value)) else value
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    if isinstance(value, Mapping):
        return {k: resolve(v, lookup) for k, v in value.items()}
    return value


def has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, BaseModel):
        return any(has_unknown(getattr(value, n)) for n in type(value).model_fields)
    if isinstance(value, (list, tuple)):
        return any(has_unknown(v) for v in value)
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    return False


class CycleError(ValueError):
    pass


@dataclass
class Graph:
    nodes: dict[Address, Node] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        if node.address in self.nodes:
            raise ValueError(f"duplicate resource {node.address}")
        self.nodes[node.address] = node

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, address: Address) -> Node:
        return self.nodes[address]

    def __contains__(self, address: object) -> bool:
        return address in self.nodes

    def edges(self) -> list[tuple[Address, Address]]:
        """(dependent, dependency) pairs, sorted."""
        return sorted((n.address, d) for n in self for d in n.deps)

    def check(self) -> None:
        """Every dependency is a node of the graph, and there is no cycle."""
        for n in self:
            missing = [d for d in n.deps if d not in self.nodes]
            if missing:
                raise ValueError(f"{n.address} depends on {missing[0]}, which is not in the graph")
        order = topological(self.nodes, {a: n.deps for a, n in self.nodes.items()})
        assert len(order) == len(self.nodes)


def topological(nodes: Iterable[Address], deps: Mapping[Address, Iterable[Address]]) -> list[Address]:
    """Dependencies first; ties broken by address so the order is deterministic.

    In rounds: each round is every node whose dependencies are all in earlier rounds, sorted.
    Each node counts the dependencies it still waits for, and each dependency knows its
    dependents, so the sort is linear in the edges, not quadratic in the nodes.
    """
    present = set(nodes)
    waiting = {a: {d for d in deps.get(a, ()) if d in present} for a in present}
    dependents: dict[Address, list[Address]] = {}
    for a, ds in waiting.items():
        for d in ds:
            dependents.setdefault(d, []).append(a)
    left = {a: len(ds) for a, ds in waiting.items()}
    order: list[Address] = []
    ready = sorted(a for a, n in left.items() if n == 0)
    while ready:
        order.extend(ready)
        unblocked = []
        for a in ready:
            for b in dependents.get(a, ()):
                left[b] -= 1
                if left[b] == 0:
                    unblocked.append(b)
        ready = sorted(unblocked)
    if len(order) < len(present):
        stuck = sorted(present - set(order))
        raise CycleError("dependency cycle among: " + ", ".join(str(a) for a in stuck))
    return order
