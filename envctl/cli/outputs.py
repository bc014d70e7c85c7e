"""envctl outputs ENV: ids, ARNs, URLs and names of what exists, for the next CI step."""
from __future__ import annotations

import json

import click

from envctl.cli import cli
from envctl.cli.app import App
from envctl.cli.workflow import complete_env, from_option


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def outputs(app: App, env: str, source: str | None, as_json: bool) -> None:
    """Print the outputs of every live resource of ENV (read-only).

    JSON shape: {"version": 1, "project": …, "environment": …,
    "resources": {"queue/work-units": {"url": …, "arn": …, "name": …}, …}}
    """
    from envctl.cli.workflow import load_spec, observe
    from envctl.provisioners import by_kind
    from envctl.render.outputs import output_lines

    spec = load_spec(app, env, source)
    _, _, observed = observe(app, spec)
    resources = {str(a): dict(by_kind(a.kind).outputs(o)) for a, o in sorted(observed.items())}
    if as_json:
        click.echo(json.dumps({"version": 1, "project": spec.model.project, "environment": spec.name,
                               "resources": resources}, indent=2))
        return
    if not resources:
        again = f"envctl create {env}" + (f" --from {source}" if source else "")
        app.say(f"{spec.model.project}/{spec.name} has no resources; run `{again}`")
        return
    for line in output_lines(resources):
        app.console.print(line)
