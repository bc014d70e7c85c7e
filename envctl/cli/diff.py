"""envctl diff ENV: what create would change. Exit 0 in sync, 2 changes, 1 error."""
from __future__ import annotations

import json

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App
from envctl.cli.workflow import complete_env, from_option


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="The plan as JSON (version 1).")
@click.option("--prune", is_flag=True, envvar="ENVCTL_PRUNE",
              help="Plan to delete resources of the environment that the spec no longer holds.")
@click.option("--allow-replace", is_flag=True, envvar="ENVCTL_ALLOW_REPLACE",
              help="Allow replacing stateful resources (databases, tables, buckets).")
@click.pass_obj
def diff(app: App, env: str, source: str | None, as_json: bool, prune: bool, allow_replace: bool) -> None:
    """Show what `create ENV` would do, changing nothing.

    Exit codes: 0 the environment matches the spec, 2 there are changes, 1 error.
    """
    from envctl.cli.workflow import plan_for
    from envctl.render.plan import render_plan

    planned = plan_for(app, env, source=source, prune=prune, allow_replace=allow_replace)
    if as_json:
        click.echo(json.dumps(planned.plan.to_json(), indent=2))
    else:
        render_plan(app.console, planned.plan, verbose=app.options.verbose > 0, header=planned.header)
    if not planned.plan.is_empty:
        raise Abort(2)
