"""Temporary vs permanent errors, and the bounded, jittered retry."""
from __future__ import annotations

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from envctl.aws import errors
from envctl.engine.retry import Permanent, Temporary, backoff, classify, retry
from envctl.aws.waiters import WaitTimeout
from tests.engine.fakes import aws_error

CASES = [
    ("throttling", aws_error("Throttling"), Temporary),
    ("request limit", aws_error("RequestLimitExceeded"), Temporary),
    ("5xx", aws_error("InternalError", 500), Temporary),
    ("503 with no code", aws_error("", 503), Temporary),
    ("dropped connection", ConnectionClosedError(endpoint_url="https://sqs"), Temporary),
    ("no connection", EndpointConnectionError(endpoint_url="https://sqs"), Temporary),
    ("dependency still going away", aws_error("DependencyViolation"), Temporary),
    ("eventual consistency", aws_error("InvalidVpcID.NotFound"), Temporary),
    ("lambda: role not assumable yet", aws_error(
        "InvalidParameterValueException", message="The role defined for the function cannot be assumed by Lambda."),
     Temporary),
    ("ec2: instance profile not visible yet", aws_error(
        "InvalidParameterValue", message="Value (acme-qa-app) for parameter iamInstanceProfile.name is invalid. "
                                         "Invalid IAM Instance Profile name"), Temporary),
    ("a genuinely invalid parameter", aws_error("InvalidParameterValue", message="Invalid CIDR 10.0.0.0/33"),
     Permanent),
    ("access denied", aws_error("AccessDenied", 403), Permanent),
    ("validation", aws_error("ValidationError"), Permanent),
    ("wait timed out", WaitTimeout("NAT gateway nat-1", 10, "pending", None, {"available"}), Permanent),
    ("a bug", KeyError("oops"), Permanent),
    ("explicitly temporary", Temporary("later"), Temporary),
    ("explicitly permanent", Permanent("never"), Permanent),
]


@pytest.mark.parametrize("name, error, expected", CASES, ids=[c[0] for c in CASES])
def test_classify(name, error, expected):
    assert classify(error) is expected


def test_ambiguous_failures_are_those_that_may_have_happened():
    assert errors.is_ambiguous(aws_error("InternalError", 500))
    assert errors.is_ambiguous(ConnectionClosedError(endpoint_url="https://ec2"))
    assert not errors.is_ambiguous(EndpointConnectionError(endpoint_url="https://ec2"))   # never sent
    assert not errors.is_ambiguous(aws_error("Throttling"))                               # refused, not done


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s

    def __call__(self):
        return self.now


def failing(*errors_then_value):
    answers = list(errors_then_value)
    calls = []

    def fn():
        calls.append(1)
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    fn.calls = calls
    return fn


def test_retries_temporary_errors_then_returns():
    clock = Clock()
    heard = []
    fn = failing(aws_error("Throttling"), aws_error("DependencyViolation"), "done")
    assert retry(fn, sleep=clock.sleep, clock=clock, on_retry=lambda n, e, d: heard.append((n, errors.error_code(e), d)),
                 rand=lambda: 1.0) == "done"
    assert clock.sleeps == [1.0, 2.0]
    assert heard == [(1, "Throttling", 1.0), (2, "DependencyViolation", 2.0)]


def test_permanent_errors_are_raised_at_once():
    clock = Clock()
    fn = failing(aws_error("AccessDenied", 403), "never")
    with pytest.raises(Exception, match="AccessDenied"):
        retry(fn, sleep=clock.sleep, clock=clock)
    assert len(fn.calls) == 1 and clock.sleeps == []


def test_gives_up_at_the_deadline_with_the_last_error():
    clock = Clock()
    fn = failing(*[aws_error("DependencyViolation", message=f"try {i}") for i in range(100)])
    with pytest.raises(Exception, match="try 9"):
        retry(fn, deadline_s=120, sleep=clock.sleep, clock=clock, rand=lambda: 1.0)
    assert clock.now <= 120
    assert clock.sleeps == [1, 2, 4, 8, 16, 20, 20, 20, 20]    # capped at 20 s; one more would pass 120 s


def test_backoff_is_jittered_within_half_to_full():
    assert backoff(1, rand=lambda: 0.0) == 0.5 and backoff(1, rand=lambda: 1.0) == 1.0
    assert backoff(4, rand=lambda: 0.0) == 4 and backoff(4, rand=lambda: 1.0) == 8
    assert backoff(10, rand=lambda: 1.0) == 20
