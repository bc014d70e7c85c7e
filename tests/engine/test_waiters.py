"""wait_until with scripted statuses and, for one real waiter, botocore's Stubber (moto's
state machines collapse, so pending paths are only exercised here: MOTO-NOTES §7)."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from envctl.aws.waiters import GONE, WaitFailed, WaitTimeout, wait_for, wait_until


class Clock:
    """Fake time: sleeping advances it, and the sleeps are recorded."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def scripted(*answers):
    """fetch() returning the answers in turn (None = gone), then the last one forever."""
    seen = list(answers)

    def fetch():
        return seen.pop(0) if len(seen) > 1 else seen[0]

    return fetch


def wait(fetch, clock, **kw):
    options = dict(pending={"pending"}, target={"available"}, timeout=60, sleep=clock.sleep, clock=clock)
    options.update(kw)
    return wait_until(fetch, **options)


def test_returns_once_the_target_is_reached_with_growing_intervals():
    clock = Clock()
    fetch = scripted(("pending", None), ("pending", None), ("pending", None), ("available", None))
    assert wait(fetch, clock, interval=2, max_interval=3) == ("available", None)
    assert clock.sleeps == [2, 3, 3]


def test_waiting_for_gone():
    clock = Clock()
    fetch = scripted(("deleting", None), None)
    assert wait(fetch, clock, pending={"deleting"}, target={"gone"}) is None
    assert len(clock.sleeps) == 1


def test_not_yet_visible_can_be_pending():
    clock = Clock()
    fetch = scripted(None, None, ("available", None))
    assert wait(fetch, clock, pending={"pending", "gone"}) == ("available", None)


def test_disappearing_while_waiting_for_ready_fails():
    with pytest.raises(WaitFailed, match="the resource is gone, expected available"):
        wait(scripted(("pending", None), None), Clock())


def test_an_unexpected_status_fails_with_aws_reason():
    clock = Clock()
    fetch = scripted(("pending", None), ("failed", "Subnet has insufficient free addresses"))
    with pytest.raises(WaitFailed) as err:
        wait(fetch, clock, describe="NAT gateway nat-1")
    assert str(err.value) == "NAT gateway nat-1 is failed, expected available: Subnet has insufficient free addresses"
    assert err.value.status == "failed"


def test_timeout_reports_the_last_status_and_reason():
    clock = Clock()
    fetch = scripted(("pending", "still attaching"))
    with pytest.raises(WaitTimeout) as err:
        wait(fetch, clock, timeout=10, interval=3, max_interval=3, describe="NAT gateway nat-1")
    assert str(err.value) == ("timed out after 10s waiting for NAT gateway nat-1 to be available; "
                              "last status: pending (still attaching)")
    assert clock.now == 10 and clock.sleeps == [3, 3, 3, 1]


def test_stable_reads_need_consecutive_targets():
    clock = Clock()
    fetch = scripted(("available", None), ("pending", None), ("available", None), ("available", None))
    assert wait(fetch, clock, stable_reads=2) == ("available", None)
    assert len(clock.sleeps) == 3


def test_on_status_hears_each_change_once():
    heard = []
    fetch = scripted(("pending", None), ("pending", None), ("available", None))
    wait(fetch, Clock(), on_status=heard.append)
    assert heard == ["pending", "available"]


# ---- one real waiter: a NAT gateway, through botocore's Stubber (no network)

def nat_status(ec2, nat_id):
    """What a NAT gateway kind's _status helper looks like: (State, FailureMessage) or None."""
    gateways = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    if not gateways or gateways[0]["State"] == "deleted":
        return None
    g = gateways[0]
    reason = f"{g['FailureCode']}: {g['FailureMessage']}" if g.get("FailureCode") else None
    return g["State"], reason


def stubbed_ec2(*gateways):
    ec2 = boto3.client("ec2", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ec2)
    for g in gateways:
        stub.add_response("describe_nat_gateways", {"NatGateways": [g] if g else []},
                          {"NatGatewayIds": ["nat-1"]})
    stub.activate()
    return ec2, stub


def test_nat_gateway_becomes_available():
    ec2, stub = stubbed_ec2({"NatGatewayId": "nat-1", "State": "pending"},
                            {"NatGatewayId": "nat-1", "State": "pending"},
                            {"NatGatewayId": "nat-1", "State": "available"})
    clock = Clock()
    got = wait(lambda: nat_status(ec2, "nat-1"), clock, describe="NAT gateway nat-1")
    assert got == ("available", None) and len(clock.sleeps) == 2
    stub.assert_no_pending_responses()


def test_nat_gateway_failure_carries_aws_reason():
    ec2, stub = stubbed_ec2({"NatGatewayId": "nat-1", "State": "pending"},
                            {"NatGatewayId": "nat-1", "State": "failed", "FailureCode": "InsufficientFreeAddressesInSubnet",
                             "FailureMessage": "Subnet has insufficient free addresses to create this NAT gateway"})
    with pytest.raises(WaitFailed, match="NAT gateway nat-1 is failed, expected available: "
                                         "InsufficientFreeAddressesInSubnet: Subnet has insufficient"):
        wait(lambda: nat_status(ec2, "nat-1"), Clock(), describe="NAT gateway nat-1")
    stub.assert_no_pending_responses()


def test_nat_gateway_deleted():
    ec2, stub = stubbed_ec2({"NatGatewayId": "nat-1", "State": "deleting"},
                            {"NatGatewayId": "nat-1", "State": "deleted"})
    assert wait(lambda: nat_status(ec2, "nat-1"), Clock(), pending={"deleting"}, target={"gone"}) is None
    stub.assert_no_pending_responses()


def test_wait_for_returns_the_answer_that_reached_the_target_so_nothing_reads_it_again():
    clock = Clock()
    answers = scripted(None, {"id": "nat-1", "State": "pending"}, {"id": "nat-1", "State": "available", "n": 3})

    got = wait_for(answers, lambda a: (a["State"], None), pending={"pending", GONE}, target={"available"},
                   timeout=60, sleep=clock.sleep, clock=clock)

    assert got == {"id": "nat-1", "State": "available", "n": 3}
    assert len(clock.sleeps) == 2


def test_wait_for_a_resource_that_goes_away_returns_none():
    clock = Clock()
    got = wait_for(scripted({"State": "Pending"}, None), lambda a: (a["State"], None), pending={"Pending"},
                   target={"Active", GONE}, timeout=60, sleep=clock.sleep, clock=clock)
    assert got is None
