"""The provisioner interface every resource kind implements, and the helpers they share.

A provisioner is the only place that knows one AWS resource type. It reads live AWS into
its `Props` model (the same shape `expand` builds from the spec), so that `diff` is a
plain field comparison, and it creates, updates and deletes exactly what the planner
decided. It never prints and never decides: the planner and executor do.
"""
from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, wait
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from envctl.model.address import Address
from envctl.model.diff import AttrChange, diff_props
from envctl.model.graph import Node, Ref, Template, Unknown
from envctl.model import tags as tagging


class Props(BaseModel):
    """AWS-shaped desired state of one resource. Defaults equal AWS's, so a fresh resource diffs clean."""

    # defer_build: built on first use (see envctl/spec/models.py); Props of kinds a spec does not
    # use are never built.
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)


Value = str | Ref | Template | Unknown   # a string known now, or provided by other resources
P = TypeVar("P", bound=Props)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Observed(Generic[P]):
    """A live resource read back from AWS, normalised into its kind's Props."""

    address: Address
    id: str                                   # what read() and delete() take: vpc-…, a queue URL, a name
    props: P
    tags: Mapping[str, str]
    status: str = "ready"
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Timeouts:
    create: float = 300
    update: float = 300
    delete: float = 300


class Clients(Protocol):
    """What a provisioner needs of the AWS session (envctl.aws.session.AwsSession)."""

    region: str

    def client(self, service: str) -> Any: ...

    def account_id(self) -> str: ...

    def tagged_arns(self, resource_type: str) -> list[tuple[str, dict[str, str]]]: ...


_in_read: contextvars.ContextVar[bool] = contextvars.ContextVar("in_read", default=False)


def _invoke(read: Callable[[], R]) -> R:
    return read()


def _reading(read: Callable[[T], R], item: T) -> R:
    """read(item), marked as running on a read pool (Ctx.map)."""
    _in_read.set(True)          # in the copied context this read runs in: the caller's is untouched
    return read(item)


@dataclass
class Ctx:
    """What every provisioner call gets: the AWS session and the scope it works in."""

    aws: Clients
    project: str
    environment: str
    # Destroy's options: `force` lifts deletion protection before deleting; `final_snapshot`
    # (a date stamp) makes stateful deletes that can keep a snapshot keep one named with it.
    force: bool = False
    final_snapshot: str | None = None
    # envctl's lifecycle tags for this run (envctl:expires from a ttl, envctl:protected): the
    # executor puts them on every resource it creates or updates; create renews the others.
    # `lifecycle_removed`: those the spec no longer calls for (its ttl or protection removed),
    # taken off the same way.
    lifecycle_tags: Mapping[str, str] = field(default_factory=dict)
    lifecycle_removed: frozenset[str] = frozenset()
    # One per run (per Ctx): mixed into client tokens, so that they hold within a run only.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Where `map` runs reads side by side: observe's pool while it discovers, the executor's while
    # it works; None, one by one.
    read_pool: Executor | None = None
    # Discovery for a destroy (destroy's plan, reap's): what deleting needs is enough. Kinds that
    # read each resource in several calls read only that (a table: DescribeTable, not its TTL
    # nor its backups); the props they leave unread hold defaults, not AWS's, so such an
    # Observation is never diffed against a spec.
    for_delete: bool = False

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def map(self, read: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """[read(item) for item in items], side by side on `read_pool` when there is one.

        For independent reads: discovery's reads of one resource each (services with no batch
        describe), a resource's settings that each take a call; and for writes that are each
        their own object (a route table's subnet associations). In order; the first error is
        raised once every read has ended. Each read runs in a copy of the caller's context
        (contextvars), as if the caller had made it. A map inside a read runs one by one: its
        reads waiting for threads of the pool that runs it could wait for ever.
        """
        items = list(items)
        if self.read_pool is None or len(items) < 2 or _in_read.get():
            return [read(item) for item in items]
        futures = [self.read_pool.submit(contextvars.copy_context().run, _reading, read, item) for item in items]
        wait(futures)
        return [f.result() for f in futures]

    def read_all(self, reads: Iterable[Callable[[], R]]) -> list[R]:
        """[read() for read in reads], side by side as `map` runs them: one resource's settings
        that each take a call of their own."""
        return self.map(_invoke, reads)

    @property
    def region(self) -> str:
        return self.aws.region

    def scope_filters(self) -> list[dict]:
        """EC2-style tag filters selecting exactly this environment's resources."""
        return [{"Name": f"tag:{tagging.PROJECT}", "Values": [self.project]},
                {"Name": f"tag:{tagging.ENVIRONMENT}", "Values": [self.environment]}]

    def is_ours(self, tags: Mapping[str, str]) -> bool:
        return tagging.is_ours(tags, self.project, self.environment)

    def client_token(self, address: Address, salt: str = "") -> str:
        """Idempotency token for a create: environment + address + this run.

        Within one run a retried create is the same request, so AWS answers it with what the
        first attempt made. A later run (after a crash, or once the resource was deleted) sends
        a new token: AWS would answer a reused one with the old, maybe deleted, resource, or
        with IdempotentParameterMismatch (envctl:created differs). Duplicates across runs are
        prevented by the look-up by tag every create makes first (`find`), not by the token.
        """
        import hashlib

        raw = f"{self.project}/{self.environment}/{address}/{salt}/{self.run_id}"
        return hashlib.sha256(raw.encode()).hexdigest()[:64]


class DeletionProtected(Exception):
    """delete refused: the resource has deletion protection on (only destroy --force lifts it).
    Kinds subclass it with their own message; the executor shows it as the reason, not as a bug."""


class NotOurs(Exception):
    """A resource with the name envctl needs exists but is not tagged as this environment's."""

    def __init__(self, address: Address, what: str):
        self.address = address
        super().__init__(f"{what} already exists and is not managed by envctl for this environment; "
                         f"rename it in the spec or remove the existing one")


class Provisioner(Generic[P]):
    """Base class: subclasses set the class attributes and implement the verbs."""

    kind: ClassVar[str]                       # == module name == Address.kind
    props: ClassVar[type[Props]]
    replace_on: ClassVar[frozenset[str]] = frozenset()      # fields AWS cannot change in place
    set_fields: ClassVar[frozenset[str]] = frozenset()      # tuples compared without order
    stateful: ClassVar[bool] = False                        # databases, tables, buckets
    delete_before_replace: ClassVar[bool] = True            # the name must stay unique
    timeouts: ClassVar[Timeouts] = Timeouts()
    uses: ClassVar[frozenset[str]] = frozenset()            # kinds this kind's props may refer to:
    #                                                          on delete, users of a kind go first
    # The Resource Groups Tagging API type whose scan `discover` reads (ctx.aws.tagged_arns):
    # such kinds wait for the scan's pages, then read, so observe starts them first.
    tag_scan: ClassVar[str | None] = None
    # The AWS services (botocore's names) this kind calls: discovery builds their clients while
    # it waits on AWS (engine/observe.py), so that no first call pays for building one.
    services: ClassVar[tuple[str, ...]] = ()
    # How many deletes of this kind AWS takes in one call (`delete_many`); 1: one at a time.
    delete_batch: ClassVar[int] = 1

    # discover everything of this kind tagged for ctx's environment
    def discover(self, ctx: Ctx) -> Iterable[Observed[P]]:
        raise NotImplementedError

    def read(self, ctx: Ctx, id: str) -> Observed[P] | None:
        raise NotImplementedError

    def read_for_delete(self, ctx: Ctx, observed: Observed[P]) -> Observed[P] | None:
        """`observed` (from the plan) as a delete needs it now: None when it is gone, else with
        its live tags, which the executor checks before deleting. Default: a full `read`.

        Kinds whose delete needs only the id, or lists afresh what AWS says is in the way,
        read their tags alone (`with_live_tags`): one call where a full read takes several.
        """
        return self.read(ctx, observed.id)

    def find(self, ctx: Ctx, node: Node) -> Observed[P] | None:
        """The live resource for `node`, by its tags or name; used to adopt and after ambiguous failures.

        Kinds override this with a cheaper look-up by name where the API has one.
        """
        return next((o for o in self.discover(ctx) if o.address == node.address), None)

    def diff(self, desired: P, observed: Observed[P]) -> list[AttrChange]:
        return diff_props(desired, observed.props, self.replace_on, self.set_fields)

    def create(self, ctx: Ctx, node: Node) -> str:
        """Create with tags on the create call; return the id. `node.props` is fully resolved."""
        raise NotImplementedError

    def update(self, ctx: Ctx, observed: Observed[P], node: Node, changes: list[AttrChange]) -> None:
        raise NotImplementedError

    def update_tags(self, ctx: Ctx, observed: Observed[P], tags: Mapping[str, str]) -> None:
        """Make the user tags equal those of `tags` (tags.user_tags: the spec's own and envctl's
        lifecycle tags; the ownership tags never change)."""
        raise NotImplementedError

    def delete(self, ctx: Ctx, observed: Observed[P]) -> None:
        """Delete; a resource already gone is success. The executor checked is_ours before."""
        raise NotImplementedError

    def delete_many(self, ctx: Ctx, observed: Sequence[Observed[P]]) -> None:
        """Delete up to `delete_batch` resources in one call, all or none (CloudWatch's DeleteAlarms
        takes 100 alarms, and deletes none when it fails); missing ones are success, as for
        `delete`. The executor checked each is_ours before. Default: one `delete` each."""
        for o in observed:
            self.delete(ctx, o)

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[P] | None:
        """Default: resources that are ready as soon as the call returns."""
        return self.read(ctx, id) if until == "ready" else None

    def outputs(self, observed: Observed[P]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ shared helpers

def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """{"k": "v"} → [{"Key": "k", "Value": "v"}] (EC2, RDS, IAM, CloudWatch, …)."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def canonical_json(value: Any) -> str:
    """One spelling per JSON document, so policies and inputs compare by meaning."""
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def with_live_tags(observed: Observed[P], read_tags: Callable[[], Mapping[str, str]]) -> Observed[P] | None:
    """`observed` with the tags `read_tags()` answers; None when that call finds it gone."""
    from envctl.aws import errors

    try:
        tags = read_tags()
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    return replace(observed, tags=dict(tags))


def address_of(tags: Mapping[str, str]) -> Address | None:
    text = tags.get(tagging.RESOURCE)
    try:
        return Address.parse(text) if text else None
    except ValueError:
        return None


def tag_changes(current: Mapping[str, str], desired: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(tags to set, keys to remove) that make the user tags of `current` equal those of `desired`
    (envctl's ownership tags never change)."""
    want, have = tagging.user_tags(desired), tagging.user_tags(current)
    return {k: v for k, v in want.items() if have.get(k) != v}, sorted(k for k in have if k not in want)
