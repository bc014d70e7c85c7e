"""envctl sandbox start|status|stop, run as a user runs them (a subprocess each), and
--sandbox pointing the other commands at it. One start and one stop: the server takes a
second or two to come up."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

QUEUE_ONLY = """\
    project: acme
    region: eu-north-1
    account: "123456789012"
    queues:
      work-units: {}
    """


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def home(tmp_path):
    """ENVCTL_HOME of these tests: where the sandbox keeps its pid and port."""
    path = tmp_path / "envctl-home"
    path.mkdir()
    return path


@pytest.fixture
def sandbox_cli(home, workdir):
    """Run `envctl ARGS…` in a fresh interpreter with ENVCTL_HOME = `home`; the sandbox it may
    have started is stopped at the end."""
    env = {**os.environ, "ENVCTL_HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "envctl", *args], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=60)

    yield run
    run("sandbox", "stop")


def test_sandbox_start_status_stop(sandbox_cli, home, envctl, write_spec, monkeypatch):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"

    before = sandbox_cli("sandbox", "status")
    started = sandbox_cli("sandbox", "start", "--port", str(port))
    running = sandbox_cli("sandbox", "status")

    assert (before.returncode, before.stdout) == (3, "the sandbox is not running\n")
    assert started.returncode == 0, started.stderr
    pid = json.loads((home / "sandbox.json").read_text())["pid"]
    assert started.stdout == f"sandbox running at {endpoint} (pid {pid}); " \
                             "use envctl --sandbox … or ENVCTL_SANDBOX=1\n"
    assert (running.returncode, running.stdout) == (0, f"sandbox running at {endpoint} (pid {pid})\n")
    assert sandbox_cli("sandbox", "start", "--port", str(port)).returncode == 0      # already running: a no-op
    assert json.loads((home / "sandbox.json").read_text())["pid"] == pid

    # --sandbox points the commands at it with its dummy credentials, whatever the environment
    # says: its account (123456789012) is not the one this spec pins, and envctl says so.
    monkeypatch.setenv("ENVCTL_HOME", str(home))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    write_spec("prod.yaml", QUEUE_ONLY.replace("123456789012", "210987654321"))
    refused = envctl("--sandbox", "diff", "prod")
    assert refused.code == 1
    assert refused.stderr.startswith("error: the credentials belong to account 123456789012, but the spec pins "
                                     "account 210987654321 at specs/prod.yaml:3;")

    stopped = sandbox_cli("sandbox", "stop")
    after = sandbox_cli("sandbox", "status")
    again = sandbox_cli("sandbox", "stop")

    assert (stopped.returncode, stopped.stdout) == (0, "sandbox stopped\n")
    assert (after.returncode, after.stdout) == (3, "the sandbox is not running\n")
    assert (again.returncode, again.stdout) == (0, "the sandbox was not running\n")
    assert not (home / "sandbox.json").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0          # nothing answers there any more


def test_sandbox_option_without_a_running_sandbox(home, envctl, write_spec):
    write_spec("qa.yaml", QUEUE_ONLY)

    result = envctl("--sandbox", "diff", "qa", env={"ENVCTL_HOME": str(home)})

    assert result.code == 1
    assert result.stderr == "error: the sandbox is not running: start it with `envctl sandbox start`\n"
    assert result.stdout == "" and result.clean


def test_sandbox_start_on_a_port_in_use(home, sandbox_cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]

        result = sandbox_cli("sandbox", "start", "--port", str(port))

    assert result.returncode == 1
    assert result.stderr == f"error: port {port} is already in use; choose another with --port\n"
    assert result.stdout == ""
    assert not (home / "sandbox.json").exists()
