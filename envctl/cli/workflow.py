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
        """Where the plan was made: `acme/qa · eu-north-1 · account 123456789012`."""
        return f"{self.spec.model.project}/{self.spec.name} · {self.session.region} · " \
               f"account {self.session.account_id()}"


def observe(app: App, spec) -> tuple[Any, Any, dict]:
    """(session, ctx, observed) for a validated spec; duplicates and AWS errors end the command."""
    from envctl.engine.observe import observe as discover
    from envctl.provisioners.base import Ctx

    session = app.session(spec)
    ctx = Ctx(aws=session, project=spec.model.project, environment=spec.name)
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

    try:
        return fn()
    except AwsAccessError as e:
        app.abort(str(e))
    except Exception as e:  # noqa: BLE001 — classified below; bugs are re-raised
        if errors.is_aws_error(e):
            app.abort(f"{doing}: {errors.describe(e)}")
        raise
