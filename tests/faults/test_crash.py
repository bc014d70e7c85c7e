"""Crash anywhere: `envctl create` and `envctl destroy` killed with SIGKILL after N API calls.

Each run is a real process (`python -m envctl`) against the emulator in this process; the
emulator's Tripwire layer carries out the N-th call and then kills the process before the
answer is sent: the call was made, the run never learned it. The points are spread over a
clean run's calls (counted first). After each kill, the run is finished the way a user
would: `envctl unlock` (a killed run leaves its lock), then the same command again. Then AWS
must hold exactly what a clean create leaves (attribute by attribute, ids replaced by
addresses, nothing twice), or, after destroy, nothing tagged for the environment.

Create is killed at 6 points from 5% to 95% of its calls, destroy at 2 around its middle.
CRASH_POINTS=20 spreads 20 create points (and destroy at every other one): a wider sweep
for local runs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import _register, cli
from tests.faults import inventory

_register()

REPO = Path(__file__).resolve().parents[2]
PROJECT, ENV = "acme", "qa"
POINTS = int(os.environ.get("CRASH_POINTS", "6"))
# From 5% to 95% of a clean run's calls: the first calls (identity, discovery) change nothing.
FRACTIONS = [0.05 + 0.9 * i / (POINTS - 1) for i in range(POINTS)] if POINTS > 1 else [0.5]
DESTROY_FRACTIONS = FRACTIONS[1:-1:2] if POINTS > 6 else [0.4, 0.7]


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    calls: int                 # AWS calls the process made
    killed: bool


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example") / "specs"
    shutil.copytree(REPO / "specs", folder)
    return folder


def run(faulty, specs: Path, command: str, kill_at: int | None = None) -> Run:
    """`envctl COMMAND qa --yes` as a process; killed at its `kill_at`-th AWS call if given."""
    faulty.tripwire.arm(kill_at)
    try:
        child = subprocess.Popen([sys.executable, "-m", "envctl", "--specs", str(specs), command, ENV, "--yes"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        faulty.tripwire.aim(child.pid)
        output, _ = child.communicate(timeout=180)
        return Run(child.returncode, output, faulty.tripwire.count, faulty.tripwire.fired)
    finally:
        faulty.tripwire.arm(None)        # the test's own calls below must not trip it


def envctl(specs: Path, *args: str):
    return CliRunner().invoke(cli, ["--specs", str(specs), *args])


def finish(faulty, specs: Path, command: str) -> None:
    """What a user does after a run died: break its lock, run the command again."""
    if "unlock" in cli.commands:
        unlocked = envctl(specs, "unlock", ENV, "--yes")
        assert unlocked.exit_code == 0, unlocked.output
    again = envctl(specs, command, ENV, "--yes")
    assert again.exit_code == 0, again.output[-3000:]


@pytest.fixture(scope="module")
def baseline() -> dict:
    return {}


@pytest.fixture
def clean(faulty, specs, baseline) -> dict:
    """A clean create and destroy (once per module): how many calls each makes (counted by the
    tripwire, unarmed) and what create leaves."""
    if not baseline:
        baseline["create"] = counted(faulty, lambda: envctl(specs, "create", ENV, "--yes"))
        baseline["state"] = inventory.take(faulty.client, PROJECT, ENV).state
        baseline["destroy"] = counted(faulty, lambda: envctl(specs, "destroy", ENV, "--yes"))
        faulty.server.reset()
    return baseline


def counted(faulty, command) -> int:
    faulty.tripwire.arm(None)
    result = command()
    assert result.exit_code == 0, result.output[-3000:]
    return faulty.tripwire.count


def kill_point(calls: int, fraction: float) -> int:
    return max(1, round(calls * fraction))


@pytest.mark.parametrize("fraction", FRACTIONS, ids=[f"{f:.0%}" for f in FRACTIONS])
def test_create_killed_anywhere_finishes_when_run_again(faulty, specs, clean, fraction):
    at = kill_point(clean["create"], fraction)
    killed = run(faulty, specs, "create", kill_at=at)
    assert killed.killed and killed.returncode == -signal.SIGKILL, f"not killed at call {at}:\n{killed.output}"

    finish(faulty, specs, "create")
    now = inventory.take(faulty.client, PROJECT, ENV)
    assert now.duplicates == {}, f"killed at create call {at} of {clean['create']}"
    differences = inventory.differences(clean["state"], now.state)
    assert not differences, f"killed at create call {at} of {clean['create']}:\n" + "\n".join(differences)


@pytest.mark.parametrize("fraction", DESTROY_FRACTIONS, ids=[f"{f:.0%}" for f in DESTROY_FRACTIONS])
def test_destroy_killed_halfway_finishes_when_run_again(faulty, specs, clean, fraction):
    created = envctl(specs, "create", ENV, "--yes")
    assert created.exit_code == 0, created.output[-3000:]
    at = kill_point(clean["destroy"], fraction)
    killed = run(faulty, specs, "destroy", kill_at=at)
    assert killed.killed and killed.returncode == -signal.SIGKILL, f"not killed at call {at}:\n{killed.output}"
    assert inventory.take(faulty.client, PROJECT, ENV).found, "killed after everything was deleted"

    finish(faulty, specs, "destroy")
    assert inventory.take(faulty.client, PROJECT, ENV).found == {}, f"killed at destroy call {at}"
    assert inventory.still_tagged(faulty.client, PROJECT, ENV) == []


def test_the_tripwire_kills_the_process_at_its_nth_call_after_carrying_it_out(faulty):
    script = ("import boto3\n"
              "sqs = boto3.client('sqs')\n"
              "for i in range(5):\n"
              "    sqs.create_queue(QueueName=f'q{i}')\n")
    faulty.tripwire.arm(3)
    child = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    faulty.tripwire.aim(child.pid)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert faulty.tripwire.fired and faulty.tripwire.count == 3
    faulty.tripwire.arm(None)
    queues = faulty.client("sqs").list_queues().get("QueueUrls", [])
    assert sorted(q.rsplit("/", 1)[-1] for q in queues) == ["q0", "q1", "q2"]
