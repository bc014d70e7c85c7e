"""envctl reap: destroy every environment whose expiry (envctl:expires) has passed.

For a scheduled CI job. Each expired environment is observed in full and destroyed through
the same code as `envctl destroy`, never a protected one. An environment is protected, and
reap refuses it, when any of these says so:

- its spec: specs/ENV.yaml of the same project exists and has `protected: true` (or cannot
  be read, so that protection cannot be ruled out);
- its live tags: a resource carries `envctl:protected` (create puts it on every resource
  of a protected environment);
- its live resources: a database or table has deletion protection on (destroy would need
  --force, and reap never forces).
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App
from envctl.cli.workflow import lock_timeout_option, parallelism_option

DESTROYED, WOULD_DESTROY, REFUSED, SKIPPED, FAILED = "destroyed", "would destroy", "refused", "skipped", "failed"


@dataclass
class Verdict:
    """What reap does with one expired environment, and why."""

    project: str
    environment: str
    resources: int
    expires: str
    action: str
    reason: str | None = None
    spec: object = None
    found: tuple | None = None          # (session, ctx, observed) of the environment

    def to_json(self) -> dict:
        return {"project": self.project, "environment": self.environment, "resources": self.resources,
                "expires": self.expires, "action": self.action, "reason": self.reason}


@cli.command()
@click.option("--dry-run", is_flag=True, envvar="ENVCTL_DRY_RUN", help="Say what would be destroyed; change nothing.")
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Destroy without asking (needed in CI).")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON",
              help="The outcome as JSON (version 1) on stdout; plans and progress go to stderr.")
@parallelism_option
@lock_timeout_option
@click.pass_obj
def reap(app: App, dry_run: bool, yes: bool, as_json: bool, parallelism: int, lock_timeout: float) -> None:
    """Destroy every environment in the account and region (--region, default: the specs')
    whose expiry has passed.

    An environment gets an expiry from a ttl (`ttl:` in its spec or `create --ttl`). Protected
    environments are refused (their spec, an envctl:protected tag, or deletion protection on
    a database or table says so). Exit 0 when every expired environment was destroyed (or
    with --dry-run), 1 when one was refused or failed, or on error.

    JSON: {"version": 1, "region", "account", "now", "dry_run", "environments": [{"project",
    "environment", "resources", "expires", "action", "reason"}]}; action is one of destroyed,
    would destroy, refused, skipped (renewed meanwhile), failed.
    """
    from envctl.cli.destroy import destroy_environment
    from envctl.cli.inventory import _specs_region
    from envctl.cli.workflow import guarded, utc_now
    from envctl.engine.observe import environments
    from envctl.model import tags as tagging

    if as_json:
        app.report_json()              # stdout holds the JSON document only; never prompts
    session = app.session(None, region=_specs_region(app))
    now = utc_now()
    found = guarded(app, "listing environments", lambda: environments(session))
    verdicts = []
    for e in found:
        when = parse_time(e.expires) if e.expires else None
        if e.expires and when is None:
            app.warn(f"{e.project}/{e.environment}: unreadable {tagging.EXPIRES} {e.expires!r}; left alone")
        if when is not None and when <= now:
            verdicts.append(_judge(app, e, session.region, now))

    where = f"{session.region} (account {session.account_id()})"
    if not verdicts:
        if as_json:
            _print_json(session, now, dry_run, [])
        else:
            app.say(f"No expired environments in {where}.")
        return
    if not as_json:
        app.say(f"Expired environments in {where}, now {now.strftime(tagging.TIME_FORMAT)}:")
        app.console.print(_table(verdicts), highlight=False, markup=False)
    doomed = [v for v in verdicts if v.action == WOULD_DESTROY]
    if not dry_run and doomed:
        app.confirm_or_abort(yes, f"Destroy {len(doomed)} expired environment(s)?")
        for v in doomed:
            try:
                destroy_environment(app, v.project, v.environment, v.spec, yes=True, force=False,
                                    parallelism=parallelism, found=v.found, lock_timeout=lock_timeout)
                v.action = DESTROYED
            except Abort as e:
                if e.exit_code == 0:    # another run destroyed it while this one waited for the lock
                    v.action = DESTROYED
                else:
                    v.action, v.reason = FAILED, "destroy failed (see above)"
    if as_json:
        _print_json(session, now, dry_run, verdicts)
    else:
        counts = {a: sum(v.action == a for v in verdicts) for a in (DESTROYED, WOULD_DESTROY, REFUSED, SKIPPED,
                                                                     FAILED)}
        app.say("Reap: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n) + ".")
    if not dry_run and any(v.action in (REFUSED, FAILED) for v in verdicts):
        raise Abort(1)


def parse_time(text: str) -> datetime.datetime | None:
    """An envctl:expires value (2026-05-01T12:00Z; other ISO 8601 forms of a hand-edited tag
    too) as an aware UTC time; None when it is not a time."""
    from envctl.model import tags as tagging

    try:
        when = datetime.datetime.strptime(text, tagging.TIME_FORMAT)
    except ValueError:
        try:
            when = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return when.replace(tzinfo=datetime.timezone.utc) if when.tzinfo is None else when


# ------------------------------------------------------------------ helpers

def _judge(app: App, summary, region: str, now: datetime.datetime) -> Verdict:
    """Observe an expired environment (as a destroy does) and decide: destroy, refuse, or skip."""
    from envctl.cli.workflow import observe_scope
    from envctl.model import tags as tagging

    v = Verdict(summary.project, summary.environment, summary.resources, summary.expires, WOULD_DESTROY)
    try:
        v.found = observe_scope(app, v.project, v.environment, None, region=region, for_delete=True)
    except Abort:
        v.action, v.reason = FAILED, "cannot observe it (see above)"
        return v
    observed = v.found[2]
    v.resources = len(observed)
    # The environment expires with its latest expiry; one that cannot be read keeps it alive.
    expiries = [parse_time(o.tags[tagging.EXPIRES]) for o in observed.values() if tagging.EXPIRES in o.tags]
    if not expiries or None in expiries or max(expiries) > now:
        v.action, v.reason = SKIPPED, "renewed since it was listed"
        return v
    v.spec, problem = _spec_of(app, v.project, v.environment)
    v.reason = problem or _protection(v.spec, observed)
    if v.reason:
        v.action = REFUSED
    return v


def _spec_of(app: App, project: str, environment: str):
    """(spec, None) for specs/ENV.yaml of this project; (None, None) when there is none (a
    preview made --from another spec, another project's); (None, why) when it cannot be read."""
    from envctl.spec.errors import SpecError
    from envctl.spec.loader import load_environment
    from envctl.spec.validate import load, spec_path

    try:
        path = spec_path(app.options.specs, environment)
    except SpecError:
        return None, None
    try:
        if load_environment(path).data.get("project") != project:
            return None, None
        return load(app.options.specs, environment), None
    except SpecError:
        return None, f"protected unless shown otherwise: its spec {path} is invalid"


def _protection(spec, observed: dict) -> str | None:
    from envctl.model import tags as tagging

    if spec is not None and spec.model.protected:
        return f"protected: its spec {spec.file} says so"
    tagged = sorted(str(a) for a, o in observed.items() if o.tags.get(tagging.PROTECTED) == "true")
    if tagged:
        return f"protected: {tagged[0]} is tagged {tagging.PROTECTED}"
    guarded = sorted(str(a) for a, o in observed.items() if getattr(o.props, "deletion_protection", False))
    if guarded:
        return f"protected: {guarded[0]} has deletion protection on"
    return None


def _table(verdicts: list[Verdict]) -> str:
    from envctl.cli.inventory import _aligned

    rows = [("PROJECT", "ENVIRONMENT", "RESOURCES", "EXPIRED", "ACTION")]
    rows += [(v.project, v.environment, str(v.resources), v.expires,
              v.action + (f": {v.reason}" if v.reason else "")) for v in verdicts]
    return _aligned(rows)


def _print_json(session, now: datetime.datetime, dry_run: bool, verdicts: list[Verdict]) -> None:
    from envctl.model import tags as tagging

    click.echo(json.dumps({"version": 1, "region": session.region, "account": session.account_id(),
                           "now": now.strftime(tagging.TIME_FORMAT), "dry_run": dry_run,
                           "environments": [v.to_json() for v in verdicts]}, indent=2))
