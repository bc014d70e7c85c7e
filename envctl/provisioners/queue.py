"""SQS queue: attributes, dead-letter redrive, and the access policy built from `allow_from`.

The access policy is a field of the queue, written by this provisioner from the queue's own
ARN (its partition, region and account) and `allow_from`: the (service, name) pairs of the
EventBridge rules, SNS topics and S3 buckets that may send to it. Those names are known
statically, so the queue depends on none of them. No policy at all when nothing may send.

moto's set_queue_attributes drops attributes it is not sent (Policy among them), and AWS
treats a missing attribute as "leave as is": every write sends the full attribute set.

Discovery reads one thing per queue, GetQueueAttributes: the queues come from the
environment's tag scan (with their tags), their URLs from ListQueues by the environment's
name prefix (a page per 1,000 queues), and GetQueueUrl only for a queue that listing has not
shown yet (ListQueues is eventually consistent). A destroy's discovery reads nothing per
queue: DeleteQueue takes the URL alone.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Literal

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners.base import (NotOurs, Observed, Props, Provisioner, Value, address_of, canonical_json,
                                      tag_changes, with_live_tags)
from envctl.spec.names import physical_name

SOURCE_SERVICES = ("events", "sns", "s3")
UNRECOGNISED = "policy"     # allow_from entry for a policy statement envctl did not write: ("policy", <json>)


class RedrivePolicy(Props):
    dead_letter_target_arn: Value
    max_receive_count: int


class QueueProps(Props):
    name: str                                   # with .fifo for FIFO queues
    fifo: bool = False
    visibility_timeout: int = 30
    message_retention_period: int = 345600
    delay_seconds: int = 0
    maximum_message_size: int = 1048576         # AWS's default since 2025 (the spec caps it at 262144)
    receive_message_wait_time: int = 0
    sqs_managed_sse: bool = True                # SSE-SQS, on by default for new queues
    redrive_policy: RedrivePolicy | None = None
    allow_from: tuple[tuple[str, str], ...] = ()   # (events|sns|s3, rule/topic/bucket name)


class Queue(Provisioner[QueueProps]):
    kind = "queue"
    services = ("sqs",)
    props = QueueProps
    replace_on = frozenset({"name", "fifo"})
    set_fields = frozenset({"allow_from"})
    delete_before_replace = False               # a replacement always has a new name: make it first
    uses = frozenset({"queue"})                 # the dead-letter queue
    tag_scan = "sqs"

    def discover(self, ctx) -> Iterable[Observed[QueueProps]]:
        tagged = []
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            address = address_of(tags)
            if address is not None and address.kind == self.kind:
                tagged.append((arn, tags))
        if not tagged:
            return
        # Every URL at once, as SQS spells it: one built from the client's endpoint may differ
        # (a FIPS or VPC endpoint, an emulator), and `url` is an output other resources keep.
        listed = _listed_urls(ctx, physical_name(ctx.project, ctx.environment, ""))

        def observed(item) -> Observed[QueueProps] | None:
            arn, tags = item
            name, owner = arn.split(":")[5], arn.split(":")[4]
            url = listed.get(name) or _url(ctx, name, owner=owner)
            if url and ctx.for_delete:      # DeleteQueue takes the URL alone
                return Observed(address=address_of(tags), id=url, props=QueueProps(name=name), tags=dict(tags),
                                outputs={"url": url, "arn": arn, "name": name})
            return self._read(ctx, url, tags) if url else None

        yield from filter(None, ctx.map(observed, tagged))

    def read(self, ctx, id: str) -> Observed[QueueProps] | None:
        return self._read(ctx, id, tags=None)

    def read_for_delete(self, ctx, observed: Observed[QueueProps]) -> Observed[QueueProps] | None:
        # DeleteQueue takes the URL alone.
        sqs = ctx.client("sqs")
        return with_live_tags(observed, partial(_tags, sqs, observed.id))

    def find(self, ctx, node: Node) -> Observed[QueueProps] | None:
        url = _url(ctx, node.props.name)
        return self._read(ctx, url, tags=None, address=node.address) if url else None

    def create(self, ctx, node: Node) -> str:
        p: QueueProps = node.props
        # Look first: create_queue on an existing name returns it (and moto replaces its tags).
        existing = self.find(ctx, node)
        if existing is not None:
            if ctx.is_ours(existing.tags):
                return existing.id
            raise NotOurs(node.address, f"SQS queue {p.name}")
        sqs = ctx.client("sqs")
        # The access policy goes with the create call: it names the queue's own ARN, which is
        # known before the queue exists (partition, region, account, name). Should AWS spell it
        # otherwise, the read-back after create shows the difference and the update rewrites it.
        # Empty values mean "remove" to set_queue_attributes; a new queue has nothing to remove.
        attributes = {k: v for k, v in _attributes(p, arn=_arn(ctx, p.name)).items() if v != ""}
        if p.fifo:
            attributes["FifoQueue"] = "true"
        return sqs.create_queue(QueueName=p.name, Attributes=attributes, tags=dict(node.tags))["QueueUrl"]

    def update(self, ctx, observed: Observed[QueueProps], node: Node, changes) -> None:
        ctx.client("sqs").set_queue_attributes(QueueUrl=observed.id,
                                               Attributes=_attributes(node.props, observed.outputs["arn"]))

    def update_tags(self, ctx, observed: Observed[QueueProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        sqs = ctx.client("sqs")
        if to_set:
            sqs.tag_queue(QueueUrl=observed.id, Tags=to_set)
        if to_remove:
            sqs.untag_queue(QueueUrl=observed.id, TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[QueueProps]) -> None:
        from envctl.aws import errors

        try:
            ctx.client("sqs").delete_queue(QueueUrl=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[QueueProps] | None:
        # A queue is usable as soon as create_queue returns; AWS forbids re-creating the same
        # name for 60 s after a delete, which replacement never does (the name is what changed).
        return self.read(ctx, id) if until == "ready" else None

    # -------------------------------------------------------------- private helpers

    def _read(self, ctx, url: str, tags: Mapping[str, str] | None,
              address: Address | None = None) -> Observed[QueueProps] | None:
        from envctl.aws import errors

        sqs = ctx.client("sqs")
        try:
            attributes = partial(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
            if tags is None:        # both side by side (on the executor's read pool)
                answer, tags = ctx.read_all([attributes, partial(_tags, sqs, url)])
            else:
                answer = attributes()
            attrs = answer["Attributes"]
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        arn = attrs["QueueArn"]
        name = arn.split(":")[5]
        return Observed(address=address or address_of(tags) or Address(self.kind, name), id=url,
                        props=_props(name, attrs), tags=dict(tags),
                        outputs={"url": url, "arn": arn, "name": name})


def _tags(sqs, url: str) -> dict[str, str]:
    return sqs.list_queue_tags(QueueUrl=url).get("Tags", {})


def _listed_urls(ctx, prefix: str) -> dict[str, str]:
    """{name: URL} of this account's queues whose names start with `prefix`."""
    urls: dict[str, str] = {}
    # ListQueues pages (NextToken) only when MaxResults is given; 1,000 is its largest page.
    pages = ctx.client("sqs").get_paginator("list_queues").paginate(QueueNamePrefix=prefix,
                                                                     PaginationConfig={"PageSize": 1000})
    for page in pages:
        for url in page.get("QueueUrls", []):
            urls[url.rstrip("/").rsplit("/", 1)[-1]] = url
    return urls


def _arn(ctx, name: str) -> str:
    """The ARN a queue of this name has in ctx's account and region."""
    region = ctx.region
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sqs:{region}:{ctx.aws.account_id()}:{name}"


def _url(ctx, name: str, owner: str | None = None) -> str | None:
    from envctl.aws import errors

    kwargs = {"QueueName": name} | ({"QueueOwnerAWSAccountId": owner} if owner else {})
    try:
        return ctx.client("sqs").get_queue_url(**kwargs)["QueueUrl"]
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise


def _attributes(p: QueueProps, arn: str | None) -> dict[str, str]:
    """The full attribute set (see the module doc); Policy only once the ARN is known."""
    attributes = {
        "VisibilityTimeout": str(p.visibility_timeout),
        "MessageRetentionPeriod": str(p.message_retention_period),
        "DelaySeconds": str(p.delay_seconds),
        "MaximumMessageSize": str(p.maximum_message_size),
        "ReceiveMessageWaitTimeSeconds": str(p.receive_message_wait_time),
        "SqsManagedSseEnabled": "true" if p.sqs_managed_sse else "false",
        # An empty string removes a redrive policy or an access policy.
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": _known(p.redrive_policy.dead_letter_target_arn),
                                     "maxReceiveCount": p.redrive_policy.max_receive_count})
        if p.redrive_policy else "",
    }
    if arn is not None:
        attributes["Policy"] = json.dumps(access_policy(arn, p.allow_from)) if p.allow_from else ""
    return attributes


def _known(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value} is not resolved: the executor resolves references before writing")
    return value


def access_policy(queue_arn: str, allow_from: Iterable[tuple[str, str]]) -> dict:
    """One statement per source service: sqs:SendMessage from that service, only for the named sources."""
    by_service: dict[str, list[str]] = {}
    for service, source in allow_from:
        by_service.setdefault(service, []).append(source)
    return {"Version": "2012-10-17",
            "Statement": [_statement(queue_arn, s, sorted(set(by_service[s])))
                          for s in SOURCE_SERVICES if s in by_service]}


def _statement(queue_arn: str, service: str, sources: list[str]) -> dict:
    condition = {"ArnEquals": {"aws:SourceArn": [_source_arn(queue_arn, service, n) for n in sources]}}
    if service == "s3":
        # Bucket ARNs carry no account: pin it, or a same-named bucket elsewhere could send.
        condition["StringEquals"] = {"aws:SourceAccount": queue_arn.split(":")[4]}
    return {"Sid": f"allow-{service}", "Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_arn, "Condition": condition}


def _source_arn(queue_arn: str, service: str, name: str) -> str:
    """The ARN of a rule, topic or bucket in the queue's own partition, region and account."""
    partition, _, region, account = queue_arn.split(":")[1:5]
    return {"events": f"arn:{partition}:events:{region}:{account}:rule/{name}",
            "sns": f"arn:{partition}:sns:{region}:{account}:{name}",
            "s3": f"arn:{partition}:s3:::{name}"}[service]


def _props(name: str, attrs: Mapping[str, str]) -> QueueProps:
    redrive = None
    if attrs.get("RedrivePolicy"):
        r = json.loads(attrs["RedrivePolicy"])
        redrive = RedrivePolicy(dead_letter_target_arn=r["deadLetterTargetArn"],
                                max_receive_count=int(r["maxReceiveCount"]))
    return QueueProps(
        name=name,
        fifo=attrs.get("FifoQueue", "false") == "true",
        visibility_timeout=int(attrs["VisibilityTimeout"]),
        message_retention_period=int(attrs["MessageRetentionPeriod"]),
        delay_seconds=int(attrs["DelaySeconds"]),
        maximum_message_size=int(attrs["MaximumMessageSize"]),
        receive_message_wait_time=int(attrs["ReceiveMessageWaitTimeSeconds"]),
        sqs_managed_sse=attrs.get("SqsManagedSseEnabled", "false") == "true",
        redrive_policy=redrive,
        allow_from=_allow_from(attrs["QueueArn"], attrs.get("Policy")),
    )


def _allow_from(queue_arn: str, policy: str | None) -> tuple[tuple[str, str], ...]:
    """The sources a live policy allows, read back only from statements exactly as envctl writes them.

    Any other statement (or a hand-edited one) becomes ("policy", <its JSON>), so that it
    shows in the diff and the next update rewrites the policy.
    """
    if not policy:
        return ()
    found: list[tuple[str, str]] = []
    for statement in _as_list(json.loads(policy).get("Statement")):
        sources = _sources(queue_arn, statement)
        if sources is None:
            found.append((UNRECOGNISED, canonical_json(statement)))
        else:
            found.extend(sources)
    return tuple(sorted(set(found)))


def _sources(queue_arn: str, statement: dict) -> list[tuple[str, str]] | None:
    principal = statement.get("Principal")
    service_principal = principal.get("Service") if isinstance(principal, dict) else None
    service = service_principal.removesuffix(".amazonaws.com") if isinstance(service_principal, str) else None
    if service not in SOURCE_SERVICES:
        return None
    arns = _as_list((statement.get("Condition") or {}).get("ArnEquals", {}).get("aws:SourceArn"))
    prefix = _source_arn(queue_arn, service, "")
    names = [a.removeprefix(prefix) for a in arns if isinstance(a, str) and a.startswith(prefix)]
    if not names or len(names) != len(arns):
        return None
    # Exactly the statement envctl would write for these names, or not ours.
    if _normal(_statement(queue_arn, service, sorted(set(names)))) != _normal(statement):
        return None
    return [(service, n) for n in names]


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _normal(value):
    """Policy JSON where a one-element list and its element are the same (AWS may write either)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        items = sorted((_normal(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return items[0] if len(items) == 1 else items
    return value
