"""envctl list and envctl status ENV: what exists, found by tags."""
from __future__ import annotations

import json

import click

from envctl.cli import cli
from envctl.cli.app import App
from envctl.cli.workflow import complete_env, from_option


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def list_(app: App, as_json: bool) -> None:
    """The environments that exist in the account and region (--region; default: the specs'
    region, else the AWS configuration's), with resource counts, creation time and expiry.

    JSON: {"version": 1, "region", "environments": [{"project", "environment", "resources",
    "created", "expires"}]}
    """
    from envctl.cli.workflow import guarded
    from envctl.engine.observe import environments

    session = app.session(None, region=_specs_region(app))
    found = guarded(app, "listing environments", lambda: environments(session))
    if as_json:
        click.echo(json.dumps({"version": 1, "region": session.region, "environments": [
            {"project": e.project, "environment": e.environment, "resources": e.resources,
             "created": e.created, "expires": e.expires} for e in found]}, indent=2))
        return
    if not found:
        app.say(f"No environments in {session.region} (account {session.account_id()}).")
        return
    rows = [("PROJECT", "ENVIRONMENT", "RESOURCES", "CREATED", "EXPIRES")]
    rows += [(e.project, e.environment, str(e.resources), e.created or "-", e.expires or "-") for e in found]
    app.console.print(_aligned(rows), highlight=False)


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def status(app: App, env: str, source: str | None, as_json: bool) -> None:
    """The live inventory of ENV: every resource, its id, its state, and whether it matches
    the spec (in sync, drifted, missing, not in spec). Exit 0; 1 on error."""
    from envctl.cli.workflow import plan_for
    from envctl.plan.changes import Action

    planned = plan_for(app, env, source=source)
    words = {Action.NOOP: "in sync", Action.UPDATE: "drifted", Action.REPLACE: "drifted", Action.CREATE: "missing",
             Action.ORPHAN: "not in spec", Action.DELETE: "not in spec"}
    entries = []
    for change in planned.plan:
        live = planned.observed.get(change.address)
        entries.append({"address": str(change.address), "id": live.id if live else None,
                        "state": live.status if live else "absent", "spec": words[change.action],
                        "differs": [c.path for c in change.changes] if change.action in
                        (Action.UPDATE, Action.REPLACE) else []})
    if as_json:
        click.echo(json.dumps({"version": 1, "project": planned.plan.project, "environment": env,
                               "resources": entries}, indent=2))
        return
    app.console.print(planned.header, style="bold")
    rows = [("RESOURCE", "ID", "STATE", "SPEC")]
    rows += [(e["address"], e["id"] or "-", e["state"],
              e["spec"] + (f" ({', '.join(e['differs'])})" if e["differs"] else "")) for e in entries]
    app.console.print(_aligned(rows), highlight=False)


def _specs_region(app: App) -> str | None:
    """The region the specs name (when --region is not given): where their environments live."""
    from envctl.spec.errors import SpecError
    from envctl.spec.validate import environments, load

    if not app.options.specs.is_dir():
        return None
    for env in environments(app.options.specs):
        try:
            return load(app.options.specs, env).model.region
        except SpecError:
            continue
    return None


def _aligned(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
