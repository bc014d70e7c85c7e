"""Every failure explains itself: a clear sentence on stderr and exit 1, never a traceback;
`-v` adds a traceback only for bugs.

AWS's refusals (expired credentials, AccessDenied on one call) come from a small WSGI layer
in front of the emulator that answers chosen calls with AWS's own error, in the call's
protocol; the rest goes through to moto.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import boto3
import pytest

from envctl.cli.app import App
from envctl.sandbox.middleware import AwsRequest, Layer, chain, error_response
from envctl.sandbox.server import EmulatedAws
from tests.cli.conftest import THREE_QUEUES

QA = THREE_QUEUES
DENIED = ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sqs:CreateQueue on resource: "
          "arn:aws:sqs:eu-north-1:123456789012:acme-qa-imports because no identity-based policy allows the "
          "sqs:CreateQueue action")
EXPIRED = "The security token included in the request is expired"


class Refuse(Layer):
    """Answers the calls of chosen actions (those whose body matches, if `matching` is given)
    with an AWS error instead of passing them on."""

    def __init__(self):
        self._lock = threading.Lock()
        self.rules: list[tuple[str, Callable[[AwsRequest], bool], int, str, str]] = []
        self.refused: list[str] = []

    def refuse(self, action: str, status: int, code: str, message: str, matching: bytes | None = None) -> None:
        with self._lock:
            self.rules.append((action, lambda r: matching is None or matching in r.body, status, code, message))

    def clear(self) -> None:
        with self._lock:
            self.rules, self.refused = [], []

    def handle(self, request: AwsRequest, environ, start_response):
        with self._lock:
            rule = next((r for r in self.rules if r[0] == request.action and r[1](request)), None)
            if rule is not None:
                self.refused.append(request.action)
        if rule is None:
            return self.app(environ, start_response)
        _, _, status, code, message = rule
        return error_response(request, start_response, status, code, message)


@pytest.fixture(scope="module")
def refusals():
    return Refuse()


@pytest.fixture(scope="module")
def refusing_emulator(refusals):
    server = EmulatedAws(wrap=chain(refusals)).start()
    yield server
    server.stop()


class Refusing:
    """What a test gets: `refuse(...)` calls, the calls `refused` so far, and plain boto3."""

    def __init__(self, layer: Refuse, emulator: EmulatedAws):
        self.layer, self.emulator = layer, emulator
        self.refuse = layer.refuse

    @property
    def refused(self) -> list[str]:
        return self.layer.refused

    def sqs(self):
        return boto3.client("sqs", region_name="eu-north-1", endpoint_url=self.emulator.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def refuse(refusing_emulator, refusals, monkeypatch, write_spec) -> Refusing:
    """The emulator behind the refusing layer (nothing refused yet), and specs/qa.yaml."""
    refusing_emulator.reset()
    refusals.clear()
    for name, value in (("AWS_ENDPOINT_URL", refusing_emulator.endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "eu-north-1")):
        monkeypatch.setenv(name, value)
    write_spec("qa.yaml", QA)
    yield Refusing(refusals, refusing_emulator)
    refusals.clear()


def explained(envctl, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    """Run `envctl ARGS` plainly and with -v: the same one-line error either way, no traceback.
    Returns (code, stdout, stderr) of the plain run."""
    plain = envctl(*args, env=env)
    verbose = envctl("-v", *args, env=env)
    for ran in (plain, verbose):
        assert ran.code == 1, ran.stdout + ran.stderr
        assert ran.clean, ran.stdout + ran.stderr
        assert len(ran.stderr.splitlines()) == 1, ran.stderr
    assert verbose.stderr == plain.stderr
    return plain.code, plain.stdout, plain.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ reaching AWS

def test_missing_credentials(aws, envctl, write_spec):
    write_spec("qa.yaml", QA)

    _, _, stderr = explained(envctl, "diff", "qa", env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})

    assert stderr == ("error: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                      "or use --sandbox\n")
    assert aws.log.snapshot() == []


def test_expired_credentials(refuse, envctl):
    refuse.refuse("GetCallerIdentity", 403, "ExpiredToken", EXPIRED)

    _, _, stderr = explained(envctl, "create", "qa", "--yes")

    assert stderr == "error: the AWS credentials have expired; log in again (aws sso login, or new keys)\n"
    assert set(refuse.refused) == {"GetCallerIdentity"}                      # nothing after it was tried


def test_credentials_that_expire_during_the_run(refuse, envctl):
    refuse.refuse("CreateQueue", 400, "ExpiredToken", EXPIRED)

    result = envctl("create", "qa", "--yes")

    assert result.code == 1 and result.clean
    failed = sorted(line for line in result.stdout.splitlines() if line.startswith("✗"))
    assert failed[0] == ("✗ failed     queue/exports     creating queue (queue/exports): CreateQueue: ExpiredToken: "
                         f"{EXPIRED} (the AWS credentials have expired; log in again: aws sso login, or new keys)")
    assert len(failed) == 3
    assert result.stderr == ("error: not every change to acme/qa was made (see above); once the cause is fixed, "
                             "run create again to finish\n")


@pytest.mark.parametrize("endpoint", [False, True], ids=["aws", "emulator"])
def test_unknown_region(aws, envctl, write_spec, endpoint):
    write_spec("qa.yaml", QA)
    env = None if endpoint else {"AWS_ENDPOINT_URL": None}

    _, _, stderr = explained(envctl, "--region", "xx-nowhere-1", "diff", "qa", env=env)

    # An emulator answers any region (moto with an HTML 500): refused before any call either way.
    assert stderr == ("error: unknown AWS region 'xx-nowhere-1': give one of AWS's regions (e.g. eu-north-1) with "
                      "--region or the spec's region:\n")
    assert aws.log.snapshot() == []


def test_an_endpoint_that_does_not_answer(envctl, write_spec):
    write_spec("qa.yaml", QA)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    _, _, stderr = explained(envctl, "--endpoint-url", endpoint, "create", "qa", "--yes", env=env)

    assert stderr == (f"error: cannot reach the endpoint {endpoint} (Could not connect to the endpoint URL: "
                      f"\"{endpoint}/\"); check --endpoint-url / AWS_ENDPOINT_URL, or start the sandbox\n")


# ------------------------------------------------------------------ during a run

def test_access_denied_on_one_call_names_the_action_and_the_resource(refuse, envctl):
    refuse.refuse("CreateQueue", 400, "AccessDenied", DENIED, matching=b"acme-qa-imports")

    result = envctl("create", "qa", "--yes")

    assert result.code == 1
    assert result.clean
    assert [line for line in result.stdout.splitlines() if line.startswith("✗")] == [
        f"✗ failed     queue/imports     creating queue (queue/imports): CreateQueue: AccessDenied: {DENIED}"]
    assert result.stdout.splitlines()[-1].startswith("Failed: 2 created, 1 failed in ")
    assert result.stderr == ("error: not every change to acme/qa was made (see above); once the cause is fixed, "
                             "run create again to finish\n")
    assert refuse.refused == ["CreateQueue"]                                 # not retried: it is permanent
    urls = refuse.sqs().list_queues()["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == ["acme-qa-exports", "acme-qa-work-units"]


def test_access_denied_while_discovering(refuse, envctl):
    refuse.refuse("GetResources", 400, "AccessDeniedException",
                  "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: tag:GetResources")

    _, _, stderr = explained(envctl, "diff", "qa")

    assert stderr.startswith("error: discovering ")
    assert stderr.endswith(" resources: GetResources: AccessDeniedException: User: arn:aws:iam::123456789012:user/ci "
                           "is not authorized to perform: tag:GetResources\n")


def test_a_resource_changed_by_hand_between_plan_and_apply(refuse, envctl, write_spec, monkeypatch):
    assert envctl("create", "qa", "--yes").code == 0
    write_spec("qa.yaml", QA.replace("imports: {}", "imports: {visibility_timeout_s: 60}"))
    client = refuse.sqs()
    imports = client.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]

    def meanwhile(app, yes, question, expect=None):      # someone changes it while the user reads the plan
        client.set_queue_attributes(QueueUrl=imports, Attributes={"MessageRetentionPeriod": "86400"})

    monkeypatch.setattr(App, "confirm_or_abort", meanwhile)
    result = envctl("create", "qa")

    assert result.code == 1 and result.clean
    assert "~ queue/imports" in result.stdout                                 # the plan shown: an update
    assert [line for line in result.stdout.splitlines() if line.startswith("✗")] == [
        "✗ failed     queue/imports  updating queue (queue/imports): changed since plan; run diff again"]
    assert result.stderr == ("error: not every change to acme/qa was made (see above); once the cause is fixed, "
                             "run create again to finish\n")
    attributes = client.get_queue_attributes(QueueUrl=imports, AttributeNames=["All"])["Attributes"]
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("30", "86400")


# ------------------------------------------------------------------ the user's own mistakes, and bugs

def test_a_spec_error(envctl, write_spec):
    write_spec("qa.yaml", QA.replace("imports: {}", "imports: {visibility_timeout_s: soon}"))

    _, _, stderr = explained(envctl, "create", "qa", "--yes")

    assert stderr == ("error: specs/qa.yaml:6: queues.imports.visibility_timeout_s: input should be a valid integer, "
                      "unable to parse string as an integer\n")


def test_a_bug_is_said_to_be_one_and_shows_its_traceback_with_v(aws, envctl, write_spec, monkeypatch):
    from envctl.provisioners.queue import Queue

    def broken(self, ctx):
        raise KeyError("QueueUrls")

    monkeypatch.setattr(Queue, "discover", broken)
    write_spec("qa.yaml", QA)

    plain = envctl("diff", "qa")
    verbose = envctl("-v", "diff", "qa")

    assert (plain.code, plain.stderr) == (1, "error: internal error: KeyError: 'QueueUrls' (run with -v for the "
                                             "traceback, and please report it)\n")
    assert verbose.code == 1
    assert "Traceback" in verbose.stderr and "QueueUrls" in verbose.stderr
