"""envctl schema | show ENV | graph ENV: views of the specs that need no AWS (and no boto3)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App


@cli.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), envvar="ENVCTL_SCHEMA_OUTPUT",
              help="Write the schema to FILE instead of printing it.")
@click.pass_obj
def schema(app: App, output: Path | None) -> None:
    """Print the JSON Schema of spec files (editor completion: see the README, "Editor completion")."""
    from envctl.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        app.abort(f"cannot write {output}: {e.strerror or e}")
    app.say(f"wrote {output}")


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON",
              help="JSON instead of YAML: the spec document itself (its shape is `envctl schema`).")
@click.option("--defaults", is_flag=True, envvar="ENVCTL_DEFAULTS",
              help="The validated model with every default filled in.")
@click.pass_obj
def show(app: App, env: str, as_json: bool, defaults: bool) -> None:
    """Print the spec of ENV after merging the files it extends.

    By default this is the merged document as written, in your key order, without
    defaults; it is shown even when it does not validate. --defaults validates it and
    shows the full model.
    """
    data, files = resolved(app, env, defaults=defaults)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(f"# {env}: {' extends '.join(files)}" + (" (with defaults)" if defaults else ""))
        click.echo(_yaml(data), nl=False)


@cli.command()
@click.argument("env")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid", "json"]), default="text",
              show_default=True, envvar="ENVCTL_GRAPH_FORMAT",
              help="text: one line per resource; dot: Graphviz; mermaid: a Mermaid flowchart; json: version 1.")
@click.pass_obj
def graph(app: App, env: str, fmt: str) -> None:
    """Print the resources ENV expands into and what each depends on (no AWS call).

    JSON (--format json): {"version": 1, "project", "environment", "resources": [{"address",
    "kind", "physical_name", "depends_on": [address…]}]}, dependencies first.
    """
    from envctl.expand import expand
    from envctl.model.graph import topological

    spec = app.load_spec(env)
    desired = expand(spec)
    order = topological(desired.nodes, {a: n.deps for a, n in desired.nodes.items()})
    nodes = [desired[a] for a in order]
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "project": spec.model.project, "environment": spec.name,
                               "resources": [{"address": str(n.address), "kind": n.kind,
                                              "physical_name": n.physical_name,
                                              "depends_on": [str(d) for d in sorted(n.deps)]} for n in nodes]},
                              indent=2))
        return
    render = {"text": _text, "dot": _dot, "mermaid": _mermaid}[fmt]
    click.echo(render(f"{spec.model.project}-{spec.name}", nodes), nl=False)


# ------------------------------------------------------------------------ helpers

def resolved(app: App, env: str, *, defaults: bool, source: str | None = None) -> tuple[dict, list[str]]:
    """(data, files) of ENV's spec (specs/SOURCE.yaml with --from) after merging the files it
    extends: as written, or (defaults) the validated model with every default filled in.
    `show` prints it, `compare` compares it."""
    from envctl.cli.workflow import load_spec
    from envctl.spec.errors import SpecError
    from envctl.spec.loader import load_environment
    from envctl.spec.validate import spec_path

    if defaults:
        spec = load_spec(app, env, source)
        return spec.model.model_dump(mode="json", by_alias=True), spec.document.files
    try:
        document = load_environment(spec_path(app.options.specs, env))
    except SpecError as e:
        app.show_spec_error(e)
        raise Abort(1)
    return document.data, document.files


def _yaml(data) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Key order as written; multi-line strings (user_data) as literal blocks."""

    def text(dumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def _text(title: str, nodes) -> str:
    """address  (physical name)  ← dep, dep — dependencies first, columns aligned."""
    if not nodes:
        return f"{title}: no resources\n"
    rows = [(str(n.address), f"({n.physical_name})", ", ".join(str(d) for d in sorted(n.deps))) for n in nodes]
    width_address = max(len(r[0]) for r in rows)
    width_name = max(len(r[1]) for r in rows)
    lines = []
    for address, name, deps in rows:
        line = f"{address:<{width_address}}  {name:<{width_name}}"
        lines.append((f"{line}  ← {deps}" if deps else line).rstrip())
    return "\n".join(lines) + "\n"


def _dot(title: str, nodes) -> str:
    lines = [f'digraph "{title}" {{', "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for n in nodes:
        lines.append(f'  "{n.address}" [label="{n.address}\\n{n.physical_name}"];')
    for n in nodes:
        for d in sorted(n.deps):
            lines.append(f'  "{n.address}" -> "{d}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid(title: str, nodes) -> str:
    # Mermaid ids are plain words: number the nodes and show the address in the label.
    ids = {n.address: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["---", f"title: {title}", "---", "flowchart LR"]
    for n in nodes:
        lines.append(f'  {ids[n.address]}["{n.address}<br/>{n.physical_name}"]')
    for n in nodes:
        for d in sorted(n.deps):
            lines.append(f"  {ids[n.address]} --> {ids[d]}")
    return "\n".join(lines) + "\n"
