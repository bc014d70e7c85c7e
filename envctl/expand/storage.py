"""buckets: → S3 buckets (secure by default); functions: → Lambda functions, each with its own
log group `/aws/lambda/<function>` made before it."""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.model import package
from envctl.model.address import Address
from envctl.model.graph import Ref, Template
from envctl.provisioners.bucket import (EVENTS, BucketProps, LifecycleRule, Notification, bucket_outputs,
                                        deny_insecure_transport)
from envctl.provisioners.function import FunctionProps
from envctl.provisioners.log_group import LogGroupProps
from envctl.spec import models, refs

FUNCTION_LOG_RETENTION_DAYS = 30


def bucket_name(x: Expansion, name: str) -> str:
    """The bucket's physical name: its `name:`, or <project>-<environment>-<name>."""
    return x.model.buckets[name].name or x.physical(name)


def function_log_group(name: str) -> str:
    """The address name of a function's own log group: log_group/function-<name>."""
    return f"function-{name}"


def expand_buckets(x: Expansion) -> None:
    for name, bucket in x.model.buckets.items():
        physical = bucket_name(x, name)
        x.add("bucket", name, BucketProps(
            name=physical,
            block_public_acls=True, ignore_public_acls=True, block_public_policy=True, restrict_public_buckets=True,
            encryption="AES256", bucket_key_enabled=True,
            policy=deny_insecure_transport(physical, x.model.region),
            versioning=bucket.versioning,
            lifecycle=tuple(_lifecycle_rule(r) for r in bucket.lifecycle),
            notifications=tuple(_notification(x, n) for n in bucket.notify),
        ), physical_name=physical)


def _lifecycle_rule(rule: models.LifecycleRule) -> LifecycleRule:
    return LifecycleRule(prefix=rule.prefix, expire_days=rule.expire_days,
                         noncurrent_expire_days=rule.noncurrent_expire_days, transition_days=rule.transition_days,
                         storage_class=rule.storage_class, abort_incomplete_upload_days=rule.abort_incomplete_upload_days)


def _notification(x: Expansion, n: models.Notification) -> Notification:
    return Notification(events=tuple(sorted({EVENTS[e] for e in n.events})),
                        function_arn=x.ref("function", n.function, "arn") if n.function else None,
                        queue_arn=x.ref("queue", n.queue, "arn") if n.queue else None,
                        prefix=n.prefix or None, suffix=n.suffix or None)


def expand_functions(x: Expansion) -> None:
    for name, fn in x.model.functions.items():
        physical = x.physical(name)
        # Made by envctl, tagged, before the function: otherwise Lambda makes it on the first
        # invocation, untagged and kept forever.
        log_group = x.add("log_group", function_log_group(name),
                          LogGroupProps(retention_in_days=FUNCTION_LOG_RETENTION_DAYS),
                          physical_name=f"/aws/lambda/{physical}")
        folder = (x.spec.source_dir(("functions", name, "source")) / fn.source).resolve()
        x.add("function", name, FunctionProps(
            runtime=fn.runtime,
            handler=fn.handler,
            role=x.ref("role", fn.role, "arn"),
            code_sha256=package.code_sha256(package.zip_folder(folder)),
            source=str(folder),
            memory_size=fn.memory_mb,
            timeout=fn.timeout_s,
            environment={key: _value(x, text) for key, text in sorted(fn.environment.items())},
            invoke_from=_invokers(x, name),
        ), physical_name=physical, extra_deps=[log_group])


def _invokers(x: Expansion, function: str) -> tuple[tuple[str, str], ...]:
    """Who may invoke `function`: the buckets that notify it and the topics it is subscribed to."""
    found = {("s3", bucket_name(x, b)) for b, bucket in x.model.buckets.items()
             for n in bucket.notify if n.function == function}
    found |= {("sns", x.physical(t)) for t, topic in x.model.topics.items()
              for s in topic.subscriptions if s.function == function}
    return tuple(sorted(found))


def _value(x: Expansion, text: str):
    """A spec string with `${section.name.attr}` references: the string itself, a Ref when it is
    exactly one reference, or a Template of text and Refs."""
    pieces = refs.PATTERN.split(text)            # text, inner, text, inner, …, text
    parts: list = []
    for i, piece in enumerate(pieces):
        value = _reference(x, piece) if i % 2 else piece
        if isinstance(value, str) and parts and isinstance(parts[-1], str):
            parts[-1] += value
        elif value != "":
            parts.append(value)
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return Template(tuple(parts))


def _reference(x: Expansion, inner: str):
    r = refs.parse(inner)
    kind = refs.ATTRIBUTES[r.section][0]
    if kind == "bucket":
        # Known from the name alone: no Ref, so a function may name a bucket that notifies it
        # without making a dependency cycle.
        return bucket_outputs(bucket_name(x, r.name), x.model.region)[r.attribute]
    return Ref(Address(kind, r.name), r.attribute)
