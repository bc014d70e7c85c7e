"""envctl validate [ENV…]: load, merge and check specs; no AWS call, no boto3 import."""
from __future__ import annotations

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App


@cli.command()
@click.argument("envs", nargs=-1)
@click.pass_obj
def validate(app: App, envs: tuple[str, ...]) -> None:
    """Check specs (every environment when none is named). Exit 0 valid, 1 problems."""
    from envctl.spec.errors import SpecError
    from envctl.spec.validate import environments, load

    names = list(envs) or environments(app.options.specs)
    if not names:
        app.abort(f"no environment specs (*.yaml) in {app.options.specs}/")
    failed = 0
    for env in names:
        try:
            load(app.options.specs, env)
        except SpecError as e:
            app.show_spec_error(e)
            failed += 1
        else:
            app.say(f"[green]✓[/] {env}")
    if failed:
        raise Abort(1)
