"""envctl outputs ENV: ids, ARNs, URLs and names of what exists, for the next CI step."""
from __future__ import annotations

import json

import click

from envctl.cli import cli
from envctl.cli.app import App


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def outputs(app: App, env: str, as_json: bool) -> None:
    """Print the outputs of every live resource of ENV (read-only).

    JSON shape: {"version": 1, "project": …, "environment": …,
    "resources": {"queue/work-units": {"url": …, "arn": …, "name": …}, …}}
    """
    from envctl.cli.workflow import observe
    from envctl.provisioners import by_kind
    from envctl.render.outputs import output_lines

    spec = app.load_spec(env)
    _, _, observed = observe(app, spec)
    resources = {str(a): dict(by_kind(a.kind).outputs(o)) for a, o in sorted(observed.items())}
    if as_json:
        click.echo(json.dumps({"version": 1, "project": spec.model.project, "environment": spec.name,
                               "resources": resources}, indent=2))
        return
    if not resources:
        app.say(f"{spec.model.project}/{spec.name} has no resources; run `envctl create {env}`")
        return
    for line in output_lines(resources):
        app.console.print(line)
