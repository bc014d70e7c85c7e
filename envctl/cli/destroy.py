"""envctl destroy ENV: delete everything tagged for the environment, and nothing else."""
from __future__ import annotations

import datetime

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App


@cli.command()
@click.argument("env")
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Destroy without asking (needed in CI).")
@click.option("--force", is_flag=True, envvar="ENVCTL_FORCE",
              help="Destroy a protected environment; lift deletion protection on its databases and tables.")
@click.option("--project", envvar="ENVCTL_PROJECT",
              help="The project, when the environment's spec has changed or is gone.")
@click.option("--parallelism", type=click.IntRange(1, 64), default=10, show_default=True,
              envvar="ENVCTL_PARALLELISM", help="Resources worked on at once.")
@click.pass_obj
def destroy(app: App, env: str, yes: bool, force: bool, project: str | None, parallelism: int) -> None:
    """Delete every resource tagged as environment ENV of the project.

    Works from the live tags, so it finishes the job after an interrupted create or destroy,
    and works when the spec has changed or is gone (then --project names the project). Lists
    what it will delete and asks (typing the environment's name) on a terminal; in CI it
    needs --yes. A protected environment needs --force as well; its databases keep a final
    snapshot. Exit 0 when nothing is left, 1 otherwise.
    """
    from envctl.cli.run import apply
    from envctl.cli.workflow import Planned, header, observe_scope
    from envctl.model.graph import Graph
    from envctl.plan.planner import destroy_plan
    from envctl.render.plan import render_plan

    spec = _spec_or_none(app, env, project)
    project = project or spec.model.project
    protected = bool(spec and spec.model.protected)
    session, ctx, observed = observe_scope(app, project, env, spec)
    if not observed:
        app.say(f"Nothing to destroy: {project}/{env} has no resources.")
        return
    plan = destroy_plan(observed, protected=protected, force=force, project=project, environment=env)
    render_plan(app.console, plan, verb="destroy", header=header(project, env, session))
    if plan.blocked:
        app.abort(f"{project}/{env} is protected: destroy needs --force (nothing was deleted)")
    app.confirm_or_abort(yes, f"Destroy all {len(observed)} resources of {project}/{env}?", expect=env)
    ctx.force = force
    ctx.final_snapshot = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M") if protected \
        else None
    ok = apply(app, Planned(spec, session, ctx, Graph(), observed, plan), parallelism)
    _, _, left = observe_scope(app, project, env, spec)
    if left:
        app.err.print(f"[bold red]{len(left)} resource(s) left:[/]")
        for address, obs in sorted(left.items()):
            app.err.print(f"  {address}  {obs.id}")
        raise Abort(1)
    app.say(f"[green]0 resources left[/] in {project}/{env}.")
    if not ok:
        raise Abort(1)


def _spec_or_none(app: App, env: str, project: str | None):
    """The environment's spec when it exists (for the account guard and protection);
    without one, --project is required."""
    from envctl.spec.errors import SpecError
    from envctl.spec.validate import load, spec_path

    try:
        spec_path(app.options.specs, env)
    except SpecError:
        if project is None:
            app.abort(f"no spec for environment {env!r} in {app.options.specs}/: "
                      "name the project with --project to destroy it from its tags alone")
        return None
    try:
        return load(app.options.specs, env)
    except SpecError as e:
        if project is None:
            app.show_spec_error(e)
            app.abort(f"the spec of {env!r} is invalid; fix it, or pass --project to destroy from tags alone")
        app.warn(f"the spec of {env!r} is invalid; destroying from the tags of project {project!r}")
        return None
