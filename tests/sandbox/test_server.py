"""The emulator answers as AWS's endpoints do: over kept connections, in the latency it is given.

A server that closes every connection makes each call pay for a new connection (and the
emulator for a new thread), which AWS does not cost; the benchmarks would measure it.
"""
import socket
import sys
import time

import boto3
import pytest
from botocore.config import Config

from envctl.sandbox.middleware import Latency, Layer, chain
from envctl.sandbox.server import RECEIVED, EmulatedAws, received_at, stamp_arrivals

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's receive stamps are Linux's")

REGION = "eu-north-1"


class Ports(Layer):
    """Records the client port of each call: one port, one connection."""

    def __init__(self):
        self.ports: list[int] = []
        self.received: list[tuple[float | None, float]] = []     # (environ[RECEIVED], when this layer saw it)

    def handle(self, request, environ, start_response):
        self.ports.append(int(environ["REMOTE_PORT"]))
        self.received.append((environ.get(RECEIVED), time.monotonic()))
        return self.app(environ, start_response)


@pytest.fixture
def server():
    ports = Ports()
    server = EmulatedAws(wrap=chain(ports)).start()
    server.ports = ports
    yield server
    server.stop()


def client(server, service):
    return boto3.client(service, region_name=REGION, endpoint_url=server.endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def test_calls_in_turn_share_one_connection(server):
    sqs = client(server, "sqs")
    url = sqs.create_queue(QueueName="kept")["QueueUrl"]
    for _ in range(4):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert len(server.ports.ports) == 5 and len(set(server.ports.ports)) == 1


def test_bodies_heads_and_empty_answers_keep_the_connection_usable(server):
    s3 = client(server, "s3")
    s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="kept", Key="a", Body=b"x" * 100_000)        # a body, with Expect: 100-continue
    head = s3.head_object(Bucket="kept", Key="a")                     # HEAD: the object's length, no body
    assert head["ContentLength"] == 100_000
    assert s3.get_object(Bucket="kept", Key="a")["Body"].read() == b"x" * 100_000
    s3.delete_object(Bucket="kept", Key="a")                          # 204: no body
    assert s3.list_objects_v2(Bucket="kept")["KeyCount"] == 0
    assert len(server.ports.ports) == 6 and len(set(server.ports.ports)) == 1


def test_an_error_answer_keeps_the_connection_too(server):
    sqs = client(server, "sqs")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="missing")
    sqs.create_queue(QueueName="there")
    assert len(set(server.ports.ports)) == 1


class Slow(Layer):
    """The emulator taking its time over a call; says when it is done."""

    def __init__(self, seconds, events):
        self.seconds, self.events = seconds, events

    def handle(self, request, environ, start_response):
        time.sleep(self.seconds)
        self.events.append("carried out")
        return self.app(environ, start_response)


def test_latency_counts_the_emulators_own_time_within_it():
    """A region's latency includes its own work: the call is carried out at once, and the
    answer waits only for what is left of the latency."""
    events = []
    server = EmulatedAws(wrap=chain(Latency(1.0, sleep=lambda s: events.append(s)), Slow(0.2, events))).start()
    try:
        client(server, "sts").get_caller_identity()
    finally:
        server.stop()
    assert events[0] == "carried out"
    [left] = events[1:]
    assert 0 < left <= 0.8


@linux_only
def test_each_request_says_when_it_reached_the_machine(server):
    """The kernel's stamp of each request's first bytes, not of its connection: two calls over
    one kept connection, each stamped after it was sent and before the layers saw it."""
    sqs = client(server, "sqs")
    stamps = []
    for name in ("first", "second"):
        sent = time.monotonic()
        sqs.create_queue(QueueName=name)
        stamps.append(sent)
    assert len(set(server.ports.ports)) == 1
    for sent, (received, seen) in zip(stamps, server.ports.received):
        assert received is not None and sent <= received <= seen


@linux_only
def test_received_at_peeks_and_leaves_the_request_to_its_parser():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
        with sender, receiver:
            stamp_arrivals(receiver)
            sent = time.monotonic()
            sender.sendall(b"GET / HTTP/1.1\r\n")
            received = received_at(receiver)
            assert received is not None and sent <= received <= time.monotonic()
            assert receiver.recv(100) == b"GET / HTTP/1.1\r\n"
            receiver.settimeout(0.05)
            with pytest.raises(TimeoutError):           # an idle connection: the handler closes it
                received_at(receiver)


def test_latency_counts_from_when_the_request_reached_the_machine():
    asked = []

    def moto(environ, start_response):
        start_response("200 OK", [])
        return [b""]

    latency = Latency(0.05, sleep=asked.append).around(moto)
    latency.handle(None, {RECEIVED: time.monotonic() - 0.03}, lambda status, headers: None)
    latency.handle(None, {}, lambda status, headers: None)      # no stamp: from when the layer saw it
    queued, unstamped = asked
    assert 0 < queued <= 0.02 < 0.04 <= unstamped <= 0.05
