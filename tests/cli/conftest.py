"""CLI tests run `envctl …` exactly as a user does, in a folder that holds `specs/`.

`envctl(*args)` goes through `envctl.cli.run_command_line`, what the console script calls,
so what it returns (exit code, stdout, stderr) is what a user sees, internal errors included.
The autouse fixture of tests/conftest.py makes the output deterministic (no colour,
100 columns, no terminal); commands that talk to AWS need the `aws` fixture too.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import run_command_line

# Small specs that several test files build on: cheap kinds only, the account the sandbox answers.
QUEUE_AND_TOPIC = """\
project: acme
region: eu-north-1
account: "123456789012"
queues:
  work: {}
topics:
  alarms: {}
"""
THREE_QUEUES = """\
project: acme
region: eu-north-1
account: "123456789012"
queues:
  work-units: {}
  imports: {}
  exports: {}
"""

# One public subnet and a security group: the smallest network (write_spec dedents it).
SMALL_NETWORK = """\
    project: acme
    region: eu-north-1
    account: "123456789012"
    network:
      cidr: 10.40.0.0/16
      zones: 1
      nat: none
      tiers:
        public: {prefix: 24, internet: true}
    security_groups:
      web:
        ingress:
          - {port: 443, from: 0.0.0.0/0}
    """

# The network and security groups of specs/base.yaml: what issue 3 builds.
NETWORK_BASE = """\
project: acme
region: eu-north-1
tags:
  CostCenter: "4711"

network:
  cidr: 10.20.0.0/16
  zones: 2
  nat: single
  tiers:
    public:  {prefix: 24, internet: true}
    private: {prefix: 20}
    data:    {prefix: 24}

security_groups:
  bastion:
    ingress:
      - {port: 22, from: 203.0.113.0/24}
  app:
    ingress:
      - {port: 8080, from: bastion}
      - {port: 22, from: bastion}
  db:
    ingress:
      - {port: 5432, from: app}
"""
QA = """\
extends: base.yaml
account: "123456789012"
network:
  cidr: 10.30.0.0/16
"""
PROD = """\
extends: base.yaml
account: "210987654321"
network:
  cidr: 10.10.0.0/16
"""


@dataclass(frozen=True)
class Ran:
    """One run of the command line."""

    code: int
    stdout: str
    stderr: str

    @property
    def clean(self) -> bool:
        """Ended as envctl meant to: no traceback, no internal error."""
        text = self.stdout + self.stderr
        return "Traceback" not in text and "internal error" not in text


class _CommandLine:
    """What CliRunner invokes: the console script's own `run_command_line`, with `--specs specs`."""

    name = "envctl"

    def main(self, args, prog_name=None, **extra):
        raise SystemExit(run_command_line(["--specs", "specs", *args]))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The current folder of the test, holding specs/ (problems then read `specs/qa.yaml:3`)."""
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_spec(workdir):
    """write_spec("qa.yaml", text): write (dedented) specs/qa.yaml."""

    def write(name: str, text: str) -> Path:
        path = workdir / "specs" / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def network_specs(write_spec):
    """specs/base.yaml (network + security groups), qa.yaml (account 123456789012, the
    emulator's) and prod.yaml (account 210987654321)."""
    write_spec("base.yaml", NETWORK_BASE)
    write_spec("qa.yaml", QA)
    write_spec("prod.yaml", PROD)
    return write_spec


@pytest.fixture
def envctl(workdir):
    def invoke(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Ran:
        result = CliRunner().invoke(_CommandLine(), list(args), input=input, env=env, prog_name="envctl",
                                    catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return invoke


def timeless(text: str) -> str:
    """Output with its durations (`(0.1s)`, `in 2.3s`) replaced by `(…s)` and `in …s`."""
    return re.sub(r"\bin \d+\.\ds\.", "in …s.", re.sub(r"\(\d+\.\ds\)", "(…s)", text))

