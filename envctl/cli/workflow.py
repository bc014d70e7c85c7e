"""The steps diff, create and outputs share: spec → session → desired graph → observed → plan."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envctl.cli.app import App


@dataclass
class Planned:
    spec: Any
    session: Any
    ctx: Any
    desired: Any
    observed: dict
    plan: Any

    @property
    def header(self) -> str:
        return header(self.plan.project, self.plan.environment, self.session)


def header(project: str, environment: str, session) -> str:
    """Where a plan was made: `acme/qa · eu-north-1 · account 123456789012`."""
    return f"{project}/{environment} · {session.region} · account {session.account_id()}"


def observe(app: App, spec) -> tuple[Any, Any, dict]:
    """(session, ctx, observed) for a validated spec; duplicates and AWS errors end the command."""
    return observe_scope(app, spec.model.project, spec.name, spec)


def observe_scope(app: App, project: str, environment: str, spec=None) -> tuple[Any, Any, dict]:
    """(session, ctx, observed) of one project's environment; `spec` (when there is one) pins
    the region and the account."""
    from envctl.engine.observe import observe as discover
    from envctl.provisioners.base import Ctx

    session = app.session(spec)
    session.scope = (project, environment)
    ctx = Ctx(aws=session, project=project, environment=environment)
    observation = guarded(app, "discovering the environment", lambda: discover(ctx))
    if observation.duplicates:
        for address, ids in observation.duplicates:
            app.err.print(f"[bold red]error:[/] {address} is claimed by {len(ids)} live resources "
                          f"({', '.join(ids)}); delete the extra ones by hand, then run again")
        app.abort(f"{len(observation.duplicates)} address(es) claimed twice")
    return session, ctx, dict(observation.resources)


def plan_for(app: App, env: str, *, prune: bool = False, allow_replace: bool = False) -> Planned:
    from envctl.expand import expand
    from envctl.plan.planner import plan

    spec = app.load_spec(env)
    desired = expand(spec)
    session, ctx, observed = observe(app, spec)
    the_plan = plan(desired, observed, prune=prune, protected=spec.model.protected, allow_replace=allow_replace)
    return Planned(spec, session, ctx, desired, observed, the_plan)


def guarded(app: App, doing: str, fn):
    """Run an AWS-facing step; an AWS error becomes one sentence and exit 1 (traceback with -v)."""
    from envctl.aws import errors
    from envctl.aws.session import AwsAccessError
    from envctl.engine.observe import ObserveError

    try:
        return fn()
    except AwsAccessError as e:
        app.abort(str(e))
    except ObserveError as e:
        app.abort(f"{e}" if errors.is_aws_error(e.error) else f"{doing}: {e}")
    except Exception as e:  # noqa: BLE001 — classified below; bugs are re-raised
        if errors.is_aws_error(e):
            app.abort(f"{doing}: {errors.describe(e)}")
        raise
