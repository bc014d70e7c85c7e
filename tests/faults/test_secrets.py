"""Secrets never leak: not into requests, plans, progress, outputs or status.

The database's master password is managed by AWS (ManageMasterUserPassword): envctl never
sends one, and the secret RDS keeps in Secrets Manager must not appear in anything envctl
prints. A function's environment variables are shown in plans, but not the values of those
whose names say they are secrets (*SECRET*, *PASSWORD*, *TOKEN*, …): those read "(sensitive)".
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from envctl.cli import _register, cli

_register()

REPO = Path(__file__).resolve().parents[2]
ENV = "qa"
TOKEN = "tok-7f3a9c51e2b8"              # the value of a secret-named variable, as in the spec
NEW_TOKEN = "tok-0d4e6b2a9f17"          # …after the spec changes it
LIVE_TOKEN = "tok-by-hand-5c8e1a"       # …as someone set it at the console


@pytest.fixture
def specs(tmp_path) -> Path:
    """The example specs, with a secret-named variable added to the function."""
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    set_token(folder, TOKEN)
    return folder


def set_token(specs: Path, value: str) -> None:
    base = specs / "base.yaml"
    spec = yaml.safe_load(base.read_text())
    spec["functions"]["ingest"]["environment"]["PARTNER_API_TOKEN"] = value
    base.write_text(yaml.safe_dump(spec, sort_keys=False))


def envctl(specs: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--specs", str(specs), *args])
    assert result.exit_code in (0, 2), result.output[-3000:]
    return result.output


def database_password(faulty) -> str:
    (db,) = faulty.client("rds").describe_db_instances()["DBInstances"]
    secret = faulty.client("secretsmanager").get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])
    password = json.loads(secret["SecretString"])["password"]
    assert len(password) >= 8
    return password


def test_no_password_is_sent_and_no_secret_is_shown(faulty, specs):
    faulty.recorder.start()
    shown = {"diff --json": envctl(specs, "diff", ENV, "--json"),
             "diff -v": envctl(specs, "-v", "diff", ENV),
             "create -v": envctl(specs, "-v", "create", ENV, "--yes")}
    # The spec changes the token and someone changed the live one: both sides of a change.
    set_token(specs, NEW_TOKEN)
    functions = faulty.client("lambda")
    name = next(f["FunctionName"] for f in functions.list_functions()["Functions"] if f["FunctionName"].endswith("ingest"))
    variables = functions.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables["PARTNER_API_TOKEN"] == TOKEN            # it does reach the function
    functions.update_function_configuration(FunctionName=name, Environment={
        "Variables": {**variables, "PARTNER_API_TOKEN": LIVE_TOKEN}})
    shown |= {"diff --json (drift)": envctl(specs, "diff", ENV, "--json"),
              "diff -v (drift)": envctl(specs, "-v", "diff", ENV),
              "create -v (drift)": envctl(specs, "-v", "create", ENV, "--yes"),
              "outputs --json": envctl(specs, "outputs", ENV, "--json"),
              "outputs": envctl(specs, "outputs", ENV),
              "status --json": envctl(specs, "status", ENV, "--json")}
    faulty.recorder.stop()

    sent = faulty.recorder.requests
    creates = [r for r in sent if r.action == "CreateDBInstance"]
    assert len(creates) == 1 and b"ManageMasterUserPassword=true" in creates[0].body
    assert [r.action for r in sent if b"MasterUserPassword=" in r.body.replace(b"ManageMasterUserPassword", b"")] == []

    secrets = {"the database password": database_password(faulty), "the token": TOKEN,
               "the new token": NEW_TOKEN, "the live token": LIVE_TOKEN}
    leaks = [f"{what} in `{command}`" for command, output in shown.items() for what, value in secrets.items()
             if value in output]
    assert leaks == []
    # Shown as hidden, not left out: the change is there, its values are not.
    plan = json.loads(shown["diff --json (drift)"])
    (function,) = [c for c in plan["changes"] if c["address"] == "function/ingest"]
    (environment,) = [c for c in function["changes"] if c["path"] == "environment"]
    assert environment["before"]["PARTNER_API_TOKEN"] == environment["after"]["PARTNER_API_TOKEN"] == "(sensitive)"
    assert environment["after"]["WORK_QUEUE"].endswith("acme-qa-work-units")
    assert "PARTNER_API_TOKEN: (sensitive), changed" in shown["diff -v (drift)"]
    assert "PARTNER_API_TOKEN: (sensitive)" in shown["diff -v"]
