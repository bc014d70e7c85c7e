"""envctl sandbox start|stop|status: an emulated AWS on loopback, no account needed."""
from __future__ import annotations

import click

from envctl.cli import cli
from envctl.cli.app import App


@cli.group()
def sandbox() -> None:
    """Run a local emulated AWS (moto) for trying envctl without an account.

    \b
    envctl sandbox start
    envctl --sandbox create qa --yes
    envctl sandbox stop
    """


@sandbox.command()
@click.option("--port", type=int, default=4599, show_default=True, envvar="ENVCTL_SANDBOX_PORT")
@click.pass_obj
def start(app: App, port: int) -> None:
    """Start the sandbox in the background (a no-op when it runs already)."""
    from envctl.sandbox import control

    try:
        s = control.start(port)
    except control.SandboxError as e:
        app.abort(str(e))
    app.say(f"sandbox running at {s.endpoint} (pid {s.pid}); use [bold]envctl --sandbox …[/] "
            "or ENVCTL_SANDBOX=1")


@sandbox.command()
@click.pass_obj
def stop(app: App) -> None:
    """Stop the sandbox; everything in it is forgotten."""
    from envctl.sandbox import control

    app.say("sandbox stopped" if control.stop() else "the sandbox was not running")


@sandbox.command()
@click.pass_obj
def status(app: App) -> None:
    """Say whether the sandbox runs (exit 0) or not (exit 3)."""
    from envctl.sandbox import control

    s = control.state()
    if s is None:
        app.say("the sandbox is not running")
        raise click.exceptions.Exit(3)
    app.say(f"sandbox running at {s.endpoint} (pid {s.pid})")
