"""envctl completion bash|zsh|fish: the shell's completion script, from click's own."""
from __future__ import annotations

import click

from envctl.cli import cli

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_ENVCTL_COMPLETE"      # click's convention for prog_name "envctl"


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; load it from the shell's startup file.

    \b
    bash:  eval "$(envctl completion bash)"          in ~/.bashrc
    zsh:   eval "$(envctl completion zsh)"           in ~/.zshrc
    fish:  envctl completion fish > ~/.config/fish/completions/envctl.fish
    """
    from click.shell_completion import get_completion_class

    script = get_completion_class(shell)(cli, {}, "envctl", COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
