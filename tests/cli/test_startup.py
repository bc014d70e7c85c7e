"""The offline commands start fast: validate, schema, show, graph and --help never load boto3.

Each runs in a fresh interpreter, because this test process has long imported boto3.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import json, sys
import envctl.cli

envctl.cli._register()
sys.argv = ["envctl", "--specs", "specs", *json.loads(sys.argv[1])]
try:
    envctl.cli.main()
    code = 0
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "loaded": sorted(m for m in ("boto3", "botocore") if m in sys.modules)}))
"""


def run_envctl(*args: str) -> dict:
    run = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(args)], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("args", [
    ["--help"],
    ["validate"],
    ["validate", "qa"],
    ["schema"],
    ["show", "prod"],
    ["show", "qa", "--defaults"],
], ids=" ".join)
def test_spec_only_commands_load_neither_boto3_nor_botocore(args):
    assert run_envctl(*args) == {"code": 0, "loaded": []}


def test_graph_does_not_load_boto3():
    # graph expands the spec into provisioner Props; those modules import envctl.aws.errors,
    # which imports botocore.exceptions at its top, so only boto3 itself is checked here.
    outcome = run_envctl("graph", "qa")

    assert outcome["code"] == 0
    assert "boto3" not in outcome["loaded"]
