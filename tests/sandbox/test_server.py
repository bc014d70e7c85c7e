"""The emulator's HTTP server keeps connections open between calls, as AWS's endpoints do.

A server that closes every connection makes each call pay for a new connection (and the
emulator for a new thread), which AWS does not cost; the benchmarks would measure it.
"""
import boto3
import pytest
from botocore.config import Config

from envctl.sandbox.middleware import Layer, chain
from envctl.sandbox.server import EmulatedAws

REGION = "eu-north-1"


class Ports(Layer):
    """Records the client port of each call: one port, one connection."""

    def __init__(self):
        self.ports: list[int] = []

    def handle(self, request, environ, start_response):
        self.ports.append(int(environ["REMOTE_PORT"]))
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
