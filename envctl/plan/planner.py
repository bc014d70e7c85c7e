"""The planner: desired graph + observed resources → Plan. Pure: no I/O, no boto3.

`envctl diff` and `envctl create` call the same `plan()` on the same inputs, so the plan a
user reviews is the plan that runs.

Rules, per desired node in dependency order (ties by address):
- not observed → CREATE (its `changes` list every attribute, `before` None);
- observed → its Refs are resolved against observed outputs (a Ref to a node being created
  or replaced stays `Unknown`), then the kind's `diff` plus a `tags` comparison give the
  attribute changes: any `forces_replace` → REPLACE, else any change → UPDATE, else NOOP;
- a stateful kind's REPLACE is blocked unless `allow_replace`.
Observed resources with no desired node come last, users before what they use: ORPHAN, or
DELETE with `prune` (blocked for stateful kinds in a `protected` environment).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.diff import AttrChange, plain
from envctl.model.graph import Graph, Node, Ref, Unknown, resolve, topological
from envctl.plan.changes import Action, Plan, ResourceChange
from envctl.provisioners.base import Observed, Provisioner

Lookup = Callable[[str], Provisioner]

BLOCKED_REPLACE = "stateful: replacing it would destroy its data, and replacement is not allowed"
BLOCKED_DELETE = "stateful: the environment is protected, its data is never deleted"
BLOCKED_DESTROY = "the environment is protected: destroying it needs force"


def provisioner_lookup(provisioners: Mapping[str, Provisioner] | None = None) -> Lookup:
    """kind → provisioner: the registry's by default, or a given table (tests use fakes)."""
    if provisioners is None:
        from envctl.provisioners import by_kind

        return by_kind

    def lookup(kind: str) -> Provisioner:
        try:
            return provisioners[kind]
        except KeyError:
            raise KeyError(f"no provisioner for kind {kind!r}") from None

    return lookup


def plan(desired: Graph, observed: Mapping[Address, Observed], *, prune: bool = False, protected: bool = False,
         allow_replace: bool = False, project: str | None = None, environment: str | None = None,
         provisioners: Mapping[str, Provisioner] | None = None) -> Plan:
    """What it takes to make AWS (`observed`) match the spec (`desired`).

    `project`/`environment` default to those in the resources' envctl tags.
    """
    get = provisioner_lookup(provisioners)
    outputs = _OutputCache(observed, get)
    pending: set[Address] = set()          # being created or replaced: their outputs are unknown
    volatile: set[Ref] = set()             # outputs an update changes (a launch template's latest_version)

    def lookup(ref: Ref):
        if ref.address in pending or ref in volatile:
            return Unknown(ref)
        value = outputs.get(ref.address).get(ref.attr)
        return Unknown(ref) if value is None else value

    changes: list[ResourceChange] = []
    for address in topological(desired.nodes, {a: n.deps for a, n in desired.nodes.items()}):
        node = desired[address]
        props = resolve(node.props, lookup)
        live = observed.get(address)
        if live is None:
            change = ResourceChange(address, Action.CREATE, node.physical_name, None, _creation(props, node))
        else:
            change = _compare(get(node.kind), node, props, live, allow_replace)
        changes.append(change)
        if change.action is Action.CREATE or (change.action is Action.REPLACE and change.blocked is None):
            pending.add(address)
        elif change.action is Action.UPDATE and any(ch.path != "tags" for ch in change.changes):
            volatile.update(Ref(address, attr) for attr in getattr(get(node.kind), "volatile_outputs", ()))

    orphans = [a for a in observed if a not in desired]
    for address in delete_order(orphans, get):
        live = observed[address]
        if not prune:
            changes.append(ResourceChange(address, Action.ORPHAN, None, live.id))
            continue
        blocked = BLOCKED_DELETE if protected and get(address.kind).stateful else None
        changes.append(ResourceChange(address, Action.DELETE, None, live.id, blocked=blocked))

    default_project, default_env = _scope(desired, observed)
    return Plan(project or default_project, environment or default_env, tuple(changes))


def destroy_plan(observed: Mapping[Address, Observed], *, protected: bool = False, force: bool = False,
                 project: str | None = None, environment: str | None = None,
                 provisioners: Mapping[str, Provisioner] | None = None) -> Plan:
    """Delete every observed resource, users before what they use; all blocked in a protected
    environment unless `force`."""
    get = provisioner_lookup(provisioners)
    blocked = BLOCKED_DESTROY if protected and not force else None
    changes = tuple(ResourceChange(a, Action.DELETE, None, observed[a].id, blocked=blocked)
                    for a in delete_order(observed, get))
    default_project, default_env = _scope(Graph(), observed)
    return Plan(project or default_project, environment or default_env, changes)


def delete_order(addresses: Iterable[Address], get: Lookup) -> list[Address]:
    """Users first: X before Y when X's kind `uses` Y's kind (own kind ignored); ties by address."""
    addresses = list(addresses)
    must_wait = {y: {x for x in addresses if kind_uses(get, x, y)} for y in addresses}
    return topological(addresses, must_wait)


def kind_uses(get: Lookup, user: Address, used: Address) -> bool:
    """The static kind table: may a `user` resource refer to a `used` one? (Same kind: no.)"""
    return user.kind != used.kind and used.kind in get(user.kind).uses


def comparable_tags(tags: Mapping[str, str], physical_name: str | None) -> dict[str, str]:
    """The tags a plan compares: AWS's own (aws:*) and envctl's lifecycle tags (created,
    expires) left out, and `Name` when it is the physical name (EC2 kinds add it on create;
    it is not in the spec)."""
    return {k: v for k, v in sorted(tags.items())
            if not k.startswith("aws:") and k not in tagging.LIFECYCLE and not (k == "Name" and v == physical_name)}


def wanted_tags(node: Node, live_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags an update sets: the node's, plus `Name` = the physical name on kinds that carry
    one (EC2 adds it on create), so that a resource renamed by hand gets its name back."""
    tags = dict(node.tags)
    if "Name" in live_tags and node.physical_name:
        tags.setdefault("Name", node.physical_name)
    return tags


def tag_change(node: Node, live_tags: Mapping[str, str]) -> AttrChange | None:
    want = comparable_tags(node.tags, node.physical_name)
    have = comparable_tags(live_tags, node.physical_name)
    return None if want == have else AttrChange("tags", have, want)


# ------------------------------------------------------------------ private helpers

def _compare(p: Provisioner, node: Node, props, live: Observed, allow_replace: bool) -> ResourceChange:
    changes = list(p.diff(props, live))
    tags = tag_change(node, live.tags)
    if tags is not None:
        changes.append(tags)
    forced = tuple(c.path for c in changes if c.forces_replace)
    action = Action.REPLACE if forced else Action.UPDATE if changes else Action.NOOP
    blocked = BLOCKED_REPLACE if action is Action.REPLACE and p.stateful and not allow_replace else None
    return ResourceChange(node.address, action, node.physical_name, live.id, tuple(changes), forced, blocked)


def _creation(props, node: Node) -> tuple[AttrChange, ...]:
    """A CREATE shows every attribute it sets (unknown ones as such) and the tags."""
    fields = [AttrChange(name, None, plain(getattr(props, name))) for name in type(props).model_fields]
    return (*fields, AttrChange("tags", None, comparable_tags(node.tags, node.physical_name)))


class _OutputCache:
    """Observed outputs, read once per address (a kind's `outputs` may build strings)."""

    def __init__(self, observed: Mapping[Address, Observed], get: Lookup):
        self._observed = observed
        self._get = get
        self._cache: dict[Address, Mapping[str, str]] = {}

    def get(self, address: Address) -> Mapping[str, str]:
        if address not in self._cache:
            live = self._observed.get(address)
            self._cache[address] = {} if live is None else self._get(address.kind).outputs(live)
        return self._cache[address]


def _scope(desired: Graph, observed: Mapping[Address, Observed]) -> tuple[str, str]:
    for tags in [n.tags for n in desired] + [o.tags for o in observed.values()]:
        if tagging.PROJECT in tags and tagging.ENVIRONMENT in tags:
            return tags[tagging.PROJECT], tags[tagging.ENVIRONMENT]
    return "", ""
