"""A minimal, direct driver for provisioner tests: spec text → graph → create/read/diff/delete.

It calls provisioners in dependency order without the engine, so each kind can be tested
on its own against moto server. The engine has its own tests; CLI tests run both together.
"""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import boto3

from envctl.aws.session import AwsOptions, AwsSession
from envctl.expand import expand
from envctl.model.address import Address
from envctl.model.graph import Graph, Node, Unknown, resolve, topological
from envctl.plan.planner import tag_change
from envctl.provisioners import by_kind
from envctl.provisioners.base import Ctx, Observed
from envctl.sandbox.middleware import Layer
from envctl.spec.validate import load
from tests.conftest import REGION

HEADER = """\
project: acme
region: eu-north-1
"""


class Arrivals(Layer):
    """An emulator layer that notes when each call reached it: calls side by side arrive together."""

    def __init__(self):
        self.calls: list[tuple[str, float]] = []

    def handle(self, request, environ, start_response):
        self.calls.append((request.action, time.monotonic()))
        return self.app(environ, start_response)

    def of(self, *actions: str) -> list[float]:
        return [t for action, t in self.calls if action in actions]


def graph_from_yaml(tmp_path: Path, body: str, env: str = "qa", files: dict[str, str] | None = None) -> Graph:
    """Write specs/<env>.yaml (HEADER + body) and any extra files, load and expand it."""
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / f"{env}.yaml").write_text(HEADER + textwrap.dedent(body))
    for rel, text in (files or {}).items():
        p = specs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return expand(load(specs, env))


def make_ctx(aws, project: str = "acme", environment: str = "qa") -> Ctx:
    session = AwsSession(AwsOptions(endpoint_url=aws.endpoint), aws.region)
    session.scope = (project, environment)
    return Ctx(aws=session, project=project, environment=environment)


def resolved(node: Node, outputs: dict[Address, dict]) -> Node:
    def lookup(ref):
        value = outputs.get(ref.address, {}).get(ref.attr)
        return Unknown(ref) if value is None else value

    props = resolve(node.props, lookup)
    return Node(node.address, props, node.physical_name, node.tags, node.extra_deps)


def create_all(ctx: Ctx, graph: Graph, given: dict[Address, dict] | None = None) -> dict[Address, Observed]:
    """Create every node in dependency order; return what `wait(ready)` read back.

    `given` holds the outputs of stand-ins made by hand with plain boto3: those nodes are not
    created, and the others' references to them resolve to these outputs."""
    given = given or {}
    outputs: dict[Address, dict] = dict(given)
    observed: dict[Address, Observed] = {}
    for address in topological(graph.nodes, {a: n.deps for a, n in graph.nodes.items()}):
        if address in given:
            continue
        node = resolved(graph[address], outputs)
        p = by_kind(address.kind)
        ident = p.create(ctx, node)
        obs = p.wait(ctx, ident, "ready")
        assert obs is not None, f"{address} not readable after create"
        observed[address] = obs
        outputs[address] = dict(p.outputs(obs))
    return observed


def discover(ctx: Ctx, kinds: list[str]) -> dict[Address, Observed]:
    ctx.aws.forget_tagged()
    found: dict[Address, Observed] = {}
    for kind in kinds:
        for obs in by_kind(kind).discover(ctx):
            assert obs.address not in found, f"{obs.address} discovered twice"
            found[obs.address] = obs
    return found


def outputs_of(observed: dict[Address, Observed], given: dict[Address, dict] | None = None) -> dict[Address, dict]:
    """{address: outputs} of what exists, on top of the stand-ins' outputs `given`."""
    return {**(given or {}), **{a: dict(by_kind(a.kind).outputs(o)) for a, o in observed.items()}}


def diff_all(graph: Graph, observed: dict[Address, Observed],
             given: dict[Address, dict] | None = None) -> dict[Address, list]:
    """{address: changes} for every node that differs (absent nodes map to None); nodes `given`
    (stand-ins, see create_all) are not compared, and references to them resolve to their outputs."""
    given = given or {}
    outputs = outputs_of(observed, given)
    out = {}
    for node in graph:
        if node.address in given:
            continue
        obs = observed.get(node.address)
        if obs is None:
            out[node.address] = None
            continue
        changes = by_kind(node.kind).diff(resolved(node, outputs).props, obs)
        if changes:
            out[node.address] = changes
    return out


def delete_all(ctx: Ctx, observed: dict[Address, Observed], graph: Graph) -> None:
    order = topological(graph.nodes, {a: n.deps for a, n in graph.nodes.items()})
    for address in reversed(order):
        if address in observed:
            p = by_kind(address.kind)
            p.delete(ctx, observed[address])
            p.wait(ctx, observed[address].id, "gone")


# ------------------------------------------------------------------ drift and repair, as the planner sees them

def kinds_of(graph: Graph) -> list[str]:
    return sorted({n.kind for n in graph})


def drift(ctx: Ctx, graph: Graph,
          kinds: list[str] | None = None) -> tuple[dict[Address, Observed], dict[Address, list[str] | None]]:
    """Discover `kinds` (default: every kind of the graph), then {address: changed field names}
    as the planner sees them (props and tags); None for an address not found."""
    found = discover(ctx, kinds_of(graph) if kinds is None else kinds)
    fields = {a: None if c is None else [x.path for x in c] for a, c in diff_all(graph, found).items()}
    for node in graph:
        if node.address in found and tag_change(node, found[node.address].tags) is not None:
            fields.setdefault(node.address, []).append("tags")
    return found, fields


def changes_of(graph: Graph, found: dict[Address, Observed], address: Address) -> tuple[Node, list]:
    """The node with its references resolved from what exists, and the planner's changes for it."""
    node = resolved(graph[address], outputs_of(found))
    changes = list(by_kind(address.kind).diff(node.props, found[address]))
    tags = tag_change(node, found[address].tags)
    return node, changes + ([tags] if tags else [])


def repair(ctx: Ctx, graph: Graph, found: dict[Address, Observed], address: Address) -> None:
    """What `create` does for an UPDATE: the kind's update with the planner's changes, then the wait."""
    node, changes = changes_of(graph, found, address)
    by_kind(address.kind).update(ctx, found[address], node, changes)
    by_kind(address.kind).wait(ctx, found[address].id, "ready")


def changed_values(graph: Graph, found: dict[Address, Observed], address: Address) -> dict[str, tuple]:
    """{path: (before, after)} of the props that differ at `address`."""
    return {c.path: (c.before, c.after) for c in diff_all(graph, found)[address]}


def update_props(ctx: Ctx, graph: Graph, found: dict[Address, Observed], address: Address) -> None:
    """The kind's update with diff_all's changes, the node's references resolved from what exists."""
    by_kind(address.kind).update(ctx, found[address], resolved(graph[address], outputs_of(found)),
                                 diff_all(graph, found)[address])


# ------------------------------------------------------------------ reading back with plain boto3

def tags_of(raw) -> dict:
    """[{"Key": k, "Value": v}, …] (or None) → {k: v}."""
    return {t["Key"]: t["Value"] for t in raw or ()}


def tagged_arns(aws, resource_types: list[str]) -> list[str]:
    """ARNs the Tagging API lists for environment qa, of the given resource types."""
    pages = aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "envctl:environment", "Values": ["qa"]}], ResourceTypeFilters=resource_types)
    return [r["ResourceARN"] for p in pages for r in p["ResourceTagMappingList"]]


# ------------------------------------------------------------------ stand-ins made by hand
# For create_all's `given`: nodes of other kinds, made with plain boto3.

LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                   "Principal": {"Service": "lambda.amazonaws.com"}}]})


def stand_in_role(aws, name: str) -> dict[str, str]:
    """A role Lambda may assume, under the environment's path: its outputs as the role provisioner gives them."""
    role = aws.client("iam").create_role(RoleName=name, Path="/envctl/acme/qa/",
                                         AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    return {"arn": role["Arn"], "name": role["RoleName"], "id": role["RoleId"]}


def stand_in_queue(aws, name: str) -> dict[str, str]:
    """A queue: its outputs as the queue provisioner gives them."""
    url = aws.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    return {"url": url, "name": name, "arn": f"arn:aws:sqs:{REGION}:{aws.account}:{name}"}


def stand_in_topic(aws, name: str) -> dict[str, str]:
    """A topic: its outputs as the topic provisioner gives them."""
    return {"arn": aws.client("sns").create_topic(Name=name)["TopicArn"], "name": name}


# ------------------------------------------------------------------ botocore's Stubber
# For the states moto skips (MOTO-NOTES §7).

def offline_client(service: str):
    """A real botocore client with dummy credentials, to be driven by a Stubber."""
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


class StubClients:
    """Stands in for the AWS session of a real Ctx: hands out the given (stubbed) clients."""

    region = REGION

    def __init__(self, clients: dict):
        self.clients = clients

    def client(self, service: str):
        return self.clients[service]


class StubCtx:
    """Stands in for a Ctx whose every client is the one stubbed client."""

    def __init__(self, client):
        self._client = client

    def client(self, service: str):
        return self._client
