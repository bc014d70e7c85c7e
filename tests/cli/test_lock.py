"""The environment lock through the command line: create and destroy hold it while they
change an environment, diff and outputs never take it, a second run waits or fails naming
the holder, a run that waited plans again, `envctl unlock` breaks a dead run's lock, and
Ctrl-C (or SIGTERM) releases it.

The last tests run envctl as real processes (`python -m envctl`) against an emulator whose
CreateQueue is slowed down, so that one run is surely in the middle of its work while
another starts or a Ctrl-C arrives.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from envctl.engine.lock import EnvironmentLock, read
from envctl.sandbox.middleware import Layer, chain
from envctl.sandbox.server import EmulatedAws
from tests.cli.conftest import THREE_QUEUES
from tests.conftest import REGION

QA = THREE_QUEUES
NOT_INTERACTIVE = ("error: not running on a terminal (or CI is set), so envctl will not prompt: "
                   "pass --yes to go ahead\n")


@pytest.fixture
def qa(write_spec):
    write_spec("qa.yaml", QA)


@pytest.fixture
def alice(aws):
    """The lock of acme/qa held by another run (alice's create on ci-7, pid 123)."""
    held = EnvironmentLock(aws.client("dynamodb"), "acme", "qa", command="create", holder="alice@ci-7", pid=123)
    held.acquire(timeout=0)
    yield held
    held.release()


def lock_item(aws, key="acme/qa"):
    return aws.client("dynamodb").get_item(TableName="envctl-locks", Key={"environment": {"S": key}},
                                           ConsistentRead=True).get("Item")


def queues(aws) -> list[str]:
    return sorted(url.rsplit("/", 1)[1] for url in aws.client("sqs").list_queues().get("QueueUrls", []))


def actions(aws, service: str | None = None) -> list[str]:
    return [c.action for c in aws.log.snapshot() if service is None or c.service == service]


# ------------------------------------------------------------------ who takes it

def test_create_holds_the_lock_while_it_changes_the_environment(aws, envctl, qa):
    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stderr
    calls = actions(aws)
    assert calls.index("PutItem") < calls.index("CreateQueue")                  # taken before any change
    last_change = max(i for i, c in enumerate(aws.log.snapshot()) if c.service == "sqs" and c.mutating)
    assert calls.index("DeleteItem") > last_change                             # released after the last
    assert lock_item(aws) is None
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["envctl-locks"]
    assert result.stderr == ""


def test_diff_outputs_and_a_create_with_nothing_to_do_take_no_lock(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    aws.log.clear()

    assert envctl("diff", "qa").code == 0
    assert envctl("outputs", "qa").code == 0
    assert envctl("create", "qa", "--yes").code == 0

    assert actions(aws, "dynamodb") == []


def test_diff_works_while_another_run_holds_the_lock(aws, envctl, qa, alice):
    result = envctl("diff", "qa")

    assert result.code == 2
    assert "Plan: 3 to create" in result.stdout


def test_create_fails_at_once_naming_the_holder_and_changes_nothing(aws, envctl, qa, alice):
    holder = read(aws.client("dynamodb"), "acme/qa")

    result = envctl("create", "qa", "--yes", "--lock-timeout", "0")

    assert result.code == 1
    assert result.stderr == (f"error: acme/qa is locked by {holder.describe()}; wait, or run "
                             "`envctl unlock qa` if that run is dead\n")
    assert re.fullmatch(r"alice@ci-7 \(pid 123, create, since \d\d:\d\d:\d\d UTC, lease until \d\d:\d\d:\d\d UTC\)",
                        holder.describe())
    assert "Plan: 3 to create" in result.stdout                              # the plan was shown first
    assert "CreateQueue" not in actions(aws)
    assert queues(aws) == []
    assert lock_item(aws)["token"]["S"] == alice.token                      # alice's lock is untouched


def test_a_second_run_waits_up_to_the_lock_timeout_saying_who_it_waits_for(aws, envctl, qa, alice):
    holder = read(aws.client("dynamodb"), "acme/qa")

    result = envctl("create", "qa", "--yes", env={"ENVCTL_LOCK_TIMEOUT": "1"})

    assert result.code == 1
    assert result.stderr.splitlines() == [
        f"waiting for the lock of acme/qa, held by {holder.describe()}; giving up after 1s (--lock-timeout)",
        f"error: acme/qa is locked by {holder.describe()}; wait, or run `envctl unlock qa` if that run is dead"]
    assert actions(aws).count("PutItem") >= 2                               # it tried again while waiting
    assert queues(aws) == []


def test_destroy_fails_naming_the_holder_and_deletes_nothing(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    held = EnvironmentLock(aws.client("dynamodb"), "acme", "qa", command="create", holder="alice@ci-7", pid=123)
    held.acquire(timeout=0)
    try:
        result = envctl("destroy", "qa", "--yes", "--lock-timeout", "0")
    finally:
        held.release()

    assert result.code == 1
    assert result.stderr.startswith("error: acme/qa is locked by alice@ci-7 (pid 123, create, since ")
    assert queues(aws) == ["acme-qa-exports", "acme-qa-imports", "acme-qa-work-units"]


def release_when_tried(aws, lock: EnvironmentLock, change=lambda: None) -> threading.Thread:
    """In the background, as the run holding `lock` would: once the run under test has planned
    and found the lock taken (a PutItem refused), make `change` (the holder's work), then
    release."""

    def refused() -> int:
        return sum(1 for c in aws.log.snapshot() if c.action == "PutItem" and c.status == 400)

    tries = refused() + 1

    def finish():
        deadline = time.monotonic() + 30
        while refused() < tries and time.monotonic() < deadline:
            time.sleep(0.02)
        change()
        lock.release()

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_a_create_that_waited_goes_on_when_the_other_run_changed_nothing(aws, envctl, qa, alice):
    holder = read(aws.client("dynamodb"), "acme/qa")
    other = release_when_tried(aws, alice)

    result = envctl("create", "qa", "--yes", "--lock-timeout", "30")
    other.join()

    assert result.code == 0, result.stderr
    assert result.stderr == (f"waiting for the lock of acme/qa, held by {holder.describe()}; giving up after 30s "
                             "(--lock-timeout)\n")
    assert result.stdout.splitlines()[-1].startswith("Done: 3 created in ")
    assert queues(aws) == ["acme-qa-exports", "acme-qa-imports", "acme-qa-work-units"]
    assert lock_item(aws) is None


def test_a_create_that_waited_stops_if_the_other_run_changed_the_environment(aws, envctl, qa, alice):
    sqs = aws.client("sqs")
    # The other run makes acme-qa-imports (not quite as the spec says) after this one planned.
    other = release_when_tried(aws, alice, lambda: sqs.create_queue(QueueName="acme-qa-imports", tags={
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "queue/imports"}))

    result = envctl("create", "qa", "--yes", "--lock-timeout", "30")
    other.join()

    assert result.code == 1, result.stdout
    assert result.stderr.splitlines()[-1] == ("error: acme/qa changed since plan (another run changed it while this "
                                             "one waited for the lock); run diff again")
    assert actions(aws, "sqs").count("CreateQueue") == 1
    assert lock_item(aws) is None                                            # released on the way out


def test_a_destroy_that_waited_for_another_destroy_finds_nothing_left(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    sqs = aws.client("sqs")
    held = EnvironmentLock(aws.client("dynamodb"), "acme", "qa", command="destroy", holder="alice@ci-7", pid=123)
    held.acquire(timeout=0)
    other = release_when_tried(aws, held, lambda: [sqs.delete_queue(QueueUrl=url)
                                              for url in sqs.list_queues()["QueueUrls"]])

    result = envctl("destroy", "qa", "--yes", "--lock-timeout", "30")
    other.join()

    assert result.code == 0, result.stderr
    assert result.stdout.endswith("Nothing left to do: another run changed acme/qa while this one waited for "
                                  "the lock.\n")
    assert lock_item(aws) is None


# ------------------------------------------------------------------ the lock table is nobody's resource

def test_the_lock_table_is_neither_planned_nor_destroyed(aws, envctl, write_spec):
    write_spec("qa.yaml", QA + "tables:\n  sessions:\n    partition_key: id\n")
    assert envctl("create", "qa", "--yes").code == 0
    ddb = aws.client("dynamodb")
    assert sorted(ddb.list_tables()["TableNames"]) == ["acme-qa-sessions", "envctl-locks"]

    result = envctl("destroy", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert "envctl-locks" not in result.stdout
    assert result.stdout.endswith("0 resources left in acme/qa.\n")
    assert ddb.list_tables()["TableNames"] == ["envctl-locks"]
    assert envctl("diff", "qa").stdout.count("\n+ ") == 4                   # 3 queues and the table, no lock table


# ------------------------------------------------------------------ envctl unlock

def test_unlock_says_when_there_is_no_lock(aws, envctl, qa):
    result = envctl("unlock", "qa")

    assert (result.code, result.stdout, result.stderr) == (0, "acme/qa is not locked.\n", "")
    assert aws.client("dynamodb").list_tables()["TableNames"] == []         # and makes no table for it


def test_unlock_shows_the_holder_and_needs_yes_off_a_terminal(aws, envctl, qa, alice):
    holder = read(aws.client("dynamodb"), "acme/qa")

    result = envctl("unlock", "qa")

    assert (result.code, result.stderr) == (1, NOT_INTERACTIVE)
    assert result.stdout == f"acme/qa is locked by {holder.describe()}.\n"
    assert lock_item(aws)["token"]["S"] == alice.token


def test_unlock_asks_on_a_terminal(aws, envctl, qa, alice):
    no = envctl("--interactive", "unlock", "qa", input="n\n")
    assert (no.code, no.stderr) == (1, "error: cancelled, nothing changed\n")
    assert lock_item(aws) is not None

    yes = envctl("--interactive", "unlock", "qa", input="y\n")

    assert yes.code == 0, yes.stderr
    assert yes.stdout.endswith("Break the lock of acme/qa? Only if that run is dead. [y/N]: y\nUnlocked acme/qa.\n")
    assert lock_item(aws) is None


def test_unlock_yes_breaks_the_lock_and_the_next_create_runs(aws, envctl, qa, alice):
    result = envctl("unlock", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "Unlocked acme/qa."
    assert lock_item(aws) is None
    assert envctl("create", "qa", "--yes", "--lock-timeout", "0").code == 0
    assert alice.renew() is False                                             # the old holder learns it lost it


def test_unlock_says_when_the_lease_has_run_out_anyway(aws, envctl, qa):
    dead = EnvironmentLock(aws.client("dynamodb"), "acme", "qa", command="destroy", holder="alice@ci-7", pid=123,
                           clock=lambda: time.time() - 120)          # taken two minutes ago, never renewed
    dead.acquire(timeout=0)
    dead._stop_renewing.set()

    result = envctl("unlock", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "Its lease has run out: the next create or destroy takes the lock over anyway.", "Unlocked acme/qa."]
    assert lock_item(aws) is None


def test_unlock_by_project_when_the_spec_is_gone(aws, envctl, workdir, alice):
    result = envctl("--region", REGION, "unlock", "qa", "--project", "acme", "--yes")

    assert result.code == 0, result.stderr
    assert lock_item(aws) is None


# ------------------------------------------------------------------ real processes

class Gate(Layer):
    """Holds back the calls of the `held` actions until `open()` (at most a minute), and
    keeps the bodies of the calls of each action that have arrived."""

    def __init__(self):
        self.held: set[str] = set()
        self.bodies: dict[str, list[bytes]] = {}
        self._open = threading.Event()
        self._lock = threading.Lock()

    def reset(self, held: set[str]) -> None:
        self.held, self.bodies = held, {}
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def handle(self, request, environ, start_response):
        with self._lock:
            self.bodies.setdefault(request.action, []).append(request.body)
        if request.action in self.held:
            self._open.wait(60)
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def gate():
    return Gate()


@pytest.fixture(scope="module")
def gated_emulator(gate):
    server = EmulatedAws(wrap=chain(gate)).start()
    yield server
    server.stop()


class Processes:
    """envctl runs as processes of their own against the gated emulator."""

    def __init__(self, gate: Gate, endpoint: str, workdir: Path):
        self.gate = gate
        self.endpoint = endpoint
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ENVCTL_"))}
        self.env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                        AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1",
                        PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def start(self, *args: str) -> subprocess.Popen:
        """`python -m envctl --specs specs ARGS…`, its output piped."""
        return subprocess.Popen([sys.executable, "-m", "envctl", "--specs", "specs", *args], cwd=self.workdir,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def lock_item(self):
        ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=self.endpoint,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        return ddb.get_item(TableName="envctl-locks", Key={"environment": {"S": "acme/qa"}},
                            ConsistentRead=True).get("Item")

    def until(self, what: str, condition, timeout: float = 60.0) -> None:
        """Wait (bounded) until `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.05)

    def arrived(self, action: str) -> int:
        return len(self.gate.bodies.get(action, []))

    def tried_the_lock(self, process: subprocess.Popen) -> bool:
        """Whether `process` has asked for the lock (a PutItem naming its pid) at least once."""
        pid = re.compile(rb'"pid":\s*\{"N":\s*"%d"\}' % process.pid)
        return any(pid.search(body) for body in list(self.gate.bodies.get("PutItem", [])))


@pytest.fixture
def processes(gated_emulator, gate, workdir, write_spec):
    """The spec of acme/qa, and an emulator that holds back every CreateQueue until the
    test opens the gate: a create is surely in the middle of its work meanwhile."""
    gated_emulator.reset()
    gate.reset({"CreateQueue"})
    write_spec("qa.yaml", QA)
    yield Processes(gate, gated_emulator.endpoint, workdir)
    gate.open()


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


def test_two_creates_at_once_one_works_the_other_fails_or_waits(processes):
    first = processes.start("create", "qa", "--yes", "--parallelism", "1")
    processes.until("the first create is creating a queue", lambda: processes.arrived("CreateQueue") == 1)
    holder = processes.lock_item()
    # While it works: one run that will not wait, one that will.
    impatient = processes.start("create", "qa", "--yes", "--lock-timeout", "0")
    patient = processes.start("create", "qa", "--yes", "--lock-timeout", "120")
    impatient_code, _, impatient_err = finish(impatient)
    # By the patient run's own PutItem: the first run's count varies (it makes the lock table).
    processes.until("the patient run found the lock taken", lambda: processes.tried_the_lock(patient))
    processes.gate.open()

    first_code, first_out, first_err = finish(first)
    patient_code, patient_out, patient_err = finish(patient)

    assert (first_code, first_err) == (0, ""), first_out + first_err
    assert first_out.splitlines()[-1].startswith("Done: 3 created in ")
    assert holder["pid"]["N"] == str(first.pid) and holder["command"]["S"] == "create"
    assert impatient_code == 1
    assert re.fullmatch(rf"error: acme/qa is locked by {re.escape(holder['holder']['S'])} \(pid {first.pid}, create, "
                        r"since \d\d:\d\d:\d\d UTC, lease until \d\d:\d\d:\d\d UTC\); wait, or run `envctl unlock qa` "
                        r"if that run is dead\n", impatient_err), impatient_err
    # The patient one planned while the first was at work, waited, planned again and found
    # the work done.
    assert patient_code == 0, patient_out + patient_err
    assert patient_err.startswith(f"waiting for the lock of acme/qa, held by {holder['holder']['S']} "
                                  f"(pid {first.pid}, create, since "), patient_out + patient_err
    assert "Traceback" not in patient_err
    assert patient_out.endswith("Nothing left to do: another run changed acme/qa while this one waited for the "
                                "lock.\n")
    assert processes.arrived("CreateQueue") == 3                              # nothing made twice
    assert processes.lock_item() is None


@pytest.mark.parametrize("signals,code", [([signal.SIGINT], 1), ([signal.SIGINT, signal.SIGINT], 130),
                                          ([signal.SIGTERM], 143)], ids=["ctrl-c", "ctrl-c-twice", "sigterm"])
def test_ctrl_c_or_sigterm_in_the_middle_of_a_create_releases_the_lock(processes, signals, code):
    run = processes.start("create", "qa", "--yes", "--parallelism", "1")
    processes.until("the create is creating a queue", lambda: processes.arrived("CreateQueue") == 1)
    assert processes.lock_item()["pid"]["N"] == str(run.pid)

    for sent in signals:
        run.send_signal(sent)
        time.sleep(0.2)
    processes.gate.open()                     # the call in flight ends; nothing new starts
    returncode, stdout, stderr = finish(run)

    assert returncode == code, stdout + stderr
    assert "Traceback" not in stderr
    assert processes.arrived("CreateQueue") == 1
    assert processes.lock_item() is None                                     # released on the way out
