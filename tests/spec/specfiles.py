"""Write spec folders for tests and run the real CLI on them.

Tests run from the folder that holds `specs/`, so problems read `specs/qa.yaml:12: …`
exactly as a user sees them.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner, Result

from envctl.cli import _register, cli

_register()

HEAD = "project: acme\nregion: eu-north-1\n"                 # lines 1-2 of most specs
NETWORK = HEAD + """\
network:
  cidr: 10.0.0.0/16
  tiers:
    public: {prefix: 24, internet: true}
    private: {prefix: 20}
"""                                                           # lines 1-7; the case's own text starts at 8


def write_specs(root: Path, files: dict[str, str]) -> Path:
    """Create root/specs/<name> for each file (dedented); a name ending in / is a folder."""
    specs = root / "specs"
    specs.mkdir(exist_ok=True)
    for name, text in files.items():
        path = specs / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return specs


def envctl(*args: str) -> Result:
    """`envctl --specs specs ARGS…` in the current folder; never raises."""
    return CliRunner().invoke(cli, ["--specs", "specs", *args])


def no_traceback(result: Result) -> bool:
    """The command ended by its own exit, not by an exception escaping it."""
    ended_cleanly = result.exception is None or isinstance(result.exception, SystemExit)
    return ended_cleanly and "Traceback" not in result.output
