"""The steps diff, create and outputs share: spec → session → desired graph → observed → plan."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

import click

from envctl.cli.app import Abort, App, set_up_done
from envctl.engine import DEFAULT_PARALLELISM

ENV_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?")     # the spec's resource names' rule



def complete_env(ctx: click.Context, param, incomplete: str) -> list[str]:
    """Shell completion of an environment (or --from spec) name: the specs in --specs."""
    from pathlib import Path

    from envctl.spec.validate import environments

    specs = Path(ctx.find_root().params.get("specs") or "specs")
    return [e for e in environments(specs) if e.startswith(incomplete)] if specs.is_dir() else []


# engine/lock.py's DEFAULT_TIMEOUT_S (not imported: it loads botocore, and --help must stay fast)
lock_timeout_option = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=300, show_default=True, metavar="SECONDS",
    envvar="ENVCTL_LOCK_TIMEOUT",
    help="How long to wait for another run's lock on the environment (0: fail at once).")

parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, 64), default=DEFAULT_PARALLELISM, show_default=True,
    envvar="ENVCTL_PARALLELISM", help="Resources worked on at once.")

from_option = click.option(
    "--from", "source", metavar="SPEC", envvar="ENVCTL_FROM", shell_complete=complete_env,
    help="Build ENV from specs/SPEC.yaml (default: specs/ENV.yaml): one spec, many environments.")


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


def utc_now() -> datetime.datetime:
    """The time expiries are set from and compared with (one place, so tests can move it)."""
    return datetime.datetime.now(datetime.timezone.utc)


def load_spec(app: App, env: str, source: str | None = None):
    """The validated spec of environment `env`: specs/ENV.yaml, or specs/SOURCE.yaml with --from
    (one spec, many environments: `create pr-123 --from preview`)."""
    if source is None:
        return app.load_spec(env)
    if not ENV_NAME.fullmatch(env):
        app.abort(f"{env!r} is not a valid environment name: use lowercase letters, digits and dashes, "
                  "starting and ending with a letter or digit (it becomes part of AWS names)")
    return app.load_spec(source, name=env)


def observe(app: App, spec) -> tuple[Any, Any, dict]:
    """(session, ctx, observed) for a validated spec; duplicates and AWS errors end the command."""
    return observe_scope(app, spec.model.project, spec.name, spec)


def observe_scope(app: App, project: str, environment: str, spec=None,
                  region: str | None = None, session=None, for_delete: bool = False) -> tuple[Any, Any, dict]:
    """(session, ctx, observed) of one project's environment; `spec` (when there is one) pins
    the region and the account; `region` is the region without a spec (reap's). `session`: one
    this command already checked (a second look, after a destroy or a wait for the lock), which
    keeps its clients and needs no second account check. `for_delete`: a destroy's view, which
    reads only what deleting needs (Ctx.for_delete)."""
    from envctl.engine.observe import observe as discover
    from envctl.provisioners.base import Ctx

    session = session or app.session(spec, region=region, discovering=True)
    session.scope = (project, environment)
    ctx = Ctx(aws=session, project=project, environment=environment, for_delete=for_delete)
    observation = guarded(app, "discovering the environment", lambda: discover(ctx))
    set_up_done()                       # the clients discovery made live to the end too
    if observation.duplicates:
        for address, ids in observation.duplicates:
            app.err.print(f"[bold red]error:[/] {address} is claimed by {len(ids)} live resources "
                          f"({', '.join(ids)}); delete the extra ones by hand, then run again")
        app.abort(f"{len(observation.duplicates)} address(es) claimed twice")
    return session, ctx, dict(observation.resources)


def plan_for(app: App, env: str, *, source: str | None = None, prune: bool = False,
             allow_replace: bool = False) -> Planned:
    from envctl.expand import expand
    from envctl.plan.planner import plan

    spec = load_spec(app, env, source)
    desired = expand(spec)
    session, ctx, observed = observe(app, spec)
    the_plan = plan(desired, observed, prune=prune, protected=spec.model.protected, allow_replace=allow_replace)
    return Planned(spec, session, ctx, desired, observed, the_plan)


class NothingLeft(Abort):
    """Exit 0: another run did the work while this one waited for the lock. `planned` is the
    fresh (empty) plan, for a --json report."""

    def __init__(self, planned: Planned):
        super().__init__(0)
        self.planned = planned


def recheck(app: App, planned: Planned, again) -> Planned:
    """Plan again after waiting for another run's lock, which may have changed the environment.

    Goes on only with the plan the user saw (`again()` makes the new one): a different plan
    stops with exit 1, no plan left at all ends with exit 0 (NothingLeft).
    """
    fresh = again()
    where = f"{planned.plan.project}/{planned.plan.environment}"
    if fresh.plan.is_empty:
        app.say(f"Nothing left to do: another run changed {where} while this one waited for the lock.")
        raise NothingLeft(Planned(fresh.spec, planned.session, planned.ctx, fresh.desired, fresh.observed,
                                  fresh.plan))
    if fresh.plan.to_json() != planned.plan.to_json():
        app.abort(f"{where} changed since plan (another run changed it while this one waited for the lock); "
                  "run diff again")
    return Planned(fresh.spec, planned.session, planned.ctx, fresh.desired, fresh.observed, fresh.plan)


def guarded(app: App, doing: str, fn):
    """Run an AWS-facing step; an AWS error becomes one sentence and exit 1 (no traceback, even
    with -v: it is not a bug); anything else is a bug and goes on to the last-resort handler."""
    from envctl.aws import errors
    from envctl.aws.session import AwsAccessError
    from envctl.engine.observe import ObserveError

    try:
        return fn()
    except AwsAccessError as e:
        app.abort(str(e))
    except ObserveError as e:
        if isinstance(e.error, AwsAccessError):       # the account check, made while discovery set up
            app.abort(str(e.error))
        if not errors.is_aws_error(e.error):
            # A bug in a kind's discover: the last-resort handler says so. `from None`: e.error's
            # context would be `e`, whose cause is e.error, a cycle rich's traceback never leaves.
            raise e.error from None
        app.abort(f"discovering {e.kind} resources: {errors.describe(e.error)}")
    except Exception as e:  # noqa: BLE001 — classified below; bugs are re-raised
        if errors.is_aws_error(e):
            app.abort(f"{doing}: {errors.describe(e)}")
        raise
