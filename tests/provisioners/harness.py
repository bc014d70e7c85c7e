"""A minimal, direct driver for provisioner tests: spec text → graph → create/read/diff/delete.

It calls provisioners in dependency order without the engine, so each kind can be tested
on its own against moto server. The engine has its own tests; CLI tests run both together.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from envctl.aws.session import AwsOptions, AwsSession
from envctl.expand import expand
from envctl.model.address import Address
from envctl.model.graph import Graph, Node, Unknown, resolve, topological
from envctl.provisioners import by_kind
from envctl.provisioners.base import Ctx, Observed
from envctl.spec.validate import load

HEADER = """\
project: acme
region: eu-north-1
"""


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


def create_all(ctx: Ctx, graph: Graph) -> dict[Address, Observed]:
    """Create every node in dependency order; return what `wait(ready)` read back."""
    outputs: dict[Address, dict] = {}
    observed: dict[Address, Observed] = {}
    for address in topological(graph.nodes, {a: n.deps for a, n in graph.nodes.items()}):
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


def diff_all(graph: Graph, observed: dict[Address, Observed]) -> dict[Address, list]:
    """{address: changes} for every node that differs (absent nodes map to None)."""
    outputs = {a: dict(by_kind(a.kind).outputs(o)) for a, o in observed.items()}
    out = {}
    for node in graph:
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
