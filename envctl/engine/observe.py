"""Observe: what AWS holds for one environment, read by tags. Read-only.

Every kind's `discover(ctx)` runs on a small thread pool; together they give one Observed
per address. A kind that must read its resources one by one (no batch describe) reads them
side by side on a second pool (`Ctx.map`), shared fairly among the kinds (engine/lanes.py).
Two live resources claiming the same address are a problem to report (a duplicate from a
crashed run, a copy made by hand), never something to pick from silently: they are listed
in `duplicates` and left out of `resources`, and the caller must stop.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from envctl.aws import errors
from envctl.engine import retry
from envctl.engine.lanes import LanePool
from envctl.model.address import Address
from envctl.plan.planner import provisioner_lookup
from envctl.provisioners.base import Ctx, Observed, Provisioner

DISCOVER_WINDOW_S = 30.0
# Reads of single resources (Ctx.map) side by side, shared by the kinds. They wait on AWS, not
# on the CPU, and the session's token buckets keep them within AWS's limits.
READS = 16


@dataclass(frozen=True)
class Observation:
    resources: dict[Address, Observed] = field(default_factory=dict)
    duplicates: list[tuple[Address, list[str]]] = field(default_factory=list)   # (address, ids), sorted
    skipped_kinds: list[str] = field(default_factory=list)                       # kinds without discover yet


class ObserveError(Exception):
    """Discovery of a kind failed: planning on a partial view would duplicate resources."""

    def __init__(self, kind: str, error: BaseException):
        self.kind = kind
        self.error = error
        super().__init__(f"discovering {kind} resources: {errors.message(error)}")


def observe(ctx: Ctx, kinds: Iterable[str] | None = None, reads: int = READS, *,
            provisioners: Mapping[str, Provisioner] | None = None, sleep=None) -> Observation:
    """Every resource of `kinds` (default: all registered kinds) tagged for ctx's environment.

    Each kind is discovered afresh (the session's tag scan cache is dropped first), all kinds
    at once, each on its own thread: a kind's listing is a call or a few, and 22 kinds on 8
    threads took three rounds of calls where one will do.
    `reads` bounds the reads of single resources instead. Temporary errors are retried for a
    short window; any other failure raises ObserveError.
    """
    get = provisioner_lookup(provisioners)
    if kinds is None:
        if provisioners is None:
            from envctl.provisioners import kinds as registered

            kinds = registered()
        else:
            kinds = list(provisioners)
    # The kinds that wait for the tag scan and then read make discovery's longest chain: they start first.
    kinds = sorted(kinds, key=lambda kind: get(kind).tag_scan is None)
    forget = getattr(ctx.aws, "forget_tagged", None)
    if forget is not None:
        forget()
    # Every client the kinds call, built while discovery waits on AWS: first those the scan's
    # kinds read with once the scan answers, then those only changes use (the executor's).
    prepare = getattr(ctx.aws, "prepare_clients", None)
    if prepare is not None:
        prepare(list(dict.fromkeys(service for kind in kinds for service in get(kind).services)))

    retry_options = {} if sleep is None else {"sleep": sleep}

    with ThreadPoolExecutor(max_workers=max(1, len(kinds)), thread_name_prefix="observe") as pool, \
            LanePool(max(1, reads), name="read") as read_pool:

        def discover(kind: str) -> list[Observed] | None:
            p = get(kind)
            reading = dataclasses.replace(ctx, read_pool=read_pool.lane())     # each kind its share of the reads
            try:
                return retry.retry(lambda: list(p.discover(reading)), deadline_s=DISCOVER_WINDOW_S,
                                   **retry_options)
            except NotImplementedError:
                return None                 # a kind not implemented yet: nothing of it can exist
            except Exception as e:
                raise ObserveError(kind, e) from e

        found = list(zip(kinds, pool.map(discover, kinds)))

    claims: dict[Address, list[Observed]] = {}
    skipped = []
    for kind, observed in found:
        if observed is None:
            skipped.append(kind)
            continue
        for obs in observed:
            same = claims.setdefault(obs.address, [])
            if all(o.id != obs.id for o in same):       # one resource found twice is still one
                same.append(obs)
    resources = {a: obs[0] for a, obs in sorted(claims.items()) if len(obs) == 1}
    duplicates = [(a, sorted(o.id for o in obs)) for a, obs in sorted(claims.items()) if len(obs) > 1]
    return Observation(resources, duplicates, skipped)


@dataclass(frozen=True)
class EnvironmentSummary:
    project: str
    environment: str
    resources: int
    created: str | None          # the earliest envctl:created tag
    expires: str | None          # the latest envctl:expires tag, when the environment has a lifetime


def environments(session, *, reads: int = READS) -> list[EnvironmentSummary]:
    """Every (project, environment) with resources in the session's account and region.

    A cheap scan finds the environments (the tagging API, plus IAM paths and EC2 / Auto
    Scaling tag filters for what it does not cover); each one is then observed in full, so
    the counts are exact.
    """
    from envctl.aws.session import TAG_SCAN_PAGES
    from envctl.model import tags as tagging
    from envctl.provisioners.base import Ctx

    scopes: set[tuple[str, str]] = set()
    paginator = session.client("resourcegroupstaggingapi").get_paginator("get_resources")
    for page in paginator.paginate(TagFilters=[{"Key": tagging.ENVIRONMENT}], **TAG_SCAN_PAGES):
        for item in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            if tagging.PROJECT in tags:
                scopes.add((tags[tagging.PROJECT], tags[tagging.ENVIRONMENT]))
    for page in session.client("iam").get_paginator("list_roles").paginate(PathPrefix="/envctl/"):
        for role in page.get("Roles", []):
            parts = role["Path"].strip("/").split("/")
            if len(parts) == 3:
                scopes.add((parts[1], parts[2]))
    scopes |= _ec2_scopes(session)

    def summarise(scope: tuple[str, str]) -> EnvironmentSummary:
        project, environment = scope
        scoped = session.for_scope(scope)
        found = observe(Ctx(aws=scoped, project=project, environment=environment), reads=reads)
        live = list(found.resources.values())
        created = min((o.tags[tagging.CREATED] for o in live if tagging.CREATED in o.tags), default=None)
        expires = max((o.tags[tagging.EXPIRES] for o in live if tagging.EXPIRES in o.tags), default=None)
        return EnvironmentSummary(project, environment, len(live), created, expires)

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="environments") as pool:
        summaries = list(pool.map(summarise, sorted(scopes)))
    return [s for s in summaries if s.resources]


def _ec2_scopes(session) -> set[tuple[str, str]]:
    from envctl.model import tags as tagging

    out = set()
    key_filter = [{"Name": "tag-key", "Values": [tagging.ENVIRONMENT]}]
    ec2 = session.client("ec2")
    for item in ec2.describe_addresses(Filters=key_filter).get("Addresses", []):
        out.add(_scope_of(item.get("Tags")))
    for page in ec2.get_paginator("describe_launch_templates").paginate(Filters=key_filter):
        for item in page.get("LaunchTemplates", []):
            out.add(_scope_of(item.get("Tags")))
    asg = session.client("autoscaling")
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate(
            Filters=[{"Name": "tag-key", "Values": [tagging.ENVIRONMENT]}]):
        for group in page.get("AutoScalingGroups", []):
            out.add(_scope_of(group.get("Tags")))
    out.discard(None)
    return out


def _scope_of(tag_list) -> tuple[str, str] | None:
    from envctl.model import tags as tagging

    tags = {t["Key"]: t["Value"] for t in tag_list or ()}
    if tagging.PROJECT in tags and tagging.ENVIRONMENT in tags:
        return tags[tagging.PROJECT], tags[tagging.ENVIRONMENT]
    return None
