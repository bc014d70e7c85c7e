"""App: the one object a command gets. It owns the Console, the options, and abort()."""
from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape


class Abort(click.exceptions.Exit):
    """Leave with a message already printed and an exit code."""


@dataclass
class Options:
    specs: Path = Path("specs")
    verbose: int = 0
    quiet: bool = False
    color: bool | None = None
    interactive: bool | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False
    rate_limit: bool = True


# main() sets this: envctl is its own process, which runs one command and exits. Tests and
# programs that run commands inside their own process leave it False.
ONE_COMMAND_PROCESS = False


def set_up_done() -> None:
    """What the run has made so far (modules, botocore's session and clients, pydantic's
    validators, the observed environment) lives until the process exits: move it out of the
    garbage collector's sight (gc.freeze), so that the full collections later in the run, which
    stop every thread, skip those 100,000-odd objects. Called once the session is checked and
    again after discovery, which builds the clients (a full collection during apply took 35-40
    ms before). main() keeps the collector off until then: start-up makes long-lived objects
    and next to no garbage, and the collector's passes over them cost 50-60 ms a command. Only in
    envctl's own process: elsewhere, garbage frozen with them would never be freed."""
    if ONE_COMMAND_PROCESS:
        gc.freeze()
        gc.enable()


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


class App:
    def __init__(self, options: Options):
        self.options = options
        no_color = options.color is False or (options.color is None and "NO_COLOR" in os.environ)
        self.console = Console(no_color=no_color, force_terminal=True if options.color else None,
                               highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, no_color=no_color, force_terminal=True if options.color else None,
                           highlight=False, soft_wrap=True)
        self.json = False           # --json: stdout is the JSON document's alone (see report_json)

    def report_json(self) -> None:
        """--json: stdout holds the JSON document alone, so what people read (plans, progress,
        summaries) goes to stderr, and envctl never asks, since a prompt would land on stdout:
        where it would ask, it needs --yes."""
        self.json = True
        self.console = self.err

    # ---- interaction
    @property
    def interactive(self) -> bool:
        """Prompts only on a terminal and never in CI; --interactive/--no-interactive decide otherwise."""
        if self.options.interactive is not None:
            return self.options.interactive
        return sys.stdin.isatty() and sys.stdout.isatty() and not running_in_ci()

    def confirm_or_abort(self, yes: bool, question: str, expect: str | None = None) -> None:
        """Go on with --yes; ask on a terminal; otherwise stop with exit 1 saying why."""
        if yes:
            return
        if self.json:
            self.abort("--json never prompts: pass --yes to go ahead")
        if not self.interactive:
            self.abort("not running on a terminal (or CI is set), so envctl will not prompt: "
                       "pass --yes to go ahead")
        if expect is None:
            if not click.confirm(question, default=False):
                self.abort("cancelled, nothing changed")
        else:
            answer = click.prompt(f"{question} Type {expect!r} to confirm", default="", show_default=False)
            if answer.strip() != expect:
                self.abort("cancelled, nothing changed")

    # ---- output
    def say(self, *args, **kwargs) -> None:
        if not self.options.quiet:
            self.console.print(*args, **kwargs)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        self.err.print(f"[bold red]error:[/] {escape(message)}", emoji=False)
        raise Abort(code)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}", emoji=False)

    # ---- the layers below
    def load_spec(self, env: str, name: str | None = None):
        from envctl.spec.errors import SpecError
        from envctl.spec.validate import load

        try:
            return load(self.options.specs, env, name)
        except SpecError as e:
            self.show_spec_error(e)
            raise Abort(1)

    def show_spec_error(self, error) -> None:
        for problem in error.problems:
            # The problem is the user's text: no markup or :emoji: codes in it (a tag key "envctl:x:").
            self.err.print(f"[bold red]error:[/] {escape(str(problem))}", markup=True, highlight=False, emoji=False)

    def session(self, spec=None, region: str | None = None, *, discovering: bool = False):
        """An AWS session for `spec`; refuses, before any other call, a foreign account.

        `discovering`: the caller discovers at once, and calls set_up_done() after that. The
        account check then runs while discovery sets up (AwsSession.check_account_meanwhile);
        its refusal comes from the first client asked for, as an AwsAccessError (guarded()
        says it).
        """
        from envctl.aws.session import AwsAccessError, AwsOptions, AwsSession

        opts = self.options
        access_key = secret_key = None
        endpoint = opts.endpoint_url
        if opts.sandbox:
            from envctl.sandbox import control

            endpoint = control.endpoint_or_none()
            if endpoint is None:
                self.abort("the sandbox is not running: start it with `envctl sandbox start`")
            access_key = secret_key = "sandbox"
        default_region = region or (spec.model.region if spec else None) or os.environ.get("AWS_DEFAULT_REGION") \
            or os.environ.get("AWS_REGION") or "us-east-1"
        try:
            session = AwsSession(AwsOptions(profile=opts.profile, region=opts.region, endpoint_url=endpoint,
                                            access_key=access_key, secret_key=secret_key,
                                            rate_limit=opts.rate_limit), default_region)
            if spec is not None:
                pinned_at = "{}:{}".format(*spec.document.mark(("account",)))
                if discovering:
                    session.check_account_meanwhile(spec.model.account, pinned_at)
                else:
                    session.check_account(spec.model.account, pinned_at)
                session.scope = (spec.model.project, spec.name)
        except AwsAccessError as e:
            self.abort(str(e))
        if not discovering:
            set_up_done()
        return session

    @contextmanager
    def lock(self, ctx, command: str, timeout: float, *, source: str | None = None):
        """Hold the environment's lock (engine/lock.py) around a block that changes it.

        Waits up to `timeout` seconds for another run's lock, saying once who holds it, then
        stops with exit 1 naming the holder. The lock is released on the way out, however
        the block ends (errors, Ctrl-C and SIGTERM, which CI sends to a cancelled job,
        included). `source`: the --from spec, for the `envctl unlock` the message suggests.
        Table: ENVCTL_LOCK_TABLE, else envctl-locks.
        """
        import signal
        import threading

        from envctl.aws import errors
        from envctl.engine import lock as locking

        where = f"{ctx.project}/{ctx.environment}"
        unlock = f"envctl unlock {ctx.environment}" + (f" --from {source}" if source else "")

        def on_event(event) -> None:
            if isinstance(event, locking.LockWaiting):
                if event.timeout > 0 and not self.options.quiet:
                    self.err.print(f"waiting for the lock of {escape(where)}, held by "
                                   f"{escape(event.holder.describe())}; giving up after {event.timeout:g}s "
                                   "(--lock-timeout)", emoji=False)
            elif isinstance(event, locking.LockTakenOver):
                self.warn(f"took over the lock of {where} from {event.previous.describe()}: its lease had "
                          "run out (that run ended without releasing it)")
            elif isinstance(event, locking.LockLost):
                by = f" (now held by {event.now_held_by.describe()})" if event.now_held_by else ""
                self.warn(f"this run lost the lock of {where}{by}: it was broken with `envctl unlock` or its "
                          "lease ran out; another run may be changing the environment too")
            elif isinstance(event, locking.LockNotReleased):
                self.warn(f"could not release the lock of {where} ({event.reason}); it frees itself when its "
                          f"lease runs out, or run `{unlock}`")

        table = os.environ.get("ENVCTL_LOCK_TABLE") or locking.DEFAULT_TABLE
        held = locking.EnvironmentLock(ctx.client("dynamodb"), ctx.project, ctx.environment, command=command,
                                       table=table, on_event=on_event)

        def terminated(signum, frame):
            self.err.print(f"terminated: stopping, and releasing the lock of {escape(where)}", emoji=False)
            raise SystemExit(128 + signum)      # unwinds through the finally below, like Ctrl-C

        on_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, terminated) if on_main else None
        try:
            try:
                held.acquire(timeout)
            except locking.LockHeld as e:
                self.abort(f"{e}; wait, or run `{unlock}` if that run is dead")
            except TimeoutError as e:               # the lock table did not become ACTIVE
                self.abort(f"taking the lock of {where}: {e}")
            except Exception as e:
                if not errors.is_aws_error(e):
                    raise
                self.abort(f"taking the lock of {where} (DynamoDB table {table}): {errors.describe(e)}")
            yield held
        finally:
            held.release()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
