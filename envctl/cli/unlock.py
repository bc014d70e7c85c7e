"""envctl unlock ENV: break the lock a dead run left on an environment."""
from __future__ import annotations

import os
import time

import click

from envctl.cli import cli
from envctl.cli.app import App
from envctl.cli.workflow import complete_env, from_option


@cli.command()
@click.argument("env", shell_complete=complete_env)
@from_option
@click.option("--project", envvar="ENVCTL_PROJECT",
              help="The project, when the environment's spec has changed or is gone (the region is then "
                   "--region's).")
@click.option("-y", "--yes", is_flag=True, envvar="ENVCTL_YES", help="Break the lock without asking (needed in CI).")
@click.pass_obj
def unlock(app: App, env: str, source: str | None, project: str | None, yes: bool) -> None:
    """Break the lock of environment ENV, left by a create or destroy that died.

    create and destroy hold a lock on the environment while they change it (an item in the
    DynamoDB table envctl-locks of the account and region; ENVCTL_LOCK_TABLE names another).
    A run that was killed leaves it until its lease runs out; this shows who holds it and
    deletes it, asking first on a terminal (in CI it needs --yes). Do it only when that run
    is dead: otherwise two runs change the environment at once. Exit 0 unlocked or not
    locked, 1 otherwise.
    """
    from envctl.cli.workflow import guarded, load_spec
    from envctl.engine import lock as locking

    spec = None
    if project is None:
        spec = load_spec(app, env, source)
        project = spec.model.project
    session = app.session(spec)
    key = f"{project}/{env}"
    table = os.environ.get("ENVCTL_LOCK_TABLE") or locking.DEFAULT_TABLE
    ddb = session.client("dynamodb")

    holder = guarded(app, f"reading the lock of {key}", lambda: locking.read(ddb, key, table))
    if holder is None:
        app.say(f"{key} is not locked.")
        return
    app.say(f"{key} is locked by {holder.describe()}.")
    if holder.expired(time.time()):
        app.say("Its lease has run out: the next create or destroy takes the lock over anyway.")
    app.confirm_or_abort(yes, f"Break the lock of {key}? Only if that run is dead.")
    if guarded(app, f"deleting the lock of {key}", lambda: locking.break_lock(ddb, key, table, token=holder.token)):
        app.say(f"Unlocked {key}.")
        return
    # The item changed since it was read: released by its holder, or taken by another run.
    now = guarded(app, f"reading the lock of {key}", lambda: locking.read(ddb, key, table))
    if now is None:
        app.say(f"{key} is not locked: its holder released it meanwhile.")
        return
    app.abort(f"{key} is now locked by another run, {now.describe()}; nothing was changed "
              "(run unlock again to break that one)")
