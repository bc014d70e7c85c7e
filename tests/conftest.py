"""Test fixtures: moto in server mode over real HTTP, started by the suite itself.

`aws` gives a fresh emulated AWS per test (state wiped, request log cleared), points
boto3 at it through AWS_ENDPOINT_URL with dummy credentials, and offers plain boto3
clients for reading state back.
"""
from __future__ import annotations

import os

import boto3
import pytest

from envctl.sandbox.server import SANDBOX_ACCOUNT, EmulatedAws

REGION = "eu-north-1"


@pytest.fixture(scope="session")
def _cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _deterministic_env(monkeypatch, _cache_home):
    """No colour, a fixed width, no terminal, no real credentials, no writes to the user's cache
    directory (envctl keeps parsed botocore models there): the same everywhere."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_cache_home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("CI", raising=False)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("ENVCTL_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def emulator():
    server = EmulatedAws().start()
    yield server
    server.stop()


class Aws:
    """The emulated AWS of one test: plain boto3 clients and the request log."""

    def __init__(self, server: EmulatedAws):
        self.server = server
        self.endpoint = server.endpoint
        self.log = server.log
        self.account = SANDBOX_ACCOUNT
        self.region = REGION

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def aws(emulator, monkeypatch):
    emulator.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return Aws(emulator)
