"""The client-side token buckets (envctl/aws/ratelimit.py), on a clock the test moves."""
from __future__ import annotations

import threading

import pytest

from envctl.aws import ratelimit
from envctl.aws.ratelimit import Limit, RateLimiter, TokenBucket
from envctl.aws.session import is_read


class Clock:
    """Time that passes only when someone sleeps (or the test says so)."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def bucket(rate: float, burst: float, clock: Clock) -> TokenBucket:
    # MARGIN is 0.9: ask for 1/0.9 of what the test wants to see.
    return TokenBucket(Limit(rate / ratelimit.MARGIN, burst / ratelimit.MARGIN), clock=clock, sleep=clock.sleep)


def test_a_full_bucket_lets_its_burst_through_then_spaces_calls_at_its_rate():
    clock = Clock()
    b = bucket(rate=5, burst=3, clock=clock)

    waits = [b.take() for _ in range(6)]

    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.2, 0.4, 0.6])    # each waits for its own token, in order


def test_tokens_come_back_with_time_but_never_beyond_the_burst():
    clock = Clock()
    b = bucket(rate=5, burst=3, clock=clock)
    for _ in range(3):
        b.take()

    clock.now += 100.0
    waits = [b.take() for _ in range(4)]

    assert waits == pytest.approx([0, 0, 0, 0.2])


def test_a_throttle_halves_the_rate_and_empties_the_bucket_and_successes_win_it_back():
    clock = Clock()
    b = bucket(rate=10, burst=10, clock=clock)

    b.throttled()
    assert b.rate == pytest.approx(5)
    assert b.take() == pytest.approx(0.2)          # empty: the next token comes at the halved rate
    b.succeeded()
    assert b.rate == pytest.approx(5)              # no time has passed: nothing grown back
    clock.now += 4.0
    b.succeeded()
    assert b.rate == pytest.approx(5 + 10 * ratelimit.RECOVERY * 4)
    clock.now += 100.0
    b.succeeded()
    assert b.rate == pytest.approx(10)             # back to the configured rate, never above it


def test_throttles_never_stop_a_bucket():
    clock = Clock()
    b = bucket(rate=10, burst=10, clock=clock)
    for _ in range(50):
        b.throttled()
    assert b.rate == pytest.approx(10 * ratelimit.SLOWEST)


def test_ec2_actions_each_have_a_bucket_of_their_kind():
    limiter = RateLimiter(is_read=is_read)

    assert limiter.bucket("ec2", "DescribeVpcs") is limiter.bucket("ec2", "DescribeVpcs")
    assert limiter.bucket("ec2", "DescribeVpcs") is not limiter.bucket("ec2", "DescribeSubnets")
    assert limiter.bucket("ec2", "DescribeVpcs").ceiling == pytest.approx(20 * ratelimit.MARGIN)
    assert limiter.bucket("ec2", "CreateVpc").ceiling == pytest.approx(5 * ratelimit.MARGIN)
    assert limiter.bucket("ec2", "CreateVpc").burst == pytest.approx(200 * ratelimit.MARGIN)
    assert limiter.bucket("ec2", "RunInstances").ceiling == pytest.approx(2 * ratelimit.MARGIN)
    assert limiter.bucket("monitoring", "PutMetricAlarm").ceiling == pytest.approx(3 * ratelimit.MARGIN)
    assert limiter.bucket("sqs", "CreateQueue").ceiling == pytest.approx(ratelimit.DEFAULT.rate * ratelimit.MARGIN)


def test_actions_aws_counts_together_share_one_bucket():
    # SQS: "Tagging actions are limited to 30 TPS per AWS account", reads and writes alike.
    limiter = RateLimiter(is_read=is_read)

    tagging = limiter.bucket("sqs", "ListQueueTags")
    assert limiter.bucket("sqs", "TagQueue") is tagging
    assert limiter.bucket("sqs", "UntagQueue") is tagging
    assert tagging.ceiling == pytest.approx(30 * ratelimit.MARGIN)
    assert limiter.bucket("sqs", "GetQueueAttributes") is not tagging
    assert limiter.bucket("sqs", "ListQueueTags") is tagging        # asked again: the same one
    # Lambda: "15 requests per second across all APIs", but GetFunction and GetPolicy.
    control = limiter.bucket("lambda", "CreateFunction")
    assert limiter.bucket("lambda", "AddPermission") is control
    assert control.ceiling == pytest.approx(15 * ratelimit.MARGIN)
    assert limiter.bucket("lambda", "GetFunction").ceiling == pytest.approx(100 * ratelimit.MARGIN)
    assert limiter.bucket("logs", "PutRetentionPolicy") is not limiter.bucket("logs", "PutMetricFilter")


def test_sns_topic_calls_are_paced_at_their_regions_published_rate():
    def ceiling(region: str) -> float:
        return RateLimiter(is_read=is_read, region=region).bucket("sns", "GetTopicAttributes").ceiling

    assert ceiling("us-east-1") == pytest.approx(3000 * ratelimit.MARGIN)
    assert ceiling("eu-central-1") == pytest.approx(150 * ratelimit.MARGIN)
    assert ceiling("eu-north-1") == pytest.approx(30 * ratelimit.MARGIN)
    assert ceiling("ap-southeast-5") == pytest.approx(30 * ratelimit.MARGIN)    # not in AWS's table: its lowest


class Answer:
    def __init__(self, status: int):
        self.status_code = status


class Operation:
    def __init__(self, name: str):
        self.name = name


def test_the_botocore_handlers_take_a_token_per_attempt_and_learn_from_throttles():
    clock = Clock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, is_read=is_read)
    before_send, after_attempt = limiter.handlers("monitoring")

    for _ in range(2):                              # the burst: 3 published, 2.7 kept
        before_send(event_name="before-send.cloudwatch.PutMetricAlarm")
    assert clock.slept == []
    before_send(event_name="before-send.cloudwatch.PutMetricAlarm")
    assert clock.slept == pytest.approx([0.3 / 2.7])

    throttled = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
    after_attempt(response=(Answer(400), throttled), operation=Operation("PutMetricAlarm"))
    assert limiter.throttles == 1
    assert limiter.bucket("monitoring", "PutMetricAlarm").rate == pytest.approx(3 * ratelimit.MARGIN / 2)
    after_attempt(response=(Answer(400), {"Error": {"Code": "ValidationError"}}),
                  operation=Operation("PutMetricAlarm"))
    after_attempt(response=None, caught_exception=ConnectionError(), operation=Operation("PutMetricAlarm"))
    assert limiter.throttles == 1                   # other failures say nothing about the rate
