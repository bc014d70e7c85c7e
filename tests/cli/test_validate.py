"""envctl validate: exit 0 when every spec is valid, 1 with file:line problems otherwise; no AWS."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.spec.specfiles import HEAD, envctl, no_traceback, write_specs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_the_repository_examples_are_valid(repo):
    result = envctl("validate")

    assert result.exit_code == 0, result.output
    assert result.stdout == "✓ preview\n✓ prod\n✓ qa\n"
    assert result.stderr == ""


def test_one_named_environment(repo):
    result = envctl("validate", "qa")

    assert result.exit_code == 0
    assert result.stdout == "✓ qa\n"


def test_quiet_prints_nothing_when_valid(repo):
    from click.testing import CliRunner

    from envctl.cli import cli

    result = CliRunner().invoke(cli, ["-q", "--specs", "specs", "validate"])

    assert result.exit_code == 0
    assert result.output == ""


def test_specs_folder_from_the_environment(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from envctl.cli import cli

    write_specs(tmp_path, {"preview.yaml": HEAD})
    monkeypatch.setenv("ENVCTL_SPECS", str(tmp_path / "specs"))

    result = CliRunner().invoke(cli, ["validate"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "✓ preview\n"


def test_an_unknown_environment_suggests_a_close_one(repo):
    result = envctl("validate", "prd")

    assert result.exit_code == 1
    assert result.stderr == "error: specs/prd.yaml: no spec for environment 'prd'; did you mean 'prod'?\n"
    assert no_traceback(result)


def test_a_broken_environment_does_not_hide_the_others(tmp_path, monkeypatch):
    write_specs(tmp_path, {
        "base.yaml": HEAD + "queues:\n  work: {}\n",
        "prod.yaml": "extends: base.yaml\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work: {delay_s: -1}\n",
        "zz.yaml": HEAD,
    })
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 1
    assert result.stdout == "✓ prod\n✓ zz\n"
    assert result.stderr == "error: specs/qa.yaml:3: queues.work.delay_s: input should be greater than or equal to 0\n"


def test_several_problems_in_several_files_are_all_reported(tmp_path, monkeypatch):
    write_specs(tmp_path, {
        "base.yaml": HEAD + "queues:\n  work: {delay_s: 1000}\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work: {retention_s: 1}\n  jobs: {fifo: maybe}\n",
    })
    monkeypatch.chdir(tmp_path)

    result = envctl("validate", "qa")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: specs/base.yaml:4: queues.work.delay_s: input should be less than or equal to 900",
        "error: specs/qa.yaml:3: queues.work.retention_s: input should be greater than or equal to 60",
        "error: specs/qa.yaml:4: queues.jobs.fifo: input should be a valid boolean, unable to interpret input",
    ]


def test_a_folder_without_specs(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 1
    assert result.stderr == "error: no environment specs (*.yaml) in specs/\n"
