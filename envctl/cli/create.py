"""envctl create ENV: make AWS match the spec, showing the plan first."""
from __future__ import annotations

import click

from envctl.cli import cli
from envctl.cli.app import App
from envctl.cli.workflow import complete_env, from_option, lock_timeout_option


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
@click.option("--parallelism", type=click.IntRange(1, 64), default=10, show_default=True,
              envvar="ENVCTL_PARALLELISM", help="Resources worked on at once.")
@click.option("--prune", is_flag=True, envvar="ENVCTL_PRUNE",
              help="Also delete resources of the environment that the spec no longer holds.")
@click.option("--allow-replace", is_flag=True, envvar="ENVCTL_ALLOW_REPLACE",
              help="Allow replacing stateful resources (databases, tables, buckets).")
@lock_timeout_option
@click.pass_obj
def create(app: App, env: str, source: str | None, ttl: str | None, yes: bool, parallelism: int, prune: bool,
           allow_replace: bool, lock_timeout: float) -> None:
    """Create or update the environment ENV so that AWS matches specs/ENV.yaml.

    Idempotent: run twice, the second run changes nothing. With a ttl (--ttl or the spec's
    ttl:), every resource carries the expiry `envctl:expires`, renewed by each create. Exit 0
    done, 1 error or a resource failed.
    """
    from envctl.cli.run import apply
    from envctl.cli.workflow import plan_for, recheck
    from envctl.render.plan import render_plan

    planned = plan_for(app, env, source=source, prune=prune, allow_replace=allow_replace)
    model = planned.spec.model
    ttl = ttl or model.ttl
    if ttl and model.protected:
        app.abort(f"{model.project}/{env} is protected: a protected environment cannot have a ttl")
    planned.ctx.lifecycle_tags = _lifecycle_tags(ttl, model.protected)
    if not (app.options.quiet and yes) or planned.plan.blocked:     # -q: only when asking, or refusing
        render_plan(app.console, planned.plan, verbose=app.options.verbose > 0, header=planned.header)
    if planned.plan.is_empty:
        if _untouched(planned):         # a renewed expiry changes tags: under the lock too
            with app.lock(planned.ctx, "create", lock_timeout, source=source):
                _renew(app, planned, parallelism)
        return
    if planned.plan.blocked:
        app.abort(f"{len(planned.plan.blocked)} change(s) blocked (see above); nothing was changed")
    app.confirm_or_abort(yes, f"Apply these changes to {model.project}/{env}?")
    with app.lock(planned.ctx, "create", lock_timeout, source=source) as lock:
        if lock.waited:         # another run held it: the environment may have changed since the plan
            planned = recheck(app, planned, lambda: plan_for(app, env, source=source, prune=prune,
                                                             allow_replace=allow_replace))
        if not apply(app, planned, parallelism):
            app.abort(f"not every change to {model.project}/{env} was made (see above); "
                      "once the cause is fixed, run create again to finish")
        _renew(app, planned, parallelism)


def _lifecycle_tags(ttl: str | None, protected: bool) -> dict[str, str]:
    """envctl:expires = now + ttl (UTC, minutes); envctl:protected on a protected environment."""
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
    return out


def _untouched(planned) -> list:
    """The live resources the plan leaves alone (unchanged, orphaned, blocked) whose lifecycle
    tags differ from this run's: what `_renew` tags."""
    from envctl.engine.lifecycle import stale
    from envctl.plan.changes import Action

    return stale(planned.ctx, [planned.observed[c.address] for c in planned.plan
                               if (c.action in (Action.NOOP, Action.ORPHAN) or c.blocked)
                               and c.address in planned.observed])


def _renew(app: App, planned, parallelism: int) -> None:
    """Put this run's lifecycle tags (a renewed expiry) on the live resources the plan did not
    touch; the executor put them on those it created or updated."""
    from rich.markup import escape

    from envctl.cli.workflow import guarded
    from envctl.engine.lifecycle import renew
    from envctl.model import tags as tagging

    resources = _untouched(planned)
    if not resources:
        return
    result = guarded(app, "renewing lifecycle tags", lambda: renew(planned.ctx, resources, parallelism=parallelism))
    where = f"{planned.plan.project}/{planned.plan.environment}"
    if result.renewed:
        expires = planned.ctx.lifecycle_tags.get(tagging.EXPIRES)
        app.say(f"Renewed the expiry of {len(result.renewed)} resource(s) of {where} to {expires}." if expires
                else f"Marked {len(result.renewed)} resource(s) of {where} as protected ({tagging.PROTECTED}).")
    if result.failed:
        for address, why in result.failed.items():
            app.err.print(f"[bold red]error:[/] tagging {address}: {escape(why)}", emoji=False)
        app.abort(f"{len(result.failed)} resource(s) of {where} could not be tagged")
