"""App: the one object a command gets. It owns the Console, the options, and abort()."""
from __future__ import annotations

import os
import sys
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

    def session(self, spec=None, region: str | None = None):
        """An AWS session for `spec`; refuses, before any other call, a foreign account."""
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
                                            access_key=access_key, secret_key=secret_key), default_region)
            if spec is not None:
                session.check_account(spec.model.account)
                session.scope = (spec.model.project, spec.name)
        except AwsAccessError as e:
            self.abort(str(e))
        return session
