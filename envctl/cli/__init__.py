"""The envctl command line: a click group whose commands live one per module.

Every option has an ENVCTL_* environment variable. Commands import boto3 (and the
provisioners) lazily, so `envctl --help` and `envctl validate` start fast.
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from envctl import __version__
from envctl.cli import app as app_module
from envctl.cli.app import Abort, App, Options

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "auto_envvar_prefix": "ENVCTL"}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="envctl")
@click.option("--specs", type=click.Path(path_type=Path, file_okay=False), default=Path("specs"),
              envvar="ENVCTL_SPECS", show_default=True, help="Folder of the environment specs.")
@click.option("-v", "--verbose", count=True, envvar="ENVCTL_VERBOSE", help="More detail; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, envvar="ENVCTL_QUIET", help="Only errors and requested output.")
@click.option("--color/--no-color", default=None, envvar="ENVCTL_COLOR",
              help="Force colour on or off (NO_COLOR is respected).")
@click.option("--interactive/--no-interactive", default=None, envvar="ENVCTL_INTERACTIVE",
              help="Allow prompts (default: only on a terminal, never when CI is set).")
@click.option("--profile", envvar="ENVCTL_PROFILE", help="AWS profile (default: the standard credential chain).")
@click.option("--region", envvar="ENVCTL_REGION", help="AWS region (default: the spec's region).")
@click.option("--endpoint-url", envvar="ENVCTL_ENDPOINT_URL",
              help="AWS endpoint for emulators (AWS_ENDPOINT_URL is honoured too).")
@click.option("--sandbox", is_flag=True, envvar="ENVCTL_SANDBOX",
              help="Use the local sandbox (see `envctl sandbox start`) with its dummy credentials.")
@click.option("--rate-limit/--no-rate-limit", default=True, envvar="ENVCTL_RATE_LIMIT", show_default=True,
              help="Pace AWS calls with client-side token buckets set from AWS's limits (adapting to throttles).")
@click.pass_context
def cli(ctx: click.Context, **options) -> None:
    """envctl: whole AWS environments from declarative YAML.

    \b
    envctl validate                 check every spec, no AWS call
    envctl diff qa                  what create would change (exit 0 in sync, 2 changes)
    envctl create qa --yes          make AWS match specs/qa.yaml
    envctl destroy qa --yes         delete everything tagged as environment qa
    envctl outputs qa --json        ids, ARNs and URLs for the next CI step
    envctl status qa                every live resource and whether it matches the spec
    envctl list                     the environments in the account and region
    """
    ctx.obj = App(Options(**options))


def _register() -> None:
    from envctl.cli import commands  # noqa: F401  (each module adds its command to `cli`)


def main() -> None:
    """Entry point: user errors are one line and exit 1; bugs get a traceback with -v."""
    app_module.ONE_COMMAND_PROCESS = True
    gc.disable()                        # until set_up_done(), or to the end of a command that makes no call
    code = run_command_line(sys.argv[1:])
    # The process ends here. Left alone, the interpreter's shutdown runs full garbage
    # collections over every object the run made (botocore's service models, pydantic's
    # validators…): 0.2-0.4 s of CPU to free memory the OS takes back anyway. Frozen objects
    # are not collected; atexit handlers still run and stdout/stderr are still flushed.
    gc.freeze()
    sys.exit(code)


def run_command_line(args: list[str]) -> int:
    """Run the command line `envctl ARGS…` and return its exit code; never raises.

    main() is this plus sys.exit (and the garbage collector's settings for a process that
    ends with its command); tests call it to see exactly what a user sees.
    """
    _register()
    try:
        # standalone_mode=False returns an Exit's code instead of raising it
        code = cli.main(args=list(args), prog_name="envctl", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except Abort as e:
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code if e.exit_code != 2 else 1
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("\ninterrupted", err=True)
        return 130
    except Exception as e:  # a bug: say so, traceback with -v
        if any(a in ("-v", "-vv", "--verbose") for a in args):
            from rich.console import Console

            Console(stderr=True).print_exception(show_locals=False)
        else:
            click.echo(f"error: internal error: {type(e).__name__}: {e} (run with -v for the traceback, "
                       "and please report it)", err=True)
        return 1
