"""envctl create ENV: make AWS match the spec, showing the plan first."""
from __future__ import annotations

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App


@cli.command()
@click.argument("env")
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Apply without asking (needed in CI).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=10, show_default=True,
              envvar="ENVCTL_PARALLELISM", help="Resources worked on at once.")
@click.option("--prune", is_flag=True, envvar="ENVCTL_PRUNE",
              help="Also delete resources of the environment that the spec no longer holds.")
@click.option("--allow-replace", is_flag=True, envvar="ENVCTL_ALLOW_REPLACE",
              help="Allow replacing stateful resources (databases, tables, buckets).")
@click.pass_obj
def create(app: App, env: str, yes: bool, parallelism: int, prune: bool, allow_replace: bool) -> None:
    """Create or update the environment ENV so that AWS matches specs/ENV.yaml.

    Idempotent: run twice, the second run changes nothing. Exit 0 done, 1 error or a
    resource failed.
    """
    from envctl.cli.run import apply
    from envctl.cli.workflow import plan_for
    from envctl.render.plan import render_plan

    planned = plan_for(app, env, prune=prune, allow_replace=allow_replace)
    if not (app.options.quiet and yes) or planned.plan.blocked:     # -q: only when asking, or refusing
        render_plan(app.console, planned.plan, verbose=app.options.verbose > 0, header=planned.header)
    if planned.plan.is_empty:
        return
    if planned.plan.blocked:
        app.abort(f"{len(planned.plan.blocked)} change(s) blocked (see above); nothing was changed")
    app.confirm_or_abort(yes, f"Apply these changes to {planned.spec.model.project}/{env}?")
    if not apply(app, planned, parallelism):
        raise Abort(1)
