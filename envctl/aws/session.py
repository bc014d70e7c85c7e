"""boto3 access: one Session, clients cached per thread, the account guard, tag discovery.

boto3 Sessions are not thread-safe; clients are. We create clients under a lock from one
Session, and share them. Standard retry mode retries throttling, 5xx and dropped
connections with backoff (total attempts bounded by `max_attempts`).
"""
from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from envctl.aws import errors

DEFAULT_MAX_ATTEMPTS = 8

# botocore parses its service models (megabytes of JSON) once per loader, and each Session has
# its own: one loader for the process makes every session after the first cheap (the tests and
# benchmarks create hundreds). It holds only botocore's static data, no credentials or config.
_LOADER = botocore.loaders.create_loader()


class AwsAccessError(Exception):
    """AWS cannot be reached or refuses us: one sentence, for the user."""


@dataclass(frozen=True)
class AwsOptions:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    access_key: str | None = None                # the sandbox sets dummy credentials
    secret_key: str | None = None


class AwsSession:
    def __init__(self, options: AwsOptions, default_region: str):
        self.options = options
        self.region = options.region or default_region
        self.endpoint_url = options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        try:
            core = botocore.session.get_session()
            core.register_component("data_loader", _LOADER)
            self._session = boto3.Session(botocore_session=core, profile_name=options.profile,
                                          region_name=self.region, aws_access_key_id=options.access_key,
                                          aws_secret_access_key=options.secret_key)
            core.get_scoped_config()        # a missing profile is said here, not at the first call
        except BotoCoreError as e:
            raise AwsAccessError(f"cannot use AWS profile {options.profile!r}: {e}") from None
        if self.region not in self._session.get_available_regions("ec2") and not self.endpoint_url:
            raise AwsAccessError(f"unknown AWS region {self.region!r}")
        self._config = Config(retries={"mode": "standard", "total_max_attempts": options.max_attempts},
                              max_pool_connections=64, connect_timeout=10, read_timeout=60)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None
        self._tagged: dict[str, list[tuple[str, dict[str, str]]]] | None = None
        self._tag_lock = threading.Lock()
        self.scope: tuple[str, str] | None = None

    def client(self, service: str) -> Any:
        with self._lock:
            c = self._clients.get(service)
            if c is None:
                c = self._session.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                         config=self._config)
                self._clients[service] = c
            return c

    def account_id(self) -> str:
        if self._account is None:
            try:
                self._account = self.client("sts").get_caller_identity()["Account"]
            except NoCredentialsError:
                raise AwsAccessError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                                     "AWS_SECRET_ACCESS_KEY, or use --sandbox") from None
            except NoRegionError:
                raise AwsAccessError("no AWS region: give --region or set region: in the spec") from None
            except ClientError as e:
                code = errors.error_code(e)
                if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
                    raise AwsAccessError("the AWS credentials have expired; log in again "
                                         "(aws sso login, or new keys)") from None
                if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
                    raise AwsAccessError(f"AWS rejected the credentials ({errors.message(e)})") from None
                raise AwsAccessError(f"cannot read the caller identity: {errors.message(e)}") from None
            except BotoCoreError as e:
                where = self.endpoint_url or f"AWS in {self.region}"
                raise AwsAccessError(f"cannot reach {where}: {e}") from None
        return self._account

    def check_account(self, expected: str | None) -> None:
        """The account guard: refuse, before any other call, credentials of another account."""
        actual = self.account_id()
        if expected and actual != expected:
            raise AwsAccessError(f"the credentials belong to account {actual}, but the spec pins account "
                                 f"{expected}; use credentials for {expected} (--profile) or fix account:")

    def for_scope(self, scope: tuple[str, str]) -> "AwsSession":
        """The same clients and account, seen from another (project, environment)."""
        other = copy.copy(self)
        other.scope = scope
        other._tagged = None
        other._tag_lock = threading.Lock()
        return other

    def tagged_arns(self, resource_type: str) -> list[tuple[str, dict[str, str]]]:
        """ARNs and tags of every resource of `resource_type` (e.g. "sqs") tagged for the scope.

        One paginated Resource Groups Tagging API scan for the whole environment, cached:
        kinds that RGTA covers read their list from here instead of listing their service.
        Kinds asking at once wait for the one scan (its own lock: clients stay available).
        """
        with self._tag_lock:
            if self._tagged is None:
                self._tagged = self._scan_tagged()
            return list(self._tagged.get(resource_type, []))

    def forget_tagged(self) -> None:
        with self._tag_lock:
            self._tagged = None

    def _scan_tagged(self) -> dict[str, list[tuple[str, dict[str, str]]]]:
        from envctl.model import tags as tagging

        assert self.scope is not None, "set session.scope before discovery"
        project, environment = self.scope
        out: dict[str, list] = {}
        paginator = self.client("resourcegroupstaggingapi").get_paginator("get_resources")
        for page in paginator.paginate(TagFilters=[{"Key": tagging.PROJECT, "Values": [project]},
                                                   {"Key": tagging.ENVIRONMENT, "Values": [environment]}]):
            for item in page.get("ResourceTagMappingList", []):
                arn = item["ResourceARN"]
                service = arn.split(":")[2]
                tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                out.setdefault(service, []).append((arn, tags))
        return out
