"""observe(): every kind's discover on a thread pool, against moto server over HTTP."""
from __future__ import annotations

import threading

import pytest

from envctl.engine.observe import ObserveError, observe
from envctl.model.address import Address
from envctl.provisioners.base import Observed, Props, Provisioner, address_of
from tests.engine.fakes import aws_error, our_tags
from tests.provisioners.harness import make_ctx


class QueueishProps(Props):
    name: str


class Queueish(Provisioner):
    """A test-only kind: SQS queues found by their envctl tags, read through ctx's session."""

    kind = "queue"
    props = QueueishProps

    def discover(self, ctx):
        sqs = ctx.client("sqs")
        for url in sqs.list_queues().get("QueueUrls", []):
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            if ctx.is_ours(tags):
                yield Observed(address_of(tags), url, QueueishProps(name=url.rsplit("/", 1)[-1]), tags)


class Scripted(Provisioner):
    """A kind whose discover does what the test says."""

    props = QueueishProps

    def __init__(self, kind, discover):
        self.kind = kind
        self._discover = discover

    def discover(self, ctx):
        return self._discover(ctx)


def make_queue(aws, name: str, tags: dict) -> str:
    return aws.client("sqs").create_queue(QueueName=name, tags=tags)["QueueUrl"]


def test_finds_what_is_tagged_for_the_environment_and_nothing_else(aws):
    mine = make_queue(aws, "acme-qa-work", our_tags("queue/work"))
    make_queue(aws, "acme-prod-work", {**our_tags("queue/work"), "envctl:environment": "prod"})
    make_queue(aws, "hand-made", {"team": "platform"})
    found = observe(make_ctx(aws), provisioners={"queue": Queueish()})
    assert list(found.resources) == [Address("queue", "work")]
    obs = found.resources[Address("queue", "work")]
    assert obs.id == mine and obs.props == QueueishProps(name="acme-qa-work")
    assert obs.tags == our_tags("queue/work")
    assert found.duplicates == [] and found.skipped_kinds == []


def test_two_live_resources_claiming_one_address_are_reported_not_picked(aws):
    first = make_queue(aws, "acme-qa-work", our_tags("queue/work"))
    second = make_queue(aws, "acme-qa-work-copy", our_tags("queue/work"))
    make_queue(aws, "acme-qa-other", our_tags("queue/other"))
    found = observe(make_ctx(aws), provisioners={"queue": Queueish()})
    assert found.duplicates == [(Address("queue", "work"), sorted([first, second]))]
    assert list(found.resources) == [Address("queue", "other")]


def test_kinds_not_implemented_yet_are_skipped(aws):
    make_queue(aws, "acme-qa-work", our_tags("queue/work"))
    found = observe(make_ctx(aws), provisioners={"queue": Queueish(), "vpc": Provisioner()})
    assert found.skipped_kinds == ["vpc"]
    assert list(found.resources) == [Address("queue", "work")]


def test_a_kind_that_cannot_be_discovered_stops_observation():
    def denied(ctx):
        raise aws_error("AccessDenied", 403, "no sqs:ListQueues")

    with pytest.raises(ObserveError, match="discovering queue resources: AccessDenied: no sqs:ListQueues"):
        observe(_offline_ctx(), provisioners={"queue": Scripted("queue", denied)})


def test_temporary_discovery_errors_are_retried():
    answers = [aws_error("Throttling"), aws_error("InternalError", 503)]

    def flaky(ctx):
        if answers:
            raise answers.pop(0)
        return [Observed(Address("queue", "a"), "q-1", QueueishProps(name="a"), our_tags("queue/a"))]

    sleeps = []
    found = observe(_offline_ctx(), provisioners={"queue": Scripted("queue", flaky)}, sleep=sleeps.append)
    assert list(found.resources) == [Address("queue", "a")] and len(sleeps) == 2


def test_every_kind_is_discovered_at_once():
    names = [f"kind{i}" for i in range(12)]          # more than the 8 threads discovery once had
    all_in = threading.Barrier(len(names), timeout=5)

    def meet(ctx):
        all_in.wait()                  # raises BrokenBarrierError unless every other kind runs meanwhile
        return []

    kinds = {name: Scripted(name, meet) for name in names}
    assert observe(_offline_ctx(), provisioners=kinds, reads=1).resources == {}


def test_the_real_registry_observes_an_empty_account(aws):
    """Every registered kind either discovers (nothing, here) or says it is not implemented yet."""
    found = observe(make_ctx(aws))
    assert found.resources == {} and found.duplicates == []


def _offline_ctx():
    from envctl.provisioners.base import Ctx

    return Ctx(aws=None, project="acme", environment="qa")


def test_a_kinds_reads_of_one_resource_each_run_side_by_side(aws):
    """Ctx.map in discovery: five reads that each wait for all five to have started pass only
    when they run at once (one by one, the barrier times out and the read fails)."""
    reads = 5
    everyone_started = threading.Barrier(reads, timeout=10)

    def read(i: int) -> Observed:
        everyone_started.wait()
        return Observed(Address("queue", f"q{i}"), f"id-{i}", QueueishProps(name=f"q{i}"), our_tags(f"queue/q{i}"))

    kind = Scripted("queue", lambda ctx: ctx.map(read, range(reads)))
    found = observe(make_ctx(aws), provisioners={"queue": kind})

    assert list(found.resources) == [Address("queue", f"q{i}") for i in range(reads)]


def test_map_keeps_the_order_and_raises_the_first_error_once_every_read_has_ended(aws):
    from concurrent.futures import ThreadPoolExecutor

    ended = []

    def read(i: int) -> int:
        if i == 1:
            raise aws_error("ThrottlingException")
        ended.append(i)
        return i * 10

    with ThreadPoolExecutor(4) as pool:
        ctx = make_ctx(aws)
        ctx.read_pool = pool
        assert ctx.map(lambda i: i * 10, [3, 1, 2]) == [30, 10, 20]
        with pytest.raises(Exception) as raised:
            ctx.map(read, range(4))
    assert "ThrottlingException" in str(raised.value)
    assert sorted(ended) == [0, 2, 3]
    assert make_ctx(aws).map(lambda i: i + 1, [1, 2]) == [2, 3]     # without a pool: one by one


def test_discovery_builds_the_clients_of_every_kind_while_it_waits(aws):
    """Every service a kind calls has its client once observe has started (on a thread of its
    own: prepare_clients), the executor's included, so that no first call builds one."""
    from envctl.aws.session import PREPARE_THREAD
    from envctl.provisioners import REGISTRY

    ctx = make_ctx(aws)
    found = observe(ctx)
    for thread in threading.enumerate():
        if thread.name == PREPARE_THREAD:
            thread.join(10)
    assert found.resources == {}
    assert {s for p in REGISTRY for s in p.services} <= set(ctx.aws._clients)
    assert not [c.action for c in aws.log.snapshot() if c.mutating]       # building them calls nothing
