"""WSGI layers in front of the emulator: faults, latency, rate limits, and AWS's answers to repeats.

Each layer wraps the app inside it; `chain` stacks them, outermost first, for
`EmulatedAws(wrap=...)`:

    faults = FaultInjector()
    server = EmulatedAws(wrap=chain(Latency(0.05), faults, ClientTokens(), RepeatedCalls())).start()
    faults.configure(Rates(throttle=0.1, error_500=0.02, lost_reply=0.02), seed=7)

- `FaultInjector` answers some calls with the protocol's own throttling error, a 500 or a
  503, a dropped connection (the call is not carried out) or a lost reply (the call is
  carried out, then the connection closes without an answer). Decisions come from seeded
  random.Random streams, one per action: the same seed gives the n-th call of each action
  the same fate. Its `log` says what it did to each call.
- `Latency` answers each call a set time after it arrived; `RateLimit` throttles calls beyond a
  rate per action.
- `Tripwire` kills a client process (SIGKILL) at its N-th call: a crash at an exact point.
- `Recorder` keeps the requests themselves (parameters as sent), for tests that check what
  was sent (a password that must never be), not only which calls were made.
- `ClientTokens` gives EC2 AWS's client-token idempotency, which moto lacks: a repeated call
  with the same ClientToken gets the first answer again without reaching moto; the same
  token with other parameters is refused with IdempotentParameterMismatch.
- `RepeatedCalls` answers a few other repeated calls as AWS does where moto does not (an
  auto scaling group or a Lambda permission made twice, a metric filter put twice), and tags
  a bucket made with tags in its CreateBucketConfiguration, which moto ignores.

`ClientTokens` and `RepeatedCalls` must sit inside `FaultInjector`, so that they see the
calls a lost reply carried out. The emulator's control API (/moto-api) is never delayed,
throttled or faulted; a reset (POST /moto-api/reset) also makes the layers forget.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from enum import Enum
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape as xml_escape

from envctl.aws.ratelimit import Limit, bucket_name, published_limit
from envctl.sandbox.server import RECEIVED, ReplayBody, describe_request

Wsgi = Callable  # a WSGI application: (environ, start_response) → iterable of bytes


# ------------------------------------------------------------------ what a request is

@dataclass(frozen=True)
class AwsRequest:
    service: str              # the signing name: ec2, iam, sqs, s3, lambda, monitoring, tagging …
    action: str               # CreateVpc, or "PUT /bucket" for REST protocols
    region: str
    mutating: bool
    protocol: str             # ec2 | query | json | rest-xml | rest-json
    account: str              # moto's account header, else the access key: whose tokens these are
    content_type: str
    body: bytes

    def params(self) -> list[tuple[str, str]]:
        """The form parameters of a query-protocol call (EC2, IAM, …), in order."""
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)


_REST_XML = frozenset({"s3", "route53", "cloudfront"})


def aws_request(environ) -> AwsRequest:
    """The request's service, action and protocol; parsed once and kept in the environ."""
    cached = environ.get("envctl.request")
    if cached is not None:
        return cached
    service, action, region, mutating = describe_request(environ)   # may have read a form body already
    body = _read_body(environ)
    content_type = environ.get("CONTENT_TYPE", "")
    if service == "ec2":
        protocol = "ec2"
    elif environ.get("HTTP_X_AMZ_TARGET"):
        protocol = "json"
    elif "x-www-form-urlencoded" in content_type or "Action=" in environ.get("QUERY_STRING", ""):
        protocol = "query"
    elif service in _REST_XML:
        protocol = "rest-xml"
    else:
        protocol = "rest-json"
    account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or _access_key(environ)
    request = AwsRequest(service, action, region, mutating, protocol, account, content_type, body)
    environ["envctl.request"] = request
    return request


def is_control(environ) -> bool:
    """A call to the emulator's own API (reset, config), not to an AWS service."""
    return environ.get("PATH_INFO", "").startswith("/moto-api")


def _read_body(environ) -> bytes:
    """Read the body once and put it back, so the layers inside can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:             # no body, or a chunked one: left to the app as it is
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = ReplayBody(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _access_key(environ) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    start = auth.find("Credential=")
    return auth[start + len("Credential="):].split("/", 1)[0] if start >= 0 else ""


# ------------------------------------------------------------------ AWS-shaped answers

class Fault(str, Enum):
    THROTTLE = "throttle"
    ERROR_500 = "500"
    ERROR_503 = "503"
    DROP = "drop"                 # the connection closes; the call is not carried out
    LOST_REPLY = "lost reply"     # the call is carried out; the connection closes before the answer

    def __str__(self) -> str:
        return self.value


# (status, code, message) per protocol: each the way that protocol's services say it.
_THROTTLE = {
    "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "query": (400, "Throttling", "Rate exceeded"),
    "json": (400, "ThrottlingException", "Rate exceeded"),
    "rest-xml": (503, "SlowDown", "Please reduce your request rate."),
    "rest-json": (429, "TooManyRequestsException", "Rate exceeded"),
}
_SERVER_ERRORS = {
    500: {"ec2": "InternalError", "query": "InternalFailure", "json": "InternalFailure",
          "rest-xml": "InternalError", "rest-json": "ServiceException"},
    503: {"ec2": "Unavailable", "query": "ServiceUnavailable", "json": "ServiceUnavailable",
          "rest-xml": "ServiceUnavailable", "rest-json": "ServiceException"},
}
_REASONS = {400: "Bad Request", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def throttling_response(request: AwsRequest, start_response) -> list[bytes]:
    status, code, message = _THROTTLE[request.protocol]
    return error_response(request, start_response, status, code, message)


def server_error_response(request: AwsRequest, start_response, status: int) -> list[bytes]:
    code = _SERVER_ERRORS[status][request.protocol]
    message = "We encountered an internal error. Please try again." if status == 500 else \
        "The service is unavailable. Please try again later."
    return error_response(request, start_response, status, code, message)


def error_response(request: AwsRequest, start_response, status: int, code: str, message: str) -> list[bytes]:
    """An error answer in the request's protocol, as botocore parses it from AWS."""
    request_id = str(uuid.uuid4())
    if request.protocol in ("ec2", "query", "rest-xml"):
        message = xml_escape(message)
    if request.protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif request.protocol == "query":
        kind = "Sender" if status < 500 else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    elif request.protocol == "rest-xml":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId></Error>")
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif request.protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        content_type = request.content_type if request.content_type.startswith("application/x-amz-json") \
            else "application/x-amz-json-1.1"
        headers = [("Content-Type", content_type), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    else:   # rest-json (Lambda)
        error = {"Type": "User" if status < 500 else "Service", "message": message}
        if status == 429:
            error["Reason"] = "CallerRateLimitExceeded"
        body = json.dumps(error)
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    data = body.encode()
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers + [("Content-Length", str(len(data)))])
    return [data]


def drop_connection(environ) -> None:
    """Close the client's connection without an answer (the client sees the server hang up).

    Raising a ConnectionError tells werkzeug's server that the connection is gone, so it
    writes nothing more; shutting the socket down first makes sure the client is not left
    waiting for an answer that never comes.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("connection dropped by the fault injector")


# ------------------------------------------------------------------ stacking

class Layer:
    """A WSGI middleware built before the app it wraps (see `chain`)."""

    app: Wsgi

    def around(self, app: Wsgi) -> "Layer":
        self.app = app
        return self

    def __call__(self, environ, start_response):
        if is_control(environ):
            return self.app(environ, start_response)
        return self.handle(aws_request(environ), environ, start_response)

    def handle(self, request: AwsRequest, environ, start_response):
        raise NotImplementedError


def chain(*layers: Layer) -> Callable[[Wsgi], Wsgi]:
    """`wrap` for EmulatedAws: the first layer is the outermost (sees the client first)."""

    def wrap(app: Wsgi) -> Wsgi:
        for layer in reversed(layers):
            app = layer.around(app)
        return app

    return wrap


# ------------------------------------------------------------------ faults

@dataclass(frozen=True)
class Rates:
    """The chance of each fault per eligible call (together at most 1)."""

    throttle: float = 0.0
    error_500: float = 0.0
    error_503: float = 0.0
    drop: float = 0.0
    lost_reply: float = 0.0

    def __post_init__(self):
        if any(not 0 <= getattr(self, f.name) <= 1 for f in fields(self)) or self.total() > 1:
            raise ValueError(f"fault rates must be within 0..1 and add up to at most 1: {self}")

    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def pick(self, draw: float) -> Fault | None:
        """The fault a uniform draw in [0, 1) falls on, or None."""
        edge = 0.0
        for fault, rate in ((Fault.THROTTLE, self.throttle), (Fault.ERROR_500, self.error_500),
                            (Fault.ERROR_503, self.error_503), (Fault.DROP, self.drop),
                            (Fault.LOST_REPLY, self.lost_reply)):
            edge += rate
            if draw < edge:
                return fault
        return None


@dataclass(frozen=True)
class Seen:
    """One call that reached the fault injector, and what it did to it (None: passed through)."""

    seq: int
    service: str
    action: str
    mutating: bool
    fault: Fault | None


class FaultLog:
    """Every call the injector saw, in arrival order. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: list[Seen] = []

    def add(self, service: str, action: str, mutating: bool, fault: Fault | None) -> None:
        with self._lock:
            self._seen.append(Seen(len(self._seen), service, action, mutating, fault))

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def injected(self, fault: Fault | None = None, action: str | None = None) -> list[Seen]:
        """The calls that got a fault (of that kind, for that action)."""
        return [s for s in self.snapshot() if s.fault is not None and (fault is None or s.fault is fault)
                and (action is None or s.action == action)]

    def counts(self) -> Counter:
        """How many of each fault were injected."""
        return Counter(s.fault for s in self.snapshot() if s.fault is not None)


@dataclass(frozen=True)
class _Forced:
    fault: Fault
    service: str | None
    action: str | None


class FaultInjector(Layer):
    """Answers some calls with a fault instead of (or, for lost replies, after) forwarding them.

    Which calls: those passing the filters (`only_mutating`, `services`, `actions`), each
    drawing one number from its action's own random.Random, seeded with (seed, service,
    action). So the same seed gives the n-th call of each action the same fate however the
    calls of different actions interleave across threads (envctl works in parallel).
    `force()` queues faults for the next matching calls, ahead of the draws, for tests that
    need a fault at one place.
    """

    def __init__(self, rates: Rates = Rates(), seed: int = 0, *, only_mutating: bool = False,
                 services: Iterable[str] | None = None, actions: Iterable[str] | None = None):
        self.log = FaultLog()
        self._lock = threading.Lock()
        self._forced: list[_Forced] = []
        self.configure(rates, seed, only_mutating=only_mutating, services=services, actions=actions)

    def configure(self, rates: Rates = Rates(), seed: int = 0, *, only_mutating: bool = False,
                  services: Iterable[str] | None = None, actions: Iterable[str] | None = None) -> None:
        """Start over: new rates, filters and seed; the log and forced faults are cleared."""
        with self._lock:
            self.rates = rates
            self.seed = seed
            self.only_mutating = only_mutating
            self.services = frozenset(services) if services is not None else None
            self.actions = frozenset(actions) if actions is not None else None
            self._streams: dict[tuple[str, str], random.Random] = {}
            self._forced.clear()
        self.log.clear()

    def force(self, fault: Fault, *, service: str | None = None, action: str | None = None,
              times: int = 1) -> None:
        """Inject `fault` into the next `times` calls of that service/action (filters ignored)."""
        with self._lock:
            self._forced.extend([_Forced(fault, service, action)] * times)

    def off(self) -> None:
        """No more faults (the log is kept)."""
        with self._lock:
            self.rates = Rates()
            self._forced.clear()

    def handle(self, request: AwsRequest, environ, start_response):
        fault = self._decide(request)
        self.log.add(request.service, request.action, request.mutating, fault)
        if fault is None:
            return self.app(environ, start_response)
        if fault is Fault.THROTTLE:
            return throttling_response(request, start_response)
        if fault is Fault.ERROR_500:
            return server_error_response(request, start_response, 500)
        if fault is Fault.ERROR_503:
            return server_error_response(request, start_response, 503)
        if fault is Fault.LOST_REPLY:
            _carry_out(self.app, environ)
        drop_connection(environ)

    def _decide(self, request: AwsRequest) -> Fault | None:
        with self._lock:
            for i, forced in enumerate(self._forced):
                if forced.service in (None, request.service) and forced.action in (None, request.action):
                    del self._forced[i]
                    return forced.fault
            if not self._eligible(request):
                return None
            key = (request.service, request.action)
            stream = self._streams.get(key)
            if stream is None:      # a str seed is hashed the same way in every process
                stream = self._streams[key] = random.Random(f"{self.seed}/{request.service}/{request.action}")
            return self.rates.pick(stream.random())

    def _eligible(self, request: AwsRequest) -> bool:
        return ((not self.only_mutating or request.mutating)
                and (self.services is None or request.service in self.services)
                and (self.actions is None or request.action in self.actions))


def _carry_out(app: Wsgi, environ) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call the app and collect its whole answer: (status, headers, body)."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, list(headers)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer["status"], answer["headers"], body


# ------------------------------------------------------------------ latency and rate limits

class Latency(Layer):
    """Answers each call `seconds` plus up to `jitter` (seeded) after it arrived: after the
    server says its first bytes reached the machine (environ[RECEIVED]), else after this layer
    first saw it.

    The emulator's own time counts within the latency, as a region's own work counts within
    the time it takes to answer: the call is carried out at once, and its answer waits for
    what is left. A call the emulator takes longer over is answered when it is done
    (`answered_late` says by how much: that part of a call's time is the emulator's, not the
    client's). (Sleeping the latency first and then carrying the call out made every call take
    the latency plus moto's time, 10-15 ms more on an idle machine and 100 ms at a
    1,000-resource create: the benchmark then measured a slower AWS than the one it named.)
    """

    def __init__(self, seconds: float = 0.0, jitter: float = 0.0, seed: int = 0,
                 sleep: Callable[[float], None] = time.sleep):
        self._lock = threading.Lock()
        self._sleep = sleep
        self.configure(seconds, jitter, seed)

    def configure(self, seconds: float = 0.0, jitter: float = 0.0, seed: int = 0) -> None:
        with self._lock:
            self.seconds, self.jitter = seconds, jitter
            self._random = random.Random(seed)
            self.delays: list[float] = []         # every delay applied, in order
            self._late: list[float] = []           # answered_late's

    def handle(self, request: AwsRequest, environ, start_response):
        arrived = environ.get(RECEIVED) or time.monotonic()
        with self._lock:
            delay = self.seconds + (self._random.uniform(0, self.jitter) if self.jitter else 0.0)
            if delay > 0:
                self.delays.append(delay)
        if delay <= 0:
            return self.app(environ, start_response)
        try:
            status, headers, body = _carry_out(self.app, environ)
        finally:                                # a dropped connection, too, is seen after the latency
            left = delay - (time.monotonic() - arrived)
            with self._lock:
                self._late.append(max(0.0, -left))
            if left > 0:
                self._sleep(left)
        start_response(status, headers)
        return [body]

    def answered_late(self) -> list[float]:
        """Since the last time asked: for each call given a latency, how many seconds after it
        the emulator answered (0 when on time), in the order they were answered."""
        with self._lock:
            late, self._late = self._late, []
            return late


class RateLimit(Layer):
    """Token buckets per action, as AWS keeps them: a call without a token gets the protocol's throttle.

    `limits` maps "service:Action", "service:*" or "*" to calls per second (each action's bucket
    then holds `burst` calls, default one second's worth, at least 1) or to a `Limit` (rate and
    burst); the most precise key applies. With `aws_limits`, an action no key names gets AWS's
    published limit in the request's region (envctl.aws.ratelimit; actions AWS counts together
    share one bucket) or, for services that publish none, `UNPUBLISHED`: lower than envctl's own
    guess for them, so that its adaptation is put to work. REST services (S3, Lambda) are not
    limited by `aws_limits`: their calls name a path, not an action. (S3 publishes no limit for
    its bucket APIs; Lambda's 15 control plane calls a second go unchecked here.)
    """

    UNPUBLISHED = Limit(20, 20)

    def __init__(self, limits: Mapping[str, float | Limit] | None = None, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.throttled: Counter = Counter()
        self.configure(limits or {}, burst)

    def configure(self, limits: Mapping[str, float | Limit], burst: float | None = None, *,
                  aws_limits: bool = False) -> None:
        with self._lock:
            self.limits = dict(limits)
            self.burst = burst
            self.aws_limits = aws_limits
            self._buckets: dict[tuple[str, str], tuple[float, float]] = {}   # (tokens, last refill)
            self.throttled.clear()

    def handle(self, request: AwsRequest, environ, start_response):
        if not self._take(request, environ.get(RECEIVED)):
            return throttling_response(request, start_response)
        return self.app(environ, start_response)

    def _take(self, request: AwsRequest, received: float | None = None) -> bool:
        limit = self._limit(request)
        if limit is None:
            return True
        key = (request.service, bucket_name(request.action, limit))
        with self._lock:
            # A call counts when it reached the machine, as AWS counts it when it reaches AWS: not
            # when this process got round to it, after queueing behind moto's work on other calls
            # (calls paced exactly at a limit then came out bunched, and were refused). Threads
            # may get here out of that order: a bucket's time never goes back.
            now = received if received is not None else self._clock()
            tokens, last = self._buckets.get(key, (limit.burst, now))
            now = max(now, last)
            tokens = min(limit.burst, tokens + (now - last) * limit.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                self.throttled[f"{request.service}:{request.action}"] += 1
                return False
            self._buckets[key] = (tokens - 1, now)
            return True

    def _limit(self, request: AwsRequest) -> Limit | None:
        for key in (f"{request.service}:{request.action}", f"{request.service}:*", "*"):
            if key in self.limits:
                value = self.limits[key]
                if isinstance(value, Limit):
                    return value
                return Limit(value, self.burst if self.burst is not None else max(1.0, value))
        if self.aws_limits and not request.protocol.startswith("rest"):
            return (published_limit(request.service, request.action, not request.mutating, request.region)
                    or self.UNPUBLISHED)
        return None


# ------------------------------------------------------------------ crashes

class Tripwire(Layer):
    """Kills a client process with SIGKILL at its N-th call, after carrying that call out: the
    run dies with the call made and its answer never read (the worst moment to die).

    `arm(at=N)` starts counting the AWS calls that reach this layer (all of them: the test
    must make none of its own meanwhile); `aim(pid)` names the process to kill, once started.
    Without `at`, it only counts: `count` then says how many calls a whole run made. `fired`
    says whether the kill happened (a run may end before its N-th call).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.arm(None)

    def arm(self, at: int | None) -> None:
        with self._lock:
            self.at, self.pid, self.count, self.fired = at, None, 0, False

    def aim(self, pid: int) -> None:
        with self._lock:
            self.pid = pid

    def handle(self, request: AwsRequest, environ, start_response):
        with self._lock:
            self.count += 1
            fire = self.at is not None and self.count == self.at and self.pid is not None
        if not fire:
            return self.app(environ, start_response)
        _carry_out(self.app, environ)
        with self._lock:
            self.fired = True           # before the kill: whoever waits for the process reads it next
        os.kill(self.pid, signal.SIGKILL)
        drop_connection(environ)


class Recorder(Layer):
    """Keeps every AWS request that passes (service, action, body as sent) between `start()`
    and `stop()`. Off by default: most tests need only the request log's actions."""

    def __init__(self):
        self._lock = threading.Lock()
        self._on = False
        self._requests: list[AwsRequest] = []

    def start(self) -> None:
        with self._lock:
            self._requests, self._on = [], True

    def stop(self) -> None:
        with self._lock:
            self._on = False

    @property
    def requests(self) -> list[AwsRequest]:
        with self._lock:
            return list(self._requests)

    def handle(self, request: AwsRequest, environ, start_response):
        with self._lock:
            if self._on:
                self._requests.append(request)
        return self.app(environ, start_response)


# ------------------------------------------------------------------ EC2 client tokens

@dataclass(frozen=True)
class _Answer:
    params: str               # hash of the call's parameters other than the token
    status: str
    headers: list
    body: bytes


class ClientTokens(Layer):
    """AWS's client-token idempotency for EC2, which moto ignores.

    (account, region, action, ClientToken) → the first successful answer. A repeat with
    the same parameters gets that answer again without reaching moto; with different
    parameters, IdempotentParameterMismatch. Calls with the same token wait for each other.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, str, str], _Answer] = {}
        self._in_flight: dict[tuple[str, str, str, str], threading.Lock] = {}
        self.replayed: Counter = Counter()        # action → answers given again

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self.replayed.clear()

    def __call__(self, environ, start_response):
        if is_control(environ) and environ.get("PATH_INFO", "").startswith("/moto-api/reset"):
            self.clear()
        return super().__call__(environ, start_response)

    def handle(self, request: AwsRequest, environ, start_response):
        if request.protocol != "ec2":
            return self.app(environ, start_response)
        params = request.params()
        token = next((v for k, v in params if k == "ClientToken"), None)
        if not token:
            return self.app(environ, start_response)
        key = (request.account, request.region, request.action, token)
        digest = hashlib.sha256(repr(sorted((k, v) for k, v in params if k != "ClientToken")).encode()).hexdigest()
        with self._lock:
            same_token = self._in_flight.setdefault(key, threading.Lock())
        with same_token:
            with self._lock:
                known = self._answers.get(key)
            if known is not None:
                if known.params != digest:
                    return error_response(request, start_response, 400, "IdempotentParameterMismatch",
                                          f"The client token {token} was already used with other parameters.")
                with self._lock:
                    self.replayed[request.action] += 1
                start_response(known.status, known.headers)
                return [known.body]
            status, headers, body = _carry_out(self.app, environ)
            if status.startswith("2"):
                with self._lock:
                    self._answers[key] = _Answer(digest, status, headers, body)
            start_response(status, headers)
            return [body]


# ------------------------------------------------------------------ repeated calls, as AWS answers them

_FUNCTION_POLICY = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/policy(?:/(?P<sid>[^/]+))?$")
_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)$")


class RepeatedCalls(Layer):
    """Answers a repeated call the way AWS does where moto does not: what a retry after a lost
    reply meets. Like `ClientTokens`, it must sit inside `FaultInjector`.

    - autoscaling CreateAutoScalingGroup for a group that exists: AlreadyExists (moto replaces
      the group and orphans its instances);
    - lambda AddPermission with a statement id the function already has: ResourceConflictException
      (moto adds the statement twice);
    - logs PutMetricFilter repeating a filter exactly as it is: success, changing nothing (moto
      adds a second copy).
    And one call moto takes but half does: s3 CreateBucket with `CreateBucketConfiguration.Tags`
    (AWS tags general purpose buckets on create; moto accepts the element and drops it). The
    tags are put on the new bucket in moto, so a lost reply leaves a tagged bucket, as on AWS.
    Only calls that went through this layer are known; a reset of the emulator forgets them.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._groups: set[tuple] = set()
        self._statements: set[tuple] = set()
        self._filters: dict[tuple, str] = {}
        self.answered: Counter = Counter()        # action → repeats answered here

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()
            self._statements.clear()
            self._filters.clear()
            self.answered.clear()

    def __call__(self, environ, start_response):
        if is_control(environ) and environ.get("PATH_INFO", "").startswith("/moto-api/reset"):
            self.clear()
        return super().__call__(environ, start_response)

    def handle(self, request: AwsRequest, environ, start_response):
        scope = (request.account, request.region)
        if request.service == "autoscaling" and request.action in ("CreateAutoScalingGroup", "DeleteAutoScalingGroup"):
            group = scope + (dict(request.params()).get("AutoScalingGroupName"),)
            if request.action == "DeleteAutoScalingGroup":
                return self._then(environ, start_response, lambda: self._groups.discard(group))
            if self._known(group in self._groups, request.action):
                return error_response(request, start_response, 400, "AlreadyExists",
                                      f"AutoScalingGroup by this name already exists - A group with the name "
                                      f"{group[-1]} already exists")
            return self._then(environ, start_response, lambda: self._groups.add(group))
        if request.service == "lambda":
            return self._lambda(request, scope, environ, start_response)
        if request.service == "s3" and _is_create_bucket(environ):
            tags = _create_bucket_tags(request.body)
            if tags:
                bucket, account = environ.get("PATH_INFO", "").strip("/"), _moto_account(environ)
                return self._then(environ, start_response,
                                  lambda: _tag_bucket(account, request.region, bucket, tags))
        if request.service == "logs" and request.action in ("PutMetricFilter", "DeleteMetricFilter", "DeleteLogGroup"):
            body = json.loads(request.body or b"{}")
            log_filter = scope + (body.get("logGroupName"), body.get("filterName"))
            if request.action == "DeleteLogGroup":
                return self._then(environ, start_response, lambda: self._forget_filters(log_filter[:3]))
            if request.action == "DeleteMetricFilter":
                return self._then(environ, start_response, lambda: self._filters.pop(log_filter, None))
            same = json.dumps(body, sort_keys=True)
            if self._known(self._filters.get(log_filter) == same, request.action):
                start_response("200 OK", [("Content-Type", request.content_type or "application/x-amz-json-1.1"),
                                          ("x-amzn-RequestId", str(uuid.uuid4())), ("Content-Length", "0")])
                return [b""]

            def remember() -> None:
                self._filters[log_filter] = same

            return self._then(environ, start_response, remember)
        return self.app(environ, start_response)

    def _lambda(self, request: AwsRequest, scope: tuple, environ, start_response):
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        policy, function = _FUNCTION_POLICY.match(path), _FUNCTION.match(path)
        if policy and method == "POST":
            sid = json.loads(request.body or b"{}").get("StatementId")
            statement = scope + (_function_name(policy["function"]), sid)
            if self._known(statement in self._statements, "AddPermission"):
                return error_response(request, start_response, 409, "ResourceConflictException",
                                      f"The statement id ({statement[-1]}) provided already exists. Please provide "
                                      "a new statement id, or remove the existing statement.")
            return self._then(environ, start_response, lambda: self._statements.add(statement))
        if policy and method == "DELETE" and policy["sid"]:
            statement = scope + (_function_name(policy["function"]), policy["sid"])
            return self._then(environ, start_response, lambda: self._statements.discard(statement))
        if function and method == "DELETE":
            name = scope + (_function_name(function["function"]),)
            return self._then(environ, start_response, lambda: self._forget_statements(name))
        return self.app(environ, start_response)

    def _known(self, repeated: bool, action: str) -> bool:
        if repeated:
            with self._lock:
                self.answered[action] += 1
        return repeated

    def _then(self, environ, start_response, remember: Callable[[], object]):
        """Forward the call; when it succeeds, `remember` what it did."""

        def recording(status, headers, exc_info=None):
            if status.startswith("2"):
                with self._lock:
                    remember()
            return start_response(status, headers, exc_info)

        return self.app(environ, recording)

    def _forget_filters(self, log_group: tuple) -> None:
        for key in [k for k in self._filters if k[:3] == log_group]:
            del self._filters[key]

    def _forget_statements(self, function: tuple) -> None:
        self._statements -= {k for k in self._statements if k[:3] == function}


def _function_name(name_or_arn: str) -> str:
    """A function's name from its name, partial ARN or ARN (without a version qualifier)."""
    if "function:" in name_or_arn:
        return name_or_arn.split("function:", 1)[1].split(":")[0]
    return name_or_arn.split(":")[0]


def _is_create_bucket(environ) -> bool:
    """PUT /bucket with no sub-resource (path-style, as boto3 sends it to an IP endpoint)."""
    path = environ.get("PATH_INFO", "").strip("/")
    return (environ.get("REQUEST_METHOD") == "PUT" and bool(path) and "/" not in path
            and not environ.get("QUERY_STRING"))


def _create_bucket_tags(body: bytes) -> dict[str, str]:
    """The tags of a CreateBucketConfiguration body (any XML namespace); {} when none."""
    import xml.etree.ElementTree as ElementTree

    if not body.strip():
        return {}
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}

    def local(element) -> str:
        return element.tag.rsplit("}", 1)[-1]

    tags = {}
    for element in root.iter():
        if local(element) == "Tag":
            fields = {local(child): child.text or "" for child in element}
            if "Key" in fields:
                tags[fields["Key"]] = fields.get("Value", "")
    return tags


def _moto_account(environ) -> str:
    """The account moto acts in for this request (its header, else its key's account)."""
    import os

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(_access_key(environ))


def _tag_bucket(account: str, region: str, bucket: str, tags: Mapping[str, str]) -> None:
    """Tag a bucket in moto's state (the server runs in this process)."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    s3_backends[account][get_partition(region)].put_bucket_tagging(bucket, dict(tags))
