"""SNS topic with its subscriptions (a field of the topic: SNS cannot tag a subscription).

Subscriptions are reconciled as a set of (protocol, endpoint): subscribe what is missing,
unsubscribe what is extra. An e-mail subscription waiting for its recipient to confirm has
no ARN yet ("PendingConfirmation") and cannot be unsubscribed: it counts as present (so it
is not subscribed again, which would send another confirmation mail), and an unwanted one
stays until AWS deletes it for want of confirmation (within a few days).

Discovery reads one thing per topic, GetTopicAttributes (its encryption): the topics come
from the environment's tag scan (with their tags), and the subscriptions of all of them from
one ListSubscriptions listing of the region's subscriptions (100 a page), grouped by topic.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Literal

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners.base import (NotOurs, Observed, Props, Provisioner, Value, address_of, tag_changes, tag_dict,
                                      tag_list, with_live_tags)

PENDING = "PendingConfirmation"


class Subscription(Props):
    protocol: str                               # envctl writes email, sms, sqs, lambda
    endpoint: Value                             # an address, a phone number, a queue or function ARN


class TopicProps(Props):
    name: str
    kms_master_key_id: str | None = None        # None: unencrypted (AWS's default)
    subscriptions: tuple[Subscription, ...] = ()


class Topic(Provisioner[TopicProps]):
    kind = "topic"
    services = ("sns",)
    props = TopicProps
    replace_on = frozenset({"name"})
    set_fields = frozenset({"subscriptions"})
    delete_before_replace = False               # a replacement always has a new name: make it first
    uses = frozenset({"queue", "function"})     # subscribed endpoints
    tag_scan = "sns"

    def discover(self, ctx) -> Iterable[Observed[TopicProps]]:
        tagged = []
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            address = address_of(tags)
            # Topic ARNs have six parts; subscriptions (never tagged) and platform apps differ.
            if address is not None and address.kind == self.kind and len(arn.split(":")) == 6:
                tagged.append((arn, tags))
        if not tagged:
            return
        if ctx.for_delete:      # DeleteTopic takes the ARN alone (the subscriptions go with the topic)
            listed = {t["TopicArn"] for page in ctx.client("sns").get_paginator("list_topics").paginate()
                      for t in page.get("Topics", [])}
            for arn, tags in tagged:
                if arn in listed:       # the tag scan may still hold a topic just deleted
                    name = arn.split(":")[5]
                    yield Observed(address=address_of(tags), id=arn, props=TopicProps(name=name), tags=dict(tags),
                                   outputs={"arn": arn, "name": name})
            return
        subscriptions = _subscriptions_by_topic(ctx.client("sns"))
        yield from filter(None, ctx.map(
            lambda item: self._read(ctx, *item, subscriptions=subscriptions.get(item[0], [])), tagged))

    def read(self, ctx, id: str) -> Observed[TopicProps] | None:
        return self._read(ctx, id, tags=None)

    def read_for_delete(self, ctx, observed: Observed[TopicProps]) -> Observed[TopicProps] | None:
        # DeleteTopic takes the ARN alone (the subscriptions go with the topic).
        sns = ctx.client("sns")
        return with_live_tags(observed, partial(_tags, sns, observed.id))

    def find(self, ctx, node: Node) -> Observed[TopicProps] | None:
        # One call says whether the name is taken (in a create, the usual answer is no); only a
        # topic that exists has its tags and subscriptions read (SNS answers 10 tag reads a second).
        from envctl.aws import errors

        arn = _arn(ctx, node.props.name)
        try:
            attributes = ctx.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        return self._read(ctx, arn, tags=None, address=node.address, attributes=attributes)

    def create(self, ctx, node: Node) -> str:
        p: TopicProps = node.props
        # Look first: create_topic on an existing name returns it (moto even when the tags differ).
        existing = self.find(ctx, node)
        if existing is not None:
            if ctx.is_ours(existing.tags):
                return existing.id
            raise NotOurs(node.address, f"SNS topic {p.name}")
        sns = ctx.client("sns")
        attributes = {"KmsMasterKeyId": p.kms_master_key_id} if p.kms_master_key_id else {}
        arn = sns.create_topic(Name=p.name, Attributes=attributes, Tags=tag_list(node.tags))["TopicArn"]
        for sub in _unique(p.subscriptions):
            _subscribe(sns, arn, sub)
        return arn

    def update(self, ctx, observed: Observed[TopicProps], node: Node, changes) -> None:
        want: TopicProps = node.props
        changed = {c.path for c in changes}
        sns = ctx.client("sns")
        arn = observed.id
        if "kms_master_key_id" in changed:
            # An empty value turns encryption off.
            sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId",
                                     AttributeValue=want.kms_master_key_id or "")
        if "subscriptions" in changed:
            live = _subscriptions(sns, arn)           # with their ARNs, read fresh
            wanted = {_key(s) for s in want.subscriptions}
            have = {_key(s) for s, _ in live}
            for sub in _unique(want.subscriptions):
                if _key(sub) not in have:
                    _subscribe(sns, arn, sub)
            for sub, sub_arn in live:
                if _key(sub) not in wanted and sub_arn != PENDING:
                    sns.unsubscribe(SubscriptionArn=sub_arn)

    def update_tags(self, ctx, observed: Observed[TopicProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        sns = ctx.client("sns")
        if to_set:
            sns.tag_resource(ResourceArn=observed.id, Tags=tag_list(to_set))
        if to_remove:
            sns.untag_resource(ResourceArn=observed.id, TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[TopicProps]) -> None:
        from envctl.aws import errors

        # Deleting a topic deletes its subscriptions.
        try:
            ctx.client("sns").delete_topic(TopicArn=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[TopicProps] | None:
        return self.read(ctx, id) if until == "ready" else None

    # -------------------------------------------------------------- private helpers

    def _read(self, ctx, arn: str, tags: Mapping[str, str] | None, address: Address | None = None,
              subscriptions: list[tuple[Subscription, str]] | None = None,
              attributes: Mapping[str, str] | None = None) -> Observed[TopicProps] | None:
        """The topic at `arn`; its attributes, `tags` and `subscriptions` are read here when not given."""
        from envctl.aws import errors

        sns = ctx.client("sns")
        reads = []                                                      # side by side: each needs the ARN only
        if attributes is None:
            reads.append(partial(sns.get_topic_attributes, TopicArn=arn))
        if tags is None:
            reads.append(partial(_tags, sns, arn))
        if subscriptions is None:
            reads.append(partial(_subscriptions, sns, arn))
        try:
            answers = iter(ctx.read_all(reads))
            attrs = next(answers)["Attributes"] if attributes is None else attributes
            if tags is None:
                tags = next(answers)
            if subscriptions is None:
                subscriptions = next(answers)
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        name = arn.split(":")[5]
        props = TopicProps(name=name, kms_master_key_id=attrs.get("KmsMasterKeyId") or None,
                           subscriptions=tuple(sorted({s for s, _ in subscriptions}, key=_key)))
        return Observed(address=address or address_of(tags) or Address(self.kind, name), id=arn, props=props,
                        tags=dict(tags), outputs={"arn": arn, "name": name})


def _arn(ctx, name: str) -> str:
    """A topic's ARN is fixed by its name: look it up without listing every topic."""
    region = ctx.region
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sns:{region}:{ctx.aws.account_id()}:{name}"


def _tags(sns, arn: str) -> dict[str, str]:
    return tag_dict(sns.list_tags_for_resource(ResourceArn=arn).get("Tags"))


def _subscriptions(sns, arn: str) -> list[tuple[Subscription, str]]:
    """(subscription, its ARN or PendingConfirmation) of the topic; ones being deleted are left out."""
    return [_entry(s) for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
            for s in page.get("Subscriptions", []) if s["SubscriptionArn"] != "Deleted"]


def _subscriptions_by_topic(sns) -> dict[str, list[tuple[Subscription, str]]]:
    """{topic ARN: what _subscriptions gives for it} for every topic of the region, in one listing."""
    out: dict[str, list[tuple[Subscription, str]]] = {}
    for page in sns.get_paginator("list_subscriptions").paginate():
        for s in page.get("Subscriptions", []):
            if s["SubscriptionArn"] != "Deleted":
                out.setdefault(s["TopicArn"], []).append(_entry(s))
    return out


def _entry(s: Mapping) -> tuple[Subscription, str]:
    return Subscription(protocol=s["Protocol"], endpoint=s["Endpoint"]), s["SubscriptionArn"]


def _subscribe(sns, arn: str, sub: Subscription) -> None:
    sns.subscribe(TopicArn=arn, Protocol=sub.protocol, Endpoint=_known(sub.endpoint),
                  ReturnSubscriptionArn=True)


def _known(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value} is not resolved: the executor resolves references before writing")
    return value


def _key(sub: Subscription) -> tuple[str, str]:
    return sub.protocol, str(sub.endpoint)


def _unique(subs: Iterable[Subscription]) -> list[Subscription]:
    seen: dict[tuple[str, str], Subscription] = {}
    for s in subs:
        seen.setdefault(_key(s), s)
    return list(seen.values())
