"""Client-side rate limiting: a token bucket per API action, set from AWS's limits, adapting to throttles.

AWS throttles each account per region with token buckets. EC2 publishes its own: every API
action has a bucket, and its size and refill rate depend on the kind of action
(https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). CloudWatch, CloudWatch
Logs, Lambda, SNS, SQS (its tagging), DynamoDB, EventBridge and RDS publish rates for some or all
of their actions (the tables below say where). envctl keeps the same buckets on its side and
takes a token before every HTTP attempt (retries too), so raising --parallelism queues calls
here instead of sending a storm that AWS refuses: botocore's retry quota runs dry under a storm,
and calls then fail that patience would have let through.

The buckets cannot see other clients of the account, and many actions have no published limit,
so each bucket also adapts: a throttling answer halves its rate (and empties it), and
while calls go through the rate grows back slowly (RECOVERY), up to the configured rate.

A bucket may go into debt: a caller takes its token at once and sleeps until the token would
have arrived, outside the lock, so waiting callers are served in the order they came.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from envctl.aws import errors


@dataclass(frozen=True)
class Limit:
    rate: float       # tokens added a second
    burst: float      # what the bucket holds when full
    # The name of a bucket that several actions of the service fill together, where AWS counts
    # them as one ("" = the action's own bucket).
    shared: str = ""


# (signing name, kind) → Limit, where kind is "read" or "write" (aws.session.is_read).
# EC2: the published request-rate limits for non-mutating (Describe*) and mutating actions.
# CloudWatch: its published per-action quotas (PutMetricAlarm and DeleteAlarms 3/s, DescribeAlarms 9/s).
LIMITS: dict[tuple[str, str], Limit] = {
    ("ec2", "read"): Limit(20, 100),
    ("ec2", "write"): Limit(5, 200),
    ("monitoring", "read"): Limit(9, 9),
    ("monitoring", "write"): Limit(3, 3),
}


def _each(rate: float, service: str, *actions: str, shared: str = "") -> dict[tuple[str, str], Limit]:
    """The same published rate for several actions: a bucket each, or one they share. Only EC2 and
    RDS publish a burst; for the others a bucket holds one second's worth."""
    return {(service, action): Limit(rate, rate, shared) for action in actions}


# Actions whose published limit is their own (or not their kind's). Sources, per account and region
# unless said: CloudWatch Logs quotas (cloudwatch_limits_cwl); Lambda quotas, "Lambda API requests";
# SNS in the General Reference, "API throttling"; the DynamoDB API reference; EventBridge quotas;
# RDS "API throttling"; SQS queue quotas; the General Reference's CloudWatch quotas.
# Where AWS names one quota for several APIs and does not say whether it is shared, envctl reads it
# as shared (EventBridge's control plane, RDS): a slower run, never a storm of throttles.
ACTION_LIMITS: dict[tuple[str, str], Limit] = {
    ("ec2", "RunInstances"): Limit(2, 1000),
    ("ec2", "TerminateInstances"): Limit(20, 1000),
    **_each(10, "monitoring", "ListTagsForResource"),
    **_each(20, "monitoring", "TagResource", "UntagResource"),
    **_each(10, "logs", "CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups"),
    **_each(5, "logs", "PutRetentionPolicy", "DeleteRetentionPolicy", "PutMetricFilter", "DeleteMetricFilter",
            "DescribeMetricFilters", "ListTagsForResource", "TagResource", "UntagResource", "ListTagsLogGroup",
            "TagLogGroup", "UntagLogGroup"),
    # "15 requests per second across all APIs (not 15 requests per second per API)", except these two.
    **_each(15, "lambda", "AddPermission", "RemovePermission", "CreateFunction", "DeleteFunction",
            "UpdateFunctionCode", "UpdateFunctionConfiguration", "GetFunctionConfiguration", "TagResource",
            "UntagResource", "ListTags", shared="control plane"),
    **_each(100, "lambda", "GetFunction"),
    **_each(15, "lambda", "GetPolicy"),
    **_each(30, "sns", "ListSubscriptions", "ListSubscriptionsByTopic", "ListTopics"),
    **_each(100, "sns", "Subscribe", "Unsubscribe"),
    **_each(10, "sns", "ListTagsForResource", "TagResource", "UntagResource"),
    # "Tagging actions are limited to 30 TPS per AWS account" (5 in older versions of the guide).
    **_each(30, "sqs", "TagQueue", "UntagQueue", "ListQueueTags", shared="tagging"),
    **_each(10, "dynamodb", "DescribeContinuousBackups", "ListTagsOfResource"),
    **_each(5, "dynamodb", "TagResource", "UntagResource"),
    **_each(50, "events", "PutRule", "DeleteRule", "DescribeRule", "ListRules", "PutTargets", "RemoveTargets",
            "ListTargetsByRule", "ListTagsForResource", "TagResource", "UntagResource", shared="control plane"),
}
# RDS: "up to 300 requests in a burst and a sustained 12 requests per second", for the account.
SERVICE_LIMITS: dict[str, Limit] = {"rds": Limit(12, 300, shared="api")}

# SNS: one rate for managing topics and subscriptions, by region (soft quotas; a bucket per
# action). A region the table does not name gets its lowest.
SNS_TOPIC_ACTIONS = frozenset({"CreateTopic", "DeleteTopic", "GetTopicAttributes", "SetTopicAttributes",
                               "GetSubscriptionAttributes", "SetSubscriptionAttributes", "ConfirmSubscription"})
SNS_TOPIC_RATES = {"us-east-1": 3000, "us-west-2": 900, "eu-west-1": 900,
                   **dict.fromkeys(["us-east-2", "us-west-1", "ap-south-1", "ap-northeast-2", "ap-southeast-1",
                                    "ap-southeast-2", "ap-northeast-1", "eu-central-1"], 150)}
SNS_TOPIC_RATE_ELSEWHERE = 30

# Others publish no limits (IAM, Auto Scaling, S3's bucket APIs, SQS apart from its tagging, DynamoDB's
# other control plane calls, the Tagging API): DEFAULT refills generously but holds little, so
# that a first burst cannot overrun a smaller real bucket by much; the adaptation finds the real rate.
DEFAULT = Limit(50, 10)
# Envctl aims a little under the published rates: its clock and AWS's are not the same clock,
# and requests sent in order can arrive out of it.
MARGIN = 0.9
SLOWEST = 0.05        # adaptation never goes below this share of the configured rate
RECOVERY = 0.05       # after a throttle, the rate grows back by this share of the configured rate a second


def published_limit(service: str, action: str, read: bool, region: str = "") -> Limit | None:
    """AWS's published limit of one action in `region`: its own, else its service's or its kind's in
    its service; None if unpublished."""
    if service == "sns" and action in SNS_TOPIC_ACTIONS:
        rate = SNS_TOPIC_RATES.get(region, SNS_TOPIC_RATE_ELSEWHERE)
        return Limit(rate, rate)
    return (ACTION_LIMITS.get((service, action)) or SERVICE_LIMITS.get(service)
            or LIMITS.get((service, "read" if read else "write")))


def limit_for(service: str, action: str, read: bool, region: str = "") -> Limit:
    return published_limit(service, action, read, region) or DEFAULT


def bucket_name(action: str, limit: Limit) -> str:
    """Which of its service's buckets an action takes its tokens from: its own, or the shared one."""
    return limit.shared or action


class TokenBucket:
    def __init__(self, limit: Limit, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.ceiling = limit.rate * MARGIN
        self.rate = self.ceiling
        self.burst = max(1.0, limit.burst * MARGIN)
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._last = self._grown = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until it is there; returns the seconds slept."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        """AWS refused a call of this bucket for its rate: halve the rate and start empty."""
        with self._lock:
            self._refill()
            self.rate = max(self.ceiling * SLOWEST, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)
            self._grown = self._last

    def succeeded(self) -> None:
        with self._lock:
            if self.rate < self.ceiling:
                self._refill()
                self.rate = min(self.ceiling, self.rate + self.ceiling * RECOVERY * (self._last - self._grown))
                self._grown = self._last

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now


class RateLimiter:
    """The buckets of one AWS session (one account and region), made on first use.

    `before_send` and `after_attempt` are botocore event handlers (see AwsSession.client):
    the first takes a token before each HTTP attempt, the second tells the bucket how AWS
    answered.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 is_read: Callable[[str], bool], region: str = ""):
        self._clock, self._sleep, self._is_read, self._region = clock, sleep, is_read, region
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._of_action: dict[tuple[str, str], TokenBucket] = {}     # (service, action) → its bucket
        self._lock = threading.Lock()
        self.throttles = 0          # throttling answers seen (each one also retried by botocore)

    def bucket(self, service: str, action: str) -> TokenBucket:
        b = self._of_action.get((service, action))
        if b is not None:
            return b
        limit = limit_for(service, action, self._is_read(action), self._region)
        key = (service, bucket_name(action, limit))
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = TokenBucket(limit, clock=self._clock, sleep=self._sleep)
            self._of_action[(service, action)] = b
            return b

    def handlers(self, service: str) -> tuple[Callable, Callable]:
        """botocore handlers for one client whose signing name is `service`."""

        def before_send(event_name: str = "", **kwargs) -> None:
            self.bucket(service, event_name.rsplit(".", 1)[-1]).take()

        def after_attempt(response=None, operation=None, **kwargs) -> None:
            if response is None or operation is None:
                return None             # no answer (a dropped connection): nothing said about the rate
            bucket = self.bucket(service, operation.name)
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code", "")
            if code in errors.THROTTLE or getattr(http, "status_code", 0) == 429:
                with self._lock:
                    self.throttles += 1
                bucket.throttled()
            elif getattr(http, "status_code", 500) < 400:
                bucket.succeeded()
            return None                 # never decides the retry: botocore's handler does

        return before_send, after_attempt
