"""S3 bucket, with its public access block, encryption, policy, versioning, lifecycle rules
and event notifications (all sub-resources of the bucket).

The id is the bucket's name. Secure by default: public access blocked, SSE-S3 encryption
with a bucket key, and a policy that denies every request not made over TLS.

Discovery takes the buckets and their tags from the environment's tag scan and keeps those
of this region, which one ListBuckets(BucketRegion=…) names (a page per 10,000 buckets). S3
keeps each configuration behind its own call and has no batch read: six calls per bucket
(public access block, encryption, policy, versioning, lifecycle, notifications).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from envctl.aws import errors
from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.diff import AttrChange, diff_props
from envctl.model.graph import Node
from envctl.provisioners.base import (Ctx, NotOurs, Observed, Props, Provisioner, Timeouts, Value, address_of,
                                      canonical_json, tag_dict, tag_list, with_live_tags)

EVENTS = {"created": "s3:ObjectCreated:*", "removed": "s3:ObjectRemoved:*", "restored": "s3:ObjectRestore:*"}
PUBLIC_ACCESS_FLAGS = {"block_public_acls": "BlockPublicAcls", "ignore_public_acls": "IgnorePublicAcls",
                       "block_public_policy": "BlockPublicPolicy", "restrict_public_buckets": "RestrictPublicBuckets"}


class LifecycleRule(Props):
    prefix: str = ""
    enabled: bool = True
    expire_days: int | None = None
    noncurrent_expire_days: int | None = None
    transition_days: int | None = None
    storage_class: str | None = None
    abort_incomplete_upload_days: int | None = None


class Notification(Props):
    """One event notification: to a function or a queue (a topic only when made by hand)."""

    events: tuple[str, ...]                       # s3:ObjectCreated:*, … sorted
    function_arn: Value | None = None
    queue_arn: Value | None = None
    topic_arn: str | None = None
    prefix: str | None = None
    suffix: str | None = None


class BucketProps(Props):
    name: str
    # AWS's defaults for a new bucket (since 2023): public access blocked, SSE-S3.
    block_public_acls: bool = True
    ignore_public_acls: bool = True
    block_public_policy: bool = True
    restrict_public_buckets: bool = True
    encryption: str | None = "AES256"             # SSEAlgorithm; None: no default encryption (moto only)
    bucket_key_enabled: bool = False
    policy: str | None = None                     # canonical JSON (base.canonical_json)
    versioning: bool = False                      # Enabled; a suspended or never-versioned bucket is False
    lifecycle: tuple[LifecycleRule, ...] = ()
    notifications: tuple[Notification, ...] = ()


class Bucket(Provisioner[BucketProps]):
    kind = "bucket"
    services = ("s3",)
    props = BucketProps
    replace_on = frozenset({"name"})
    set_fields = frozenset({"lifecycle", "notifications"})
    stateful = True
    timeouts = Timeouts(create=120, update=120, delete=1800)     # delete empties the bucket first
    uses = frozenset({"function", "queue"})
    tag_scan = "s3"

    def discover(self, ctx: Ctx) -> Iterable[Observed[BucketProps]]:
        tagged = []
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            address = address_of(tags)
            if ctx.is_ours(tags) and address is not None and address.kind == self.kind:
                tagged.append((arn.rsplit(":", 1)[-1], tags, address))
        if not tagged:
            return
        # The Tagging API lists buckets of every region on moto: keep this region's, named by one
        # listing rather than a GetBucketLocation per bucket.
        s3 = ctx.client("s3")
        here = {b["Name"] for page in s3.get_paginator("list_buckets").paginate(BucketRegion=ctx.region)
                for b in page.get("Buckets", [])}

        ours = [item for item in tagged if item[0] in here]
        if ctx.for_delete:      # the delete empties the bucket and removes its settings, whatever they are
            for name, tags, address in ours:
                yield Observed(address=address, id=name, props=BucketProps(name=name), tags=dict(tags),
                               outputs=bucket_outputs(name, ctx.region))
            return

        def read(setting: Callable[[], Any]) -> Any:
            try:
                return setting()
            except Exception as e:
                if errors.is_not_found(e):              # the bucket was deleted since it was listed
                    return _GONE
                raise

        # Every setting of every bucket side by side: a bucket costs one call's time, not six.
        reads = [_settings(s3, name) for name, _, _ in ours]
        answers = iter(ctx.map(read, [setting for settings in reads for setting in settings]))
        for (name, tags, address), bucket_reads in zip(ours, reads):
            settings = [next(answers) for _ in bucket_reads]
            if _GONE not in settings:
                yield Observed(address=address, id=name, props=_props(name, *settings), tags=dict(tags),
                               outputs=bucket_outputs(name, ctx.region))

    def read(self, ctx: Ctx, id: str) -> Observed[BucketProps] | None:
        return self._read(ctx, id)

    def read_for_delete(self, ctx: Ctx, observed: Observed[BucketProps]) -> Observed[BucketProps] | None:
        # The delete empties the bucket and removes its policy and notifications whatever they are.
        s3 = ctx.client("s3")
        return with_live_tags(observed, lambda: tag_dict(_get(s3.get_bucket_tagging, observed.id, "TagSet", [])))

    def find(self, ctx: Ctx, node: Node) -> Observed[BucketProps] | None:
        """By name, so that a bucket created but not yet tagged is found too (the Tagging API misses it)."""
        try:
            return self._read(ctx, node.props.name)
        except Exception as e:
            if errors.http_status(e) == 403:            # the name belongs to another account
                raise NotOurs(node.address, f"S3 bucket {node.props.name}") from None
            raise

    def create(self, ctx: Ctx, node: Node) -> str:
        s3 = ctx.client("s3")
        name = node.props.name
        # In us-east-1, look first: creating a bucket we already own succeeds silently there, and
        # the tagging below would then claim a bucket that is not envctl's. Every other region
        # refuses a taken name (BucketAlreadyOwnedByYou, BucketAlreadyExists): look only then.
        if ctx.region == "us-east-1":
            existing = self.find(ctx, node)
            if existing is not None:
                return self._adopt(ctx, node, existing)
        # Tagged on create (CreateBucketConfiguration.Tags), so that a bucket whose create lost its
        # reply, or whose run was killed right after, is found by name as ours and adopted.
        configuration: dict[str, Any] = {"Tags": tag_list(node.tags)}
        if ctx.region != "us-east-1":
            configuration["LocationConstraint"] = ctx.region
        try:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration=configuration)
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = self.find(ctx, node)           # ours from before, or not ours
            if existing is None:
                raise NotOurs(node.address, f"S3 bucket {name}") from None
            return self._adopt(ctx, node, existing)
        # Tagged again at once: moto (the test emulator) ignores the tags of CreateBucket.
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(node.tags)})
        # Everything that differs from a bare bucket; the security settings always, whatever this
        # account's (or the emulator's) defaults for new buckets are.
        bare = BucketProps(name=name, block_public_acls=False, ignore_public_acls=False, block_public_policy=False,
                           restrict_public_buckets=False, encryption=None)
        _configure(s3, name, node.props, {c.path for c in diff_props(node.props, bare, set_fields=self.set_fields)})
        return name

    def update(self, ctx: Ctx, observed: Observed[BucketProps], node: Node, changes: list[AttrChange]) -> None:
        _configure(ctx.client("s3"), observed.id, node.props, {c.path for c in changes})

    def update_tags(self, ctx: Ctx, observed: Observed[BucketProps], tags: Mapping[str, str]) -> None:
        # put_bucket_tagging replaces the whole set: envctl's own tags go with the user's.
        own = {k: v for k, v in observed.tags.items() if k in tagging.OWNERSHIP}
        ctx.client("s3").put_bucket_tagging(Bucket=observed.id,
                                            Tagging={"TagSet": tag_list({**tagging.user_tags(tags), **own})})

    def wait(self, ctx: Ctx, id: str, until: str) -> Observed[BucketProps] | None:
        if until == "gone":
            return None                 # delete_bucket is done when it returns
        # Right after a create or an update in this region: no GetBucketLocation.
        return self._read(ctx, id, region_known=True)

    def delete(self, ctx: Ctx, observed: Observed[BucketProps]) -> None:
        s3 = ctx.client("s3")
        name = observed.id
        # An empty bucket is deleted at once, whatever its policy and notifications. One that is
        # not is refused (BucketNotEmpty): then it is emptied first, as follows.
        try:
            s3.delete_bucket(Bucket=name)
            return
        except Exception as e:
            if errors.is_not_found(e):
                return
        # The policy goes first: one with a Condition (ours denies non-TLS) makes moto refuse every
        # object delete, and any Deny could stop the emptying on AWS. Notifications go next, so
        # emptying sends no ObjectRemoved events to functions and queues.
        try:
            s3.delete_bucket_policy(Bucket=name)
        except Exception as e:
            if not errors.is_not_found(e):          # no policy, or no bucket: the calls below tell which
                raise
        try:
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={})
            _empty(s3, name)
            s3.delete_bucket(Bucket=name)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def outputs(self, observed: Observed[BucketProps]) -> Mapping[str, str]:
        return observed.outputs

    # ------------------------------------------------------------------ helpers

    def _read(self, ctx: Ctx, name: str, region_known: bool = False) -> Observed[BucketProps] | None:
        """The bucket `name` if it is in ctx's region (GetBucketLocation; not asked when
        `region_known`); None when there is none."""
        s3 = ctx.client("s3")
        if not region_known:
            try:
                region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            except Exception as e:
                if errors.is_not_found(e):
                    return None
                raise
            if region != ctx.region:
                return None
        try:
            # The tags and the six settings side by side (on the executor's read pool).
            tag_set, *settings = ctx.read_all([partial(_get, s3.get_bucket_tagging, name, "TagSet", []),
                                               *_settings(s3, name)])
            tags, props = tag_dict(tag_set), _props(name, *settings)
        except Exception as e:
            # No bucket (any more): GetBucketNotificationConfiguration, which has no "not
            # configured" error, says so.
            if errors.is_not_found(e):
                return None
            raise
        return Observed(address=address_of(tags) or Address(self.kind, name), id=name, props=props, tags=dict(tags),
                        outputs=bucket_outputs(name, ctx.region))

    def _adopt(self, ctx: Ctx, node: Node, existing: Observed[BucketProps]) -> str:
        """The name is taken: ours (same address) → bring it to the spec; anything else → NotOurs."""
        if not ctx.is_ours(existing.tags) or existing.address != node.address:
            raise NotOurs(node.address, f"S3 bucket {node.props.name}")
        changes = self.diff(node.props, existing)
        if changes:
            self.update(ctx, existing, node, changes)
        return existing.id


def bucket_outputs(name: str, region: str) -> dict[str, str]:
    """name, arn and domain_name of a bucket: all known from its name and region alone."""
    partition, suffix = _partition(region)
    return {"name": name, "arn": f"arn:{partition}:s3:::{name}", "domain_name": f"{name}.s3.{region}.{suffix}"}


def deny_insecure_transport(name: str, region: str) -> str:
    """The bucket policy envctl gives every bucket: no request without TLS, on the bucket or its objects."""
    arn = bucket_outputs(name, region)["arn"]
    return canonical_json({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def _partition(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _get(call, name: str, key: str, default: Any) -> Any:
    """One sub-configuration of a bucket; `default` when the bucket has none."""
    try:
        return call(Bucket=name).get(key, default)
    except Exception as e:
        if errors.is_not_found(e):
            return default
        raise


def _settings(s3: Any, name: str) -> tuple[Callable[[], Any], ...]:
    """The reads of a bucket's settings, one call each (S3 has no read of them all): in the
    order _props takes their answers. Independent of one another, so discover runs them
    side by side."""
    return (partial(_get, s3.get_public_access_block, name, "PublicAccessBlockConfiguration", {}),
            partial(_get, s3.get_bucket_encryption, name, "ServerSideEncryptionConfiguration", {}),
            partial(_get, s3.get_bucket_policy, name, "Policy", None),
            partial(_get, s3.get_bucket_versioning, name, "Status", None),
            partial(_get, s3.get_bucket_lifecycle_configuration, name, "Rules", []),
            partial(s3.get_bucket_notification_configuration, Bucket=name))


_GONE = object()      # a setting's read found the bucket gone


def _props(name: str, block: dict, encryption: dict, policy: str | None, versioning: str | None,
           lifecycle: list, notifications: dict) -> BucketProps:
    rules = encryption.get("Rules", [])
    default_sse = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return BucketProps(
        name=name,
        **{field: bool(block.get(key, False)) for field, key in PUBLIC_ACCESS_FLAGS.items()},
        encryption=default_sse.get("SSEAlgorithm"),
        bucket_key_enabled=bool(rules and rules[0].get("BucketKeyEnabled", False)),
        policy=canonical_json(policy) if policy else None,
        versioning=versioning == "Enabled",
        lifecycle=tuple(_lifecycle_rule(r) for r in lifecycle),
        notifications=tuple(_notifications(notifications)))


def _lifecycle_rule(rule: dict) -> LifecycleRule:
    f = rule.get("Filter", {})
    prefix = f.get("Prefix", f.get("And", {}).get("Prefix", rule.get("Prefix", "")))
    transition = (rule.get("Transitions") or [{}])[0]
    return LifecycleRule(prefix=prefix or "", enabled=rule.get("Status") == "Enabled",
                         expire_days=rule.get("Expiration", {}).get("Days"),
                         noncurrent_expire_days=rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
                         transition_days=transition.get("Days"), storage_class=transition.get("StorageClass"),
                         abort_incomplete_upload_days=rule.get("AbortIncompleteMultipartUpload", {})
                         .get("DaysAfterInitiation"))


def _notifications(config: dict) -> Iterator[Notification]:
    for key, field, arn_key in (("LambdaFunctionConfigurations", "function_arn", "LambdaFunctionArn"),
                                ("QueueConfigurations", "queue_arn", "QueueArn"),
                                ("TopicConfigurations", "topic_arn", "TopicArn")):
        for c in config.get(key, []):
            filters = {r["Name"].lower(): r["Value"]
                       for r in c.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            yield Notification(events=tuple(sorted(c.get("Events", []))), prefix=filters.get("prefix"),
                               suffix=filters.get("suffix"), **{field: c[arn_key]})


def _configure(s3: Any, name: str, p: BucketProps, fields: set[str]) -> None:
    """Put the sub-configurations named in `fields` (Props field names); the policy last."""
    if fields & set(PUBLIC_ACCESS_FLAGS):
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            key: getattr(p, field) for field, key in PUBLIC_ACCESS_FLAGS.items()})
    if fields & {"encryption", "bucket_key_enabled"}:
        if p.encryption is None:
            s3.delete_bucket_encryption(Bucket=name)
        else:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": p.encryption},
                "BucketKeyEnabled": p.bucket_key_enabled}]})
    if "versioning" in fields:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
            "Status": "Enabled" if p.versioning else "Suspended"})
    if "lifecycle" in fields:
        if p.lifecycle:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                "Rules": [_lifecycle_request(i, r) for i, r in enumerate(p.lifecycle)]})
        else:
            s3.delete_bucket_lifecycle(Bucket=name)
    if "notifications" in fields:
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=_notification_request(
            p.notifications))
    if "policy" in fields:
        if p.policy is None:
            s3.delete_bucket_policy(Bucket=name)
        else:
            s3.put_bucket_policy(Bucket=name, Policy=p.policy)


def _lifecycle_request(i: int, r: LifecycleRule) -> dict:
    rule: dict[str, Any] = {"ID": f"envctl-{i}", "Status": "Enabled" if r.enabled else "Disabled",
                            "Filter": {"Prefix": r.prefix}}
    if r.expire_days is not None:
        rule["Expiration"] = {"Days": r.expire_days}
    if r.noncurrent_expire_days is not None:
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": r.noncurrent_expire_days}
    if r.transition_days is not None:
        rule["Transitions"] = [{"Days": r.transition_days, "StorageClass": r.storage_class}]
    if r.abort_incomplete_upload_days is not None:
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": r.abort_incomplete_upload_days}
    return rule


def _notification_request(notifications: tuple[Notification, ...]) -> dict:
    config: dict[str, list] = {}
    for i, n in enumerate(notifications):
        entry: dict[str, Any] = {"Id": f"envctl-{i}", "Events": list(n.events)}
        rules = [{"Name": k, "Value": v} for k, v in (("prefix", n.prefix), ("suffix", n.suffix)) if v]
        if rules:
            entry["Filter"] = {"Key": {"FilterRules": rules}}
        if n.function_arn is not None:
            config.setdefault("LambdaFunctionConfigurations", []).append({**entry, "LambdaFunctionArn": n.function_arn})
        elif n.queue_arn is not None:
            config.setdefault("QueueConfigurations", []).append({**entry, "QueueArn": n.queue_arn})
        elif n.topic_arn is not None:
            config.setdefault("TopicConfigurations", []).append({**entry, "TopicArn": n.topic_arn})
    return config


def _empty(s3: Any, name: str) -> None:
    """Delete every object version and delete marker; fail on any key S3 would not delete."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if not keys:
            continue
        # delete_objects answers 200 even when keys fail: the failures are in Errors.
        failed = s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True}).get("Errors", [])
        if failed:
            first = failed[0]
            raise RuntimeError(f"emptying S3 bucket {name}: {len(failed)} objects were not deleted, e.g. "
                               f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip())
