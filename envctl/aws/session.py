"""AWS access: one session, its clients shared by every thread, the account guard, tag discovery.

Clients come from botocore, the library under boto3: they are the very clients boto3 makes
(`boto3.client` is `botocore.session.create_client`), without boto3's own import and set-up
(its resources, and the S3 transfer manager it attaches to every S3 client), about 0.1 s of
every command's start-up that envctl never used. botocore sessions are not thread-safe;
clients are. We create clients under a lock from one session, and share them.

Standard retry mode retries throttling, 5xx and dropped connections with backoff (total
attempts bounded by `max_attempts`), but for one case: a mutating call without an
idempotency token whose connection broke after it was sent (see `_no_blind_retry`). That
one may have happened, so it goes back to the caller, which looks before it tries again.
"""
from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, NoCredentialsError, NoRegionError,
                                 ReadTimeoutError)

from envctl import __version__
from envctl.aws import errors
from envctl.aws.datafiles import Loader
from envctl.aws.ratelimit import RateLimiter

DEFAULT_MAX_ATTEMPTS = 8
ACCOUNT_CHECK_THREAD = "envctl-account-check"
PREPARE_THREAD = "envctl-clients"
# Operations that only read, by name: everything else may change something.
READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Query", "Scan", "BatchGet", "Search", "Select",
                 "Receive", "Check", "Validate", "Estimate", "Preview", "Filter", "Test")
# Writes that are the same write when repeated, which botocore's model cannot say: DynamoDB item
# writes of a whole item by its key. envctl's only ones are the environment lock's, whose
# conditions hold for their own repeat (engine/lock.py: `token = :mine`).
REPEATABLE = frozenset({("dynamodb", "PutItem"), ("dynamodb", "UpdateItem"), ("dynamodb", "DeleteItem")})

# botocore parses its service models (megabytes of JSON) once per loader, and each Session has
# its own: one loader for the process makes every session after the first cheap (the tests and
# benchmarks create hundreds). It holds only botocore's static data, no credentials or config.
_LOADER = Loader()


# The tag scan's largest pages by tags: the default, 100 tags, ends a page of envctl's resources
# (6-10 tags each) at about 15; 500, the most AWS allows, at about 50 (moto's default page size).
# Not ResourcesPerPage as well: AWS takes one of the two limits in a request, not both.
TAG_SCAN_PAGES = {"TagsPerPage": 500}


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
    rate_limit: bool = True                      # client-side token buckets (aws/ratelimit.py)


class AwsSession:
    def __init__(self, options: AwsOptions, default_region: str):
        self.options = options
        self.region = options.region or default_region
        self.endpoint_url = options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        try:
            core = botocore.session.Session(profile=options.profile)
            core.register_component("data_loader", _LOADER)
            if options.access_key or options.secret_key:
                core.set_credentials(options.access_key, options.secret_key)
            core.set_config_variable("region", self.region)
            core.get_scoped_config()        # a missing profile is said here, not at the first call
            self._session = core
        except BotoCoreError as e:
            raise AwsAccessError(f"cannot use AWS profile {options.profile!r}: {e}") from None
        # Refused with an endpoint too: emulators answer any region, moto with HTML 500s.
        if self.region not in _known_regions():
            raise AwsAccessError(f"unknown AWS region {self.region!r}: give one of AWS's regions (e.g. "
                                 "eu-north-1) with --region or the spec's region:")
        # user_agent_extra: CloudTrail then says which calls envctl made (boto3 said "Boto3/…").
        self._config = Config(retries={"mode": "standard", "total_max_attempts": options.max_attempts},
                              user_agent_extra=f"envctl/{__version__}",
                              max_pool_connections=64, connect_timeout=10, read_timeout=60)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None
        self._account_check: Future | None = None     # check_account_meanwhile's
        self._tagged: dict[str, list[tuple[str, dict[str, str]]]] | None = None
        self._tag_lock = threading.Lock()
        self.scope: tuple[str, str] | None = None
        self.limiter = RateLimiter(is_read=is_read, region=self.region) if options.rate_limit else None

    def client(self, service: str) -> Any:
        """The session's client of `service`, made once and shared by every thread.

        After check_account_meanwhile(), a client is handed out only once the account check
        has passed (its failure, an AwsAccessError, is raised here, in every thread that asks):
        so no call reaches AWS before it, while what needs no call goes on.
        """
        c = self._made(service)
        self._wait_for_account_check()
        return c

    def prepare_clients(self, services: Iterable[str]) -> threading.Thread:
        """Build the clients of `services` (those not made yet) on a thread of its own, for calls
        to come: a client takes 5-30 ms of CPU to build, which a command otherwise spends when
        it first needs one, on its critical path (the executor's first call of each service, a
        kind's first read after the tag scan). Started beside discovery, this builds them while
        discovery waits on AWS. After check_account_meanwhile(), it starts once the check has
        answered, so as not to hold up the clients discovery needs first; it builds none after a
        refusal. Nothing is handed out and no call made; a client that cannot be built is left
        to client(), which raises the same error where it is needed. Returns the thread."""
        services = list(services)

        def build() -> None:
            try:
                self._wait_for_account_check()
            except Exception:  # noqa: BLE001 — every client() says the refusal
                return
            for service in services:
                try:
                    self._made(service)
                except Exception:  # noqa: BLE001 — client() raises it where the client is needed
                    pass

        thread = threading.Thread(target=build, name=PREPARE_THREAD, daemon=True)
        thread.start()
        return thread

    def _made(self, service: str) -> Any:
        c = self._clients.get(service)          # made: no lock (a dict read is atomic)
        if c is not None:
            return c
        with self._lock:                        # botocore sessions are not thread-safe: one at a time
            c = self._clients.get(service)
            if c is None:
                c = self._session.create_client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                                config=self._config)
                # First, so that botocore's own retry handler never sees these failures.
                service_id = c.meta.service_model.service_id.hyphenize()
                c.meta.events.register_first(f"needs-retry.{service_id}", _no_blind_retry)
                if self.limiter is not None:
                    before_send, after_attempt = self.limiter.handlers(c.meta.service_model.signing_name)
                    c.meta.events.register(f"before-send.{service_id}", before_send)
                    c.meta.events.register_first(f"needs-retry.{service_id}", after_attempt)
                self._clients[service] = c
            return c

    def account_id(self) -> str:
        self._wait_for_account_check()
        return self._read_account()

    def _read_account(self) -> str:
        if self._account is None:
            try:
                self._account = self._caller_account()
            except NoCredentialsError:
                raise AwsAccessError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                                     "AWS_SECRET_ACCESS_KEY, or use --sandbox") from None
            except NoRegionError:
                raise AwsAccessError("no AWS region: give --region or set region: in the spec") from None
            except ClientError as e:
                code = errors.error_code(e)
                if errors.is_expired_credentials(e):
                    raise AwsAccessError("the AWS credentials have expired; log in again "
                                         "(aws sso login, or new keys)") from None
                if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
                    raise AwsAccessError(f"AWS rejected the credentials ({errors.message(e)})") from None
                raise AwsAccessError(f"cannot read the caller identity: {errors.message(e)}") from None
            except BotoCoreError as e:
                if self.endpoint_url:
                    raise AwsAccessError(f"cannot reach the endpoint {self.endpoint_url} ({e}); check "
                                         "--endpoint-url / AWS_ENDPOINT_URL, or start the sandbox") from None
                raise AwsAccessError(f"cannot reach AWS in {self.region} ({e}); check the network and "
                                     "proxy settings") from None
        return self._account

    def _caller_account(self) -> str:
        """The account of the credentials: the first call of every command.

        A wrong endpoint or no network would only be said after the full retry budget (8
        attempts, seconds; minutes for an endpoint that never answers), so the first try has
        3 quick attempts and short timeouts; a throttled or failing STS then gets the full
        budget of the session's own client.
        """
        with self._lock:                # the session is not thread-safe (check_account_meanwhile)
            quick = self._session.create_client("sts", region_name=self.region, endpoint_url=self.endpoint_url,
                                                config=self._config.merge(Config(
                                                    retries={"mode": "standard", "total_max_attempts": 3},
                                                    connect_timeout=5, read_timeout=15)))
        try:
            return quick.get_caller_identity()["Account"]
        except ClientError as e:
            if not errors.is_transient(e):
                raise
        return self._made("sts").get_caller_identity()["Account"]

    def check_account(self, expected: str | None, pinned_at: str | None = None) -> None:
        """The account guard: refuse, before any other call, credentials of another account.
        `pinned_at`: where the spec pins it (`specs/prod.yaml:3`), for the refusal to name."""
        self._wait_for_account_check()
        self._check_account(expected, pinned_at)

    def check_account_meanwhile(self, expected: str | None, pinned_at: str | None = None) -> None:
        """check_account on a thread of its own, while the caller goes on with what makes no
        call (importing, building clients: 0.1-0.2 s of CPU a command): the check's round trip
        to STS is then no longer spent waiting. client() and account_id() wait for the check,
        so the guarantee is check_account's: no other call before it, none at all on failure."""
        check: Future = Future()

        def run() -> None:
            try:
                check.set_result(self._check_account(expected, pinned_at))
            except BaseException as e:  # noqa: BLE001 — handed to every thread that asks for a client
                check.set_exception(e)

        self._account_check = check
        threading.Thread(target=run, name=ACCOUNT_CHECK_THREAD, daemon=True).start()

    def _wait_for_account_check(self) -> None:
        """After check_account_meanwhile(): wait for the check; raise its refusal."""
        if self._account_check is not None:
            self._account_check.result()

    def _check_account(self, expected: str | None, pinned_at: str | None) -> None:
        actual = self._read_account()
        if expected and actual != expected:
            at = f" at {pinned_at}" if pinned_at else ""
            raise AwsAccessError(f"the credentials belong to account {actual}, but the spec pins account "
                                 f"{expected}{at}; use credentials for {expected} (--profile) or change the "
                                 "spec's account:")

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
                                                   {"Key": tagging.ENVIRONMENT, "Values": [environment]}],
                                       **TAG_SCAN_PAGES):
            for item in page.get("ResourceTagMappingList", []):
                arn = item["ResourceARN"]
                service = arn.split(":")[2]
                tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                out.setdefault(service, []).append((arn, tags))
        return out


def _no_blind_retry(caught_exception=None, operation=None, **kwargs) -> None:
    """botocore's needs-retry hook: hand a broken-off mutating call back instead of re-sending it.

    A dropped connection or a read timeout after the request went out leaves it unknown whether
    the call happened. Re-sending it blindly makes a second VPC (no name, no token), or fails
    with "already exists" on the first one's rule, route or attachment, and the caller never
    learns that it should look first. Reads are safe to repeat, and so are calls with an
    idempotency token (botocore fills it in once and re-sends the same one) and the few
    `REPEATABLE` writes: for those, and for every other failure, it returns None and
    botocore's standard handler decides as usual.
    """
    if not isinstance(caught_exception, (ConnectionClosedError, ReadTimeoutError)) or operation is None:
        return None
    if is_read(operation.name) or operation.idempotent_members:
        return None
    if (operation.service_model.endpoint_prefix, operation.name) in REPEATABLE:
        return None
    raise caught_exception


def is_read(action: str) -> bool:
    """Whether an API action only reads, by its name (botocore's model does not say)."""
    return action.startswith(READ_PREFIXES)


def _known_regions() -> set[str]:
    """Every region botocore knows, in every partition (aws, aws-cn, aws-us-gov…): its endpoint
    data names them, and clients load that data anyway. (get_available_regions walks every
    partition's endpoints for the same set: 0.05-0.09 s a command.)"""
    return {region for partition in _LOADER.load_data("endpoints")["partitions"] for region in partition["regions"]}
