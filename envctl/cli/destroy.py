"""envctl destroy ENV: delete everything tagged for the environment, and nothing else."""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App
from envctl.cli.workflow import complete_env, from_option, lock_timeout_option, parallelism_option


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Destroy without asking (needed in CI).")
@click.option("--force", is_flag=True, envvar="ENVCTL_FORCE",
              help="Destroy a protected environment; lift deletion protection on its databases and tables.")
@click.option("--project", envvar="ENVCTL_PROJECT",
              help="The project, when the environment's spec has changed or is gone.")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON",
              help="The outcome as JSON (version 1) on stdout; the plan and progress go to stderr. "
                   "Never asks: needs --yes.")
@parallelism_option
@lock_timeout_option
@click.pass_obj
def destroy(app: App, env: str, source: str | None, yes: bool, force: bool, project: str | None, as_json: bool,
            parallelism: int, lock_timeout: float) -> None:
    """Delete every resource tagged as environment ENV of the project.

    Works from the live tags, so it finishes the job after an interrupted create or destroy,
    and works when the spec has changed or is gone (then --project names the project). Lists
    what it will delete and asks (typing the environment's name) on a terminal; in CI it
    needs --yes. A protected environment (its spec says so, or its resources carry
    envctl:protected) needs --force as well; its databases keep a final snapshot. Exit 0
    when nothing is left, 1 otherwise.

    JSON (version 1): {"version": 1, "command": "destroy", "project", "environment", "region",
    "account", "ok", "interrupted", "elapsed_s", "plan", "resources": [{"address", "action",
    "state", "id", "seconds", "error"}], "counts", "left": [{"address", "id"}]}; printed even
    when a delete failed (exit 1, "ok": false), not when destroy refuses before deleting anything.
    """
    if as_json:
        app.report_json()
    spec = _spec_or_none(app, env, source, project)
    done = run_destroy(app, project or spec.model.project, env, spec, yes=yes, force=force,
                       parallelism=parallelism, lock_timeout=lock_timeout)
    if as_json:
        click.echo(json.dumps(done.to_json(), indent=2))
    if not done.ok:
        raise Abort(1)


@dataclass(frozen=True)
class Destroyed:
    """What a destroy did: its plan, the executor's result (None: nothing was executed) and
    what is still live after it."""

    session: Any
    plan: Any
    result: Any
    left: dict

    @property
    def ok(self) -> bool:
        return (self.result is None or self.result.ok) and not self.left

    def to_json(self) -> dict:
        from envctl.render.result import run_document, unchanged

        outcomes = self.result.outcomes.values() if self.result is not None else unchanged(self.plan)
        left = [{"address": str(a), "id": o.id} for a, o in sorted(self.left.items())]
        return run_document("destroy", self.plan, outcomes, region=self.session.region,
                            account=self.session.account_id(), result=self.result, extra={"left": left})


def destroy_environment(app: App, project: str, env: str, spec, *, yes: bool, force: bool, parallelism: int,
                        found: tuple | None = None, lock_timeout: float = 300) -> Destroyed:
    """Destroy one environment: the body of `envctl destroy`, shared with `envctl reap`.

    `found` is (session, ctx, observed) when the caller has just observed the environment.
    Raises Abort (exit 1) when it refuses, a delete failed or anything is left.
    """
    done = run_destroy(app, project, env, spec, yes=yes, force=force, parallelism=parallelism, found=found,
                       lock_timeout=lock_timeout)
    if not done.ok:
        raise Abort(1)
    return done


def run_destroy(app: App, project: str, env: str, spec, *, yes: bool, force: bool, parallelism: int,
                found: tuple | None = None, lock_timeout: float = 300) -> Destroyed:
    """Destroy one environment and say how it went; raises Abort (exit 1) only when it refuses
    before deleting anything (protected, not confirmed, the lock held by another run)."""
    from envctl.cli.run import apply
    from envctl.cli.workflow import NothingLeft, Planned, header, observe_scope, recheck
    from envctl.plan.planner import destroy_plan
    from envctl.render.plan import render_plan

    session, ctx, observed = found or observe_scope(app, project, env, spec, for_delete=True)
    if not observed:
        app.say(f"Nothing to destroy: {project}/{env} has no resources.")
        return Destroyed(session, destroy_plan({}, project=project, environment=env), None, {})
    protected = is_protected(spec, observed)
    plan = destroy_plan(observed, protected=protected, force=force, project=project, environment=env)
    render_plan(app.console, plan, verb="destroy", header=header(project, env, session))
    if plan.blocked:
        app.abort(f"{project}/{env} is protected: destroy needs --force (nothing was deleted)")
    app.confirm_or_abort(yes, f"Destroy all {len(observed)} resources of {project}/{env}?", expect=env)
    ctx.force = force
    ctx.final_snapshot = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M") if protected \
        else None
    planned = Planned(spec, session, ctx, delete_graph(spec), observed, plan)
    try:
        with app.lock(ctx, "destroy", lock_timeout) as lock:
            if lock.waited:         # another run held it: the environment may have changed since the plan
                planned = recheck(app, planned, lambda: _planned_again(app, planned, protected=protected,
                                                                                   force=force))
            result = apply(app, planned, parallelism)
    except NothingLeft as e:        # another run destroyed it meanwhile
        return Destroyed(session, e.planned.plan, None, {})
    _, _, left = observe_scope(app, project, env, spec, session=session)
    if left:
        app.err.print(f"[bold red]{len(left)} resource(s) left:[/]")
        width = max(len(str(address)) for address in left)
        for address, obs in sorted(left.items()):
            app.err.print(f"  {str(address):<{width}}  {obs.id}", highlight=False)
    else:
        app.say(f"[green]0 resources left[/] in {project}/{env}.")
    return Destroyed(session, planned.plan, result, dict(left))


def delete_graph(spec):
    """What the executor orders deletes by: the spec's graph, reversed (a user goes before what it
    refers to, and no other wait: a role's delete does not wait for every alarm, as the kinds'
    static table would make it). Without a spec (destroy --project), the static table alone.

    Live resources the spec does not name (left from an older spec) are ordered by the kinds'
    table against everything. A spec changed since the environment was built can miss a live
    reference: AWS then refuses the delete for a while (DependencyViolation and the like), and
    the executor retries it until the user is gone.
    """
    from envctl.expand import expand
    from envctl.model.graph import Graph

    return expand(spec) if spec is not None else Graph()


def _planned_again(app: App, planned, *, protected: bool, force: bool):
    """The destroy plan made again, from what is live now (after waiting for the lock)."""
    from envctl.cli.workflow import Planned, observe_scope
    from envctl.plan.planner import destroy_plan

    project, env = planned.ctx.project, planned.ctx.environment
    _, _, observed = observe_scope(app, project, env, planned.spec, session=planned.session, for_delete=True)
    plan = destroy_plan(observed, protected=protected, force=force, project=project, environment=env)
    return Planned(planned.spec, planned.session, planned.ctx, planned.desired, observed, plan)


def is_protected(spec, observed: dict) -> bool:
    """Protected when the spec says so, or (the spec gone or changed) the live tags do."""
    from envctl.model import tags as tagging

    return bool(spec and spec.model.protected) or any(
        o.tags.get(tagging.PROTECTED) == "true" for o in observed.values())


def _spec_or_none(app: App, env: str, source: str | None, project: str | None):
    """The environment's spec when it exists (for the account guard and protection);
    without one, --project is required."""
    from envctl.spec.errors import SpecError
    from envctl.spec.validate import load, spec_path

    try:
        spec_path(app.options.specs, source or env)
    except SpecError as e:
        if source is not None:
            app.show_spec_error(e)
            raise Abort(1)
        if project is None:
            app.abort(f"no spec for environment {env!r} in {app.options.specs}/: "
                      "name the project with --project to destroy it from its tags alone")
        return None
    try:
        return load(app.options.specs, source or env, env if source else None)
    except SpecError as e:
        if project is None:
            app.show_spec_error(e)
            app.abort(f"the spec of {env!r} is invalid; fix it, or pass --project to destroy from tags alone")
        app.warn(f"the spec of {env!r} is invalid; destroying from the tags of project {project!r}")
        return None
