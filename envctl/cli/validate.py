"""envctl validate [ENV…]: load, merge and check specs; no AWS call, no boto3 import."""
from __future__ import annotations

import json

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App


@cli.command()
@click.argument("envs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def validate(app: App, envs: tuple[str, ...], as_json: bool) -> None:
    """Check specs (every environment when none is named). Exit 0 valid, 1 problems.

    JSON: {"version": 1, "environments": [{"environment", "valid", "problems": [{"file",
    "line", "path", "message"}]}]}
    """
    from envctl.spec.errors import SpecError
    from envctl.spec.validate import environments, load

    names = list(envs) or environments(app.options.specs)
    if not names:
        app.abort(f"no environment specs (*.yaml) in {app.options.specs}/")
    report = []
    for env in names:
        try:
            load(app.options.specs, env)
        except SpecError as e:
            report.append({"environment": env, "valid": False, "problems": [
                {"file": p.file, "line": p.line, "path": p.path, "message": p.message} for p in e.problems]})
            if not as_json:
                app.show_spec_error(e)
        else:
            report.append({"environment": env, "valid": True, "problems": []})
            if not as_json:
                app.say(f"[green]✓[/] {env}")
    if as_json:
        click.echo(json.dumps({"version": 1, "environments": report}, indent=2))
    if not all(r["valid"] for r in report):
        raise Abort(1)
