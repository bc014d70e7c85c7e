"""An emulator with the fault layers in front of it, shared by the tests of this folder.

The stack, outermost first: Tripwire → Latency → RateLimit → FaultInjector → ClientTokens →
RepeatedCalls → Recorder → request log → moto. Every test starts with all of them quiet (no delay, no
limits, no faults), moto's state wiped and what the layers remembered forgotten.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from envctl.sandbox.middleware import (ClientTokens, FaultInjector, Latency, RateLimit, Recorder, RepeatedCalls,
                                      Tripwire, chain)
from envctl.sandbox.server import EmulatedAws
from tests.conftest import REGION, Aws


class FaultyAws(Aws):
    """The emulated AWS of one test, with the handles of its fault layers."""

    def __init__(self, server: EmulatedAws, tripwire: Tripwire, latency: Latency, limits: RateLimit,
                 faults: FaultInjector, tokens: ClientTokens, repeats: RepeatedCalls, recorder: Recorder):
        super().__init__(server)
        self.tripwire, self.latency, self.limits, self.faults = tripwire, latency, limits, faults
        self.tokens, self.repeats, self.recorder = tokens, repeats, recorder

    def client(self, service: str, region: str = REGION, attempts: int = 3):
        """A plain boto3 client in standard retry mode with `attempts` attempts in all (1: no retry)."""
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))


@pytest.fixture(scope="session")
def fault_layers():
    return Tripwire(), Latency(), RateLimit(), FaultInjector(), ClientTokens(), RepeatedCalls(), Recorder()


@pytest.fixture(scope="session")
def faulty_emulator(fault_layers):
    server = EmulatedAws(wrap=chain(*fault_layers)).start()
    yield server
    server.stop()


@pytest.fixture
def faulty(faulty_emulator, fault_layers, monkeypatch) -> FaultyAws:
    tripwire, latency, limits, faults, tokens, repeats, recorder = fault_layers
    tripwire.arm(None)
    recorder.stop()
    latency.configure()
    limits.configure({})
    faults.configure()
    faulty_emulator.reset()                  # also clears the client tokens and the repeats
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_emulator.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    yield FaultyAws(faulty_emulator, tripwire, latency, limits, faults, tokens, repeats, recorder)
    faults.configure()
    tripwire.arm(None)
    recorder.stop()
