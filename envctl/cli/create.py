"""envctl create ENV: make AWS match the spec, showing the plan first."""
from __future__ import annotations

import click

from envctl.cli import cli
from envctl.cli.app import App
from envctl.cli.workflow import complete_env, from_option, lock_timeout_option, parallelism_option


def _check_ttl(ctx, param, value: str | None) -> str | None:
    from envctl.spec.models import ttl_seconds

    if value is not None:
        try:
            ttl_seconds(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("--ttl", metavar="DURATION", callback=_check_ttl, envvar="ENVCTL_TTL",
              help="Lifetime (e.g. 8h, 3d; m, h, d, w): the environment expires this long after this create, "
                   "and `envctl reap` destroys it then. Default: the spec's ttl:.")
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Apply without asking (needed in CI).")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON",
              help="The outcome as JSON (version 1) on stdout; the plan and progress go to stderr. "
                   "Never asks: changes need --yes.")
@parallelism_option
@click.option("--prune", is_flag=True, envvar="ENVCTL_PRUNE",
              help="Also delete resources of the environment that the spec no longer holds.")
@click.option("--allow-replace", is_flag=True, envvar="ENVCTL_ALLOW_REPLACE",
              help="Allow replacing stateful resources (databases, tables, buckets).")
@lock_timeout_option
@click.pass_obj
def create(app: App, env: str, source: str | None, ttl: str | None, yes: bool, as_json: bool, parallelism: int,
           prune: bool, allow_replace: bool, lock_timeout: float) -> None:
    """Create or update the environment ENV so that AWS matches specs/ENV.yaml.

    Idempotent: run twice, the second run changes nothing. With a ttl (--ttl or the spec's
    ttl:), every resource carries the expiry `envctl:expires`, renewed by each create. The
    spec is the truth: without a ttl create takes `envctl:expires` off, and `envctl:protected`
    once the spec is no longer protected. Exit 0 done, 1 error or a resource failed.

    JSON (version 1): {"version": 1, "command": "create", "project", "environment", "region",
    "account", "ok", "interrupted", "elapsed_s", "plan", "resources": [{"address", "action",
    "state", "id", "seconds", "error"}], "counts", "expires"}; printed even when a resource
    failed (exit 1, "ok": false), not when create refuses before changing anything.
    """
    from envctl.cli.run import apply
    from envctl.cli.workflow import NothingLeft, plan_for, recheck
    from envctl.render.plan import render_plan

    if as_json:
        app.report_json()
    planned = plan_for(app, env, source=source, prune=prune, allow_replace=allow_replace)
    model = planned.spec.model
    ttl = ttl or model.ttl
    if ttl and model.protected:
        app.abort(f"{model.project}/{env} is protected: a protected environment cannot have a ttl")
    planned.ctx.lifecycle_tags, planned.ctx.lifecycle_removed = _lifecycle_tags(ttl, model.protected)
    if not (app.options.quiet and yes) or planned.plan.blocked:     # -q: only when asking, or refusing
        render_plan(app.console, planned.plan, verbose=app.options.verbose > 0, header=planned.header)
    where = f"{model.project}/{env}"
    if planned.plan.is_empty:
        untagged = {}
        if _untouched(planned):         # a renewed expiry changes tags: under the lock too
            with app.lock(planned.ctx, "create", lock_timeout, source=source):
                untagged = _renew(app, planned, parallelism)
        _finish(app, planned, None, untagged)
        return
    if planned.plan.blocked:
        app.abort(f"{len(planned.plan.blocked)} change(s) blocked (see above); nothing was changed")
    app.confirm_or_abort(yes, f"Apply these changes to {where}?")
    try:
        with app.lock(planned.ctx, "create", lock_timeout, source=source) as lock:
            if lock.waited:         # another run held it: the environment may have changed since the plan
                planned = recheck(app, planned, lambda: plan_for(app, env, source=source, prune=prune,
                                                                 allow_replace=allow_replace))
            result = apply(app, planned, parallelism)
            untagged = _renew(app, planned, parallelism) if result.ok else {}
    except NothingLeft as e:        # another run did it: exit 0, with the (empty) plan found
        _finish(app, e.planned, None, {})
        raise
    _finish(app, planned, result, untagged)


def _finish(app: App, planned, result, untagged: dict) -> None:
    """The end of a create: the JSON document (--json), then exit 1 if a change failed or a
    resource could not be tagged. `result`: the executor's, None when nothing was executed;
    `untagged`: address → why, from _renew."""
    import dataclasses
    import json

    from envctl.engine.executor import State
    from envctl.model import tags as tagging
    from envctl.render.result import run_document, unchanged

    where = f"{planned.plan.project}/{planned.plan.environment}"
    if app.json:
        outcomes = list(result.outcomes.values()) if result is not None else unchanged(planned.plan)
        # A resource whose lifecycle tags could not be set did not become what the spec says.
        outcomes = [dataclasses.replace(o, state=State.FAILED, message=f"tagging {o.address}: {untagged[o.address]}")
                    if o.address in untagged else o for o in outcomes]
        document = run_document("create", planned.plan, outcomes, region=planned.session.region,
                                account=planned.session.account_id(), result=result,
                                extra={"expires": planned.ctx.lifecycle_tags.get(tagging.EXPIRES)})
        click.echo(json.dumps(document, indent=2))
    if result is not None and not result.ok:
        app.abort(f"not every change to {where} was made (see above); "
                  "once the cause is fixed, run create again to finish")
    if untagged:
        app.abort(f"{len(untagged)} resource(s) of {where} could not be tagged")


def _lifecycle_tags(ttl: str | None, protected: bool) -> tuple[dict[str, str], frozenset[str]]:
    """(tags to set, tags to remove): envctl:expires = now + ttl (UTC, minutes), removed without
    a ttl; envctl:protected on a protected environment, removed from one that no longer is."""
    import datetime

    from envctl.cli.workflow import utc_now
    from envctl.model import tags as tagging
    from envctl.spec.models import ttl_seconds

    out = {}
    if ttl:
        expires = utc_now() + datetime.timedelta(seconds=ttl_seconds(ttl))
        out[tagging.EXPIRES] = expires.strftime(tagging.TIME_FORMAT)
    if protected:
        out[tagging.PROTECTED] = "true"
    return out, frozenset({tagging.EXPIRES, tagging.PROTECTED} - set(out))


def _untouched(planned) -> list:
    """The live resources the plan leaves alone (unchanged, orphaned, blocked) whose lifecycle
    tags differ from this run's: what `_renew` tags."""
    from envctl.engine.lifecycle import stale
    from envctl.plan.changes import Action

    return stale(planned.ctx, [planned.observed[c.address] for c in planned.plan
                               if (c.action in (Action.NOOP, Action.ORPHAN) or c.blocked)
                               and c.address in planned.observed])


def _renew(app: App, planned, parallelism: int) -> dict:
    """Put this run's lifecycle tags (a renewed expiry) on the live resources the plan did not
    touch, and take off those the spec no longer calls for; the executor did both on those it
    created or updated. Says what it did; returns the resources it could not tag (address → why)."""
    from rich.markup import escape

    from envctl.cli.workflow import guarded
    from envctl.engine.lifecycle import renew
    from envctl.model import tags as tagging

    resources = _untouched(planned)
    if not resources:
        return {}
    result = guarded(app, "renewing lifecycle tags", lambda: renew(planned.ctx, resources, parallelism=parallelism))
    where = f"{planned.plan.project}/{planned.plan.environment}"
    wanted = planned.ctx.lifecycle_tags
    done = set(result.renewed)

    def count(key: str) -> int:
        """How many of the tagged resources had `key` otherwise than this run wants."""
        return sum(o.address in done and o.tags.get(key) != wanted.get(key) for o in resources)

    if count(tagging.EXPIRES):
        app.say(f"Renewed the expiry of {count(tagging.EXPIRES)} resource(s) of {where} to {wanted[tagging.EXPIRES]}."
                if tagging.EXPIRES in wanted else
                f"Removed the expiry ({tagging.EXPIRES}) of {count(tagging.EXPIRES)} resource(s) of {where}: "
                "it has no ttl now.")
    if count(tagging.PROTECTED):
        app.say(f"Marked {count(tagging.PROTECTED)} resource(s) of {where} as protected ({tagging.PROTECTED})."
                if tagging.PROTECTED in wanted else
                f"Removed {tagging.PROTECTED} from {count(tagging.PROTECTED)} resource(s) of {where}: "
                "its spec no longer says protected.")
    for address, why in result.failed.items():
        app.err.print(f"[bold red]error:[/] tagging {address}: {escape(why)}", emoji=False)
    return dict(result.failed)
