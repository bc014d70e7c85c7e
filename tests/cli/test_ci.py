"""envctl scripted in CI (issue 8): the recipes in examples/ci/ run as written against the
emulator, every option has an ENVCTL_ variable, every report has a versioned JSON shape,
colour follows NO_COLOR / --no-color, and shell completion works.

The GitHub Actions workflow is run step by step, as a runner would: each `run:` script in
bash (-eo pipefail, as GitHub does) with CI=true, `${{ … }}` expressions replaced by test
values, step outputs passed through $GITHUB_OUTPUT, and the jobs chosen by evaluating their
`if:` for each event. Only the `uses:` actions and `pip install` are left out. The `envctl`
the scripts find on PATH is a shim that runs the command line in this test's process (over
a socket): the same code, without a cold start of botocore (seconds) for every call.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from envctl.cli import _register, cli, run_command_line
from envctl.engine import DEFAULT_PARALLELISM

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"
BIN = Path(sys.executable).parent           # the venv's python3
NUMBER = "123"
ACTIONS = ("actions/checkout@", "actions/setup-python@", "aws-actions/configure-aws-credentials@")
EVENTS = {
    "pr-opened": {"github.event_name": "pull_request", "github.event.action": "opened"},
    "pr-updated": {"github.event_name": "pull_request", "github.event.action": "synchronize"},
    "pr-closed": {"github.event_name": "pull_request", "github.event.action": "closed"},
    "push-main": {"github.event_name": "push", "github.ref": "refs/heads/main"},
    "push-branch": {"github.event_name": "push", "github.ref": "refs/heads/feature"},
    "schedule": {"github.event_name": "schedule"},
}


# ------------------------------------------------------------------ a small GitHub Actions runner

@dataclass
class Step:
    name: str
    ran: bool
    code: int = 0
    stdout: str = ""
    stderr: str = ""


SHIM = """\
#!{python} -S
# envctl for the workflow's scripts: runs the command line in the test's process.
import json, os, socket, sys
with socket.socket(socket.AF_UNIX) as s:
    s.connect(os.environ["CI_TEST_ENVCTL_SOCKET"])
    s.sendall(json.dumps({{"args": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode() + b"\\n")
    answer = json.loads(s.makefile().readline())
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["code"])
"""


class _CommandLine:
    name = "envctl"

    def main(self, args, prog_name=None, **extra):
        raise SystemExit(run_command_line(list(args)))


class _Envctl(socketserver.StreamRequestHandler):
    """One `envctl …` of a script: run with its arguments, folder and environment."""

    def handle(self):
        request = json.loads(self.rfile.readline())
        env = {**{k: None for k in os.environ if k not in request["env"]}, **request["env"]}
        before = os.getcwd()
        os.chdir(request["cwd"])
        try:
            result = CliRunner().invoke(_CommandLine(), request["args"], env=env, catch_exceptions=False)
        finally:
            os.chdir(before)
        answer = {"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


@pytest.fixture
def envctl_shim(tmp_path_factory):
    """A folder holding the `envctl` shim, and the environment that points it at this process."""
    folder = tmp_path_factory.mktemp("bin")
    shim = folder / "envctl"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    path = str(folder / "envctl.sock")
    server = socketserver.UnixStreamServer(path, _Envctl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"PATH": f"{folder}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}", "CI_TEST_ENVCTL_SOCKET": path}
    server.shutdown()
    server.server_close()


@dataclass
class Workflow:
    doc: dict
    workdir: Path
    shim: dict
    event: dict = field(default_factory=dict)

    def jobs_for(self, event: str) -> list[str]:
        """The jobs whose `if:` is true for `event`."""
        self.event = {**EVENTS[event], "github.event.number": NUMBER}
        return [name for name, job in self.doc["jobs"].items() if self.condition(job.get("if", "true"))]

    def condition(self, expression: str) -> bool:
        """A GitHub `if:` of ==, !=, && and || over github.* and steps.* values."""
        def value(m: re.Match) -> str:
            return repr(self.event.get(m.group(0), self.outputs_value(m.group(0))))

        python = re.sub(r"\b(?:github|steps)(?:\.[\w-]+)+", value, expression)
        python = python.replace("&&", " and ").replace("||", " or ")
        return bool(eval(python, {"__builtins__": {}}, {"true": True, "false": False}))   # noqa: S307

    def outputs_value(self, name: str):
        parts = name.split(".")
        if parts[0] == "steps" and parts[2] == "outputs":
            return self.outputs.get(parts[1], {}).get(parts[3], "")
        return None

    def expression(self, m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr in self.event:
            return self.event[expr]
        if expr.startswith("vars."):
            return f"arn:aws:iam::123456789012:role/{expr[5:]}"
        if expr.startswith("steps."):
            return self.outputs_value(expr)
        raise AssertionError(f"the test runner does not know ${{{{ {expr} }}}}")

    def substitute(self, text: str) -> str:
        return re.sub(r"\$\{\{(.+?)\}\}", self.expression, str(text))

    def run(self, job_name: str) -> list[Step]:
        """Run one job's steps in order; a failing step fails the job (the rest do not run)."""
        job = self.doc["jobs"][job_name]
        self.outputs: dict[str, dict[str, str]] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENVCTL_")}
        env.update({"CI": "true", **self.shim})
        env.update({k: self.substitute(v) for k, v in {**self.doc.get("env", {}), **job.get("env", {})}.items()})
        steps = []
        for i, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or step["run"]
            if "uses" in step:
                assert step["uses"].startswith(ACTIONS), step["uses"]
                steps.append(Step(name, ran=False))
                continue
            if step["run"].startswith("pip install") or not self.condition(step.get("if", "true")):
                steps.append(Step(name, ran=False))
                continue
            output_file = self.workdir / f"github-output-{job_name}-{i}"
            output_file.write_text("")
            step_env = {**env, "GITHUB_OUTPUT": str(output_file),
                        **{k: self.substitute(v) for k, v in step.get("env", {}).items()}}
            run = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                  self.substitute(step["run"])], cwd=self.workdir, env=step_env,
                                 capture_output=True, text=True, timeout=300)
            steps.append(Step(name, True, run.returncode, run.stdout, run.stderr))
            assert run.returncode == 0, f"step {name!r} of job {job_name} failed:\n{run.stdout}\n{run.stderr}"
            if "id" in step:
                self.outputs[step["id"]] = dict(line.split("=", 1) for line in output_file.read_text().splitlines()
                                                if "=" in line)
        return steps


@pytest.fixture
def workflow(tmp_path, envctl_shim) -> Workflow:
    """The repository's specs (prod pinned to the emulator's account, as a production
    account would be) in a fresh folder, and the workflow file."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    prod = tmp_path / "specs" / "prod.yaml"
    prod.write_text(prod.read_text().replace('account: "210987654321"', 'account: "123456789012"'))
    return Workflow(yaml.safe_load(GITHUB.read_text()), tmp_path, envctl_shim)


def live_environments(aws) -> set[str]:
    """Environments that own live resources, read with plain boto3 (queues and topics, which
    every environment of these specs has)."""
    found = set()
    sqs = aws.client("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        found.add(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}).get("envctl:environment"))
    return found - {None}


def test_each_event_runs_the_jobs_it_should(workflow):
    assert workflow.jobs_for("pr-opened") == ["preview"]
    assert workflow.jobs_for("pr-updated") == ["preview"]
    assert workflow.jobs_for("pr-closed") == ["preview-destroy"]
    assert workflow.jobs_for("push-main") == ["production"]
    assert workflow.jobs_for("push-branch") == []
    assert workflow.jobs_for("schedule") == ["reap"]


def test_the_github_actions_recipe_runs_against_the_emulator(aws, workflow):
    # A pull request is opened: its preview environment, with a lifetime, outputs for the next step.
    assert workflow.jobs_for("pr-opened") == ["preview"]
    steps = {s.name: s for s in workflow.run("preview")}
    sqs = aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName="acme-pr-123-work-units")["QueueUrl"]
    tags = sqs.list_queue_tags(QueueUrl=queue_url)["Tags"]
    assert tags["envctl:environment"] == "pr-123"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", tags["envctl:expires"])
    assert workflow.outputs["outputs"]["queue_url"] == queue_url
    assert workflow.outputs["outputs"]["bucket"] == "acme-pr-123-uploads"
    assert f"integration tests against {queue_url} and s3://acme-pr-123-uploads" in \
        steps["Use them in the next step"].stdout

    # main moves: diff says there are changes (exit 2), so create runs; next time it does not.
    assert workflow.jobs_for("push-main") == ["production"]
    first = {s.name: s for s in workflow.run("production")}
    assert first["Apply"].ran and "Done:" in first["Apply"].stdout
    assert json.loads((workflow.workdir / "prod-outputs.json").read_text())["environment"] == "prod"
    again = {s.name: s for s in workflow.run("production")}
    assert again["Plan"].ran and not again["Apply"].ran
    assert "'create': 0" in again["Plan"].stdout

    # Pushed to again, then the hourly reap: nothing has expired, nothing is touched.
    workflow.jobs_for("pr-updated")
    workflow.run("preview")
    aws.log.clear()
    workflow.jobs_for("schedule")
    [*_, reap_step] = workflow.run("reap")
    assert reap_step.stdout == ""
    assert json.loads((workflow.workdir / "reaped.json").read_text())["environments"] == []
    assert aws.log.mutating() == []
    assert live_environments(aws) == {"pr-123", "prod"}

    # The pull request is closed: its environment goes, production stays.
    workflow.jobs_for("pr-closed")
    workflow.run("preview-destroy")
    assert live_environments(aws) == {"prod"}
    tagged = aws.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "envctl:environment", "Values": ["pr-123"]}])["ResourceTagMappingList"]
    assert tagged == []


def test_the_gitlab_recipe_runs_the_same_envctl_commands():
    github = yaml.safe_load(GITHUB.read_text())
    gitlab = yaml.safe_load(GITLAB.read_text())

    def commands(scripts) -> set[str]:
        out = set()
        for script in scripts:
            for line in script.splitlines():
                for m in re.finditer(r"envctl (\w+)([^|;>&]*)", line):
                    out.add(" ".join([m.group(1), *sorted(w for w in m.group(2).split() if w.startswith("--"))]))
        return out

    github_runs = [s["run"] for job in github["jobs"].values() for s in job["steps"] if "run" in s]
    gitlab_runs = [line for job in gitlab.values() if isinstance(job, dict) for line in job.get("script", [])]
    assert commands(gitlab_runs) - {"validate --json"} == commands(github_runs) - {"validate"}
    assert commands(github_runs) >= {"create --from --ttl --yes", "outputs --from --json", "destroy --from --yes",
                                     "reap --json --yes", "diff --json", "create --yes"}


# ------------------------------------------------------------------ options, JSON, colour, completion

def _options(command: click.Command, path: str = "envctl"):
    for param in command.params:
        if isinstance(param, click.Option):
            yield path, param
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _options(sub, f"{path} {name}")


def test_every_option_has_an_envctl_variable():
    _register()
    options = list(_options(cli))
    missing = [f"{path} {p.opts[0]}" for path, p in options
               if p.name not in ("help", "version") and not str(p.envvar or "").startswith("ENVCTL_")]

    assert len(options) > 30
    assert missing == []


def test_every_command_that_executes_takes_the_engines_default_parallelism():
    _register()
    defaults = {path: p.default for path, p in _options(cli) if p.name == "parallelism"}

    assert defaults == {"envctl create": DEFAULT_PARALLELISM, "envctl destroy": DEFAULT_PARALLELISM,
                        "envctl reap": DEFAULT_PARALLELISM}


def test_an_option_is_taken_from_its_variable(aws, envctl, write_spec):
    write_spec("preview.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {}\n")

    result = envctl("create", "pr-7", "--yes", env={"ENVCTL_FROM": "preview", "ENVCTL_TTL": "2h"})

    assert result.code == 0, result.stderr
    url = aws.client("sqs").get_queue_url(QueueName="acme-pr-7-work")["QueueUrl"]
    assert "envctl:expires" in aws.client("sqs").list_queue_tags(QueueUrl=url)["Tags"]


REPORTS = [
    ("validate", ["validate", "--json"], 0),
    ("graph", ["graph", "qa", "--format", "json"], 0),
    ("diff", ["diff", "qa", "--json"], 2),
    ("outputs", ["outputs", "qa", "--json"], 0),
    ("list", ["list", "--json"], 0),
    ("status", ["status", "qa", "--json"], 0),
    ("compare", ["compare", "qa", "pr-1", "--from-b", "qa", "--json"], 0),
    ("reap", ["reap", "--dry-run", "--json"], 0),
    ("create", ["create", "qa", "--yes", "--json"], 0),
    ("destroy", ["destroy", "qa", "--yes", "--json"], 0),
]


@pytest.mark.parametrize("name,args,code", REPORTS, ids=[r[0] for r in REPORTS])
def test_every_report_has_json_version_1(aws, envctl, write_spec, name, args, code):
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {}\n")

    result = envctl(*args)

    assert result.code == code, result.stderr
    document = json.loads(result.stdout)
    assert document["version"] == 1


def test_show_json_is_the_spec_itself(envctl, write_spec):
    # Its shape is the spec language's (`envctl schema`): it can be saved as a spec file.
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {}\n")

    assert json.loads(envctl("show", "qa", "--json").stdout) == {
        "project": "acme", "region": "eu-north-1", "queues": {"work": {}}}


def test_validate_json_lists_every_problem(envctl, write_spec):
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nttl: soon\nqueues:\n  work: {delay_s: 901}\n")
    write_spec("ok.yaml", "project: acme\nregion: eu-north-1\n")

    result = envctl("validate", "--json")

    assert result.code == 1 and result.stderr == ""
    assert json.loads(result.stdout) == {"version": 1, "environments": [
        {"environment": "ok", "valid": True, "problems": []},
        {"environment": "qa", "valid": False, "problems": [
            {"file": "specs/qa.yaml", "line": 3, "path": "ttl", "message": "'soon' is not a valid ttl"},
            {"file": "specs/qa.yaml", "line": 5, "path": "queues.work.delay_s",
             "message": "input should be less than or equal to 900"}]}]}


def test_graph_json(envctl, write_spec):
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {dead_letter: {max_receives: 3}}\n")

    result = envctl("graph", "qa", "--format", "json")

    assert json.loads(result.stdout) == {"version": 1, "project": "acme", "environment": "qa", "resources": [
        {"address": "queue/work-dlq", "kind": "queue", "physical_name": "acme-qa-work-dlq", "depends_on": []},
        {"address": "queue/work", "kind": "queue", "physical_name": "acme-qa-work",
         "depends_on": ["queue/work-dlq"]}]}


COLOR = re.compile(r"\x1b\[[0-9;]*3[0-7]m")        # a foreground colour (bold alone is not colour)


@pytest.mark.parametrize("args,env,coloured", [
    (["--color"], {}, True),
    (["--color"], {"NO_COLOR": None}, True),
    ([], {"FORCE_COLOR": "1", "NO_COLOR": None}, True),
    ([], {"FORCE_COLOR": "1"}, False),                       # NO_COLOR (set by the test fixture) wins
    (["--no-color"], {"FORCE_COLOR": "1", "NO_COLOR": None}, False),
    ([], {"FORCE_COLOR": "1", "NO_COLOR": None, "ENVCTL_COLOR": "0"}, False),
], ids=["--color", "--color-without-NO_COLOR", "terminal", "NO_COLOR", "--no-color", "ENVCTL_COLOR=0"])
def test_colour_follows_no_color_and_the_flags(envctl, write_spec, args, env, coloured):
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {delay_s: 901}\n")

    result = envctl(*args, "validate", env=env)

    assert result.code == 1
    assert bool(COLOR.search(result.stderr)) is coloured, repr(result.stderr)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "envctl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("shell,looks_like", [
    ("bash", ["_envctl_completion() {", "complete -o nosort -F _envctl_completion envctl",
              "_ENVCTL_COMPLETE=bash_complete"]),
    ("zsh", ["#compdef envctl", "compdef _envctl_completion envctl", "_ENVCTL_COMPLETE=zsh_complete"]),
    ("fish", ["function _envctl_completion", "complete --no-files --command envctl",
              "_ENVCTL_COMPLETE=fish_complete"]),
])
def test_completion_prints_the_shells_script(shell, looks_like):
    run = _run("completion", shell)

    assert run.returncode == 0, run.stderr
    for text in looks_like:
        assert text in run.stdout


def test_completion_completes_commands_options_and_environments():
    def complete(words: str) -> list[str]:
        run = _run(env={"_ENVCTL_COMPLETE": "bash_complete", "COMP_WORDS": words,
                        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
        assert run.returncode == 0, run.stderr
        return run.stdout.splitlines()

    assert "plain,compare" in complete("envctl com")
    assert "plain,completion" in complete("envctl com")
    assert complete("envctl create pr-1 --t") == ["plain,--ttl"]
    assert complete("envctl diff ") == ["plain,preview", "plain,prod", "plain,qa"]
    assert complete("envctl create pr-1 --from pr") == ["plain,preview", "plain,prod"]


def test_completion_of_an_unknown_shell_is_refused():
    run = _run("completion", "powershell")

    assert run.returncode == 1
    assert "'powershell' is not one of 'bash', 'zsh', 'fish'" in run.stderr
