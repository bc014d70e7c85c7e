"""SNS topics: expansion (subscriptions, encryption), the lifecycle against moto server with
subscriptions reconciled as a set, adoption and foreign names."""
from __future__ import annotations

import pytest
from botocore.stub import Stubber

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs, Observed
from envctl.provisioners.topic import Subscription, TopicProps
from tests.provisioners.harness import (StubCtx, changed_values, create_all, delete_all, diff_all, discover,
                                        graph_from_yaml, make_ctx, offline_client, tagged_arns, update_props)

EVENTS = Address("topic", "events")
KINDS = ["queue", "topic"]
ARN = "arn:aws:sns:eu-north-1:123456789012:acme-qa-events"

SPEC = """\
tags: {CostCenter: "4711"}
queues:
  work-units: {}
topics:
  events:
    subscriptions:
      - {email: ops@example.com}
      - {sms: "+358401234567"}
      - {queue: work-units}
"""


def _subs(sns, arn: str = ARN) -> set[tuple[str, str]]:
    return {(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]}


# ------------------------------------------------------------------ expansion

def test_expand_subscriptions_and_encryption(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC + """\
  alarms:
    subscriptions: [{email: oncall@example.com}]
alarms:
  queue-depth:
    metric: {namespace: AWS/SQS, name: ApproximateNumberOfMessagesVisible, queue: work-units}
    comparison: ">"
    threshold: 100
    notify: [alarms]
""")
    events = graph[EVENTS]
    assert events.props.name == events.physical_name == "acme-qa-events"
    assert [(s.protocol, str(s.endpoint)) for s in events.props.subscriptions] == [
        ("email", "ops@example.com"), ("sms", "+358401234567"), ("sqs", "queue/work-units.arn")]
    assert events.deps == {Address("queue", "work-units")}
    assert events.props.kms_master_key_id == "alias/aws/sns"
    # CloudWatch alarms cannot publish to a topic under the AWS managed key: left unencrypted.
    assert graph[Address("topic", "alarms")].props.kms_master_key_id is None
    assert graph[Address("queue", "work-units")].props.allow_from == (("sns", "acme-qa-events"),)


# ------------------------------------------------------------------ lifecycle

def test_lifecycle(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    sns, sqs = aws.client("sns"), aws.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="acme-qa-work-units")["QueueUrl"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # 1. Read back with plain boto3.
    attrs = sns.get_topic_attributes(TopicArn=ARN)["Attributes"]
    assert attrs["KmsMasterKeyId"] == "alias/aws/sns"
    assert _subs(sns) == {("email", "ops@example.com"), ("sms", "+358401234567"), ("sqs", queue_arn)}
    sqs_sub = next(s for s in sns.list_subscriptions_by_topic(TopicArn=ARN)["Subscriptions"] if s["Protocol"] == "sqs")
    assert sns.get_subscription_attributes(SubscriptionArn=sqs_sub["SubscriptionArn"])["Attributes"][
        "RawMessageDelivery"] == "false"                         # AWS's default, kept
    assert {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=ARN)["Tags"]} == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "topic/events", "CostCenter": "4711"}
    assert by_kind("topic").outputs(created[EVENTS]) == {"arn": ARN, "name": "acme-qa-events"}

    # 2. Discover, empty diff, no mutating call.
    aws.log.clear()
    found = discover(ctx, KINDS)
    assert sorted(found) == [Address("queue", "work-units"), EVENTS]
    assert diff_all(graph, found) == {}
    assert aws.log.mutating() == []

    # 3. Subscriptions changed by hand: one removed, one added; encryption turned off.
    sms = next(s for s in sns.list_subscriptions_by_topic(TopicArn=ARN)["Subscriptions"] if s["Protocol"] == "sms")
    sns.unsubscribe(SubscriptionArn=sms["SubscriptionArn"])
    sns.subscribe(TopicArn=ARN, Protocol="email", Endpoint="intruder@example.com")
    sns.set_topic_attributes(TopicArn=ARN, AttributeName="KmsMasterKeyId", AttributeValue="")
    found = discover(ctx, KINDS)
    changes = changed_values(graph, found, EVENTS)
    assert set(changes) == {"subscriptions", "kms_master_key_id"}
    assert changes["kms_master_key_id"] == (None, "alias/aws/sns")
    before, after = changes["subscriptions"]
    assert {tuple(s.values()) for s in before} ^ {tuple(s.values()) for s in after} == {
        ("sms", "+358401234567"), ("email", "intruder@example.com")}

    # 4. update subscribes what is missing and unsubscribes what is extra; nothing else.
    aws.log.clear()
    update_props(ctx, graph, found, EVENTS)
    assert sorted(c.action for c in aws.log.mutating()) == ["SetTopicAttributes", "Subscribe", "Unsubscribe"]
    assert _subs(sns) == {("email", "ops@example.com"), ("sms", "+358401234567"), ("sqs", queue_arn)}
    assert sns.get_topic_attributes(TopicArn=ARN)["Attributes"]["KmsMasterKeyId"] == "alias/aws/sns"
    assert diff_all(graph, discover(ctx, KINDS)) == {}

    # 5. Deleted out of band: gone from discovery.
    sns.delete_topic(TopicArn=ARN)
    found = discover(ctx, KINDS)
    assert EVENTS not in found and diff_all(graph, found)[EVENTS] is None

    # 6. Destroy leaves nothing tagged; an untagged topic with a similar name is untouched.
    other = sns.create_topic(Name="acme-qa-events-copy")["TopicArn"]
    create_all(ctx, graph)
    delete_all(ctx, discover(ctx, KINDS), graph)
    assert tagged_arns(aws, ["sns", "sqs"]) == []
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [other]


TWO_TOPICS = """\
topics:
  orders:
    subscriptions: [{email: orders@example.com}]
  alerts:
    subscriptions: [{email: oncall@example.com}, {sms: "+358401234567"}]
"""


def test_discovery_lists_subscriptions_once_and_gives_each_topic_its_own(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, TWO_TOPICS)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    sns = aws.client("sns")
    # A foreign topic subscribed to one of the same endpoints, and to one of its own.
    foreign = sns.create_topic(Name="acme-qa-orders-copy")["TopicArn"]
    sns.subscribe(TopicArn=foreign, Protocol="email", Endpoint="oncall@example.com")
    sns.subscribe(TopicArn=foreign, Protocol="email", Endpoint="foreign@example.com")

    aws.log.clear()
    found = discover(ctx, ["topic"])
    assert {a.name: sorted((s.protocol, s.endpoint) for s in o.props.subscriptions) for a, o in found.items()} == {
        "orders": [("email", "orders@example.com")],
        "alerts": [("email", "oncall@example.com"), ("sms", "+358401234567")]}
    assert diff_all(graph, found) == {}
    # One listing for every topic's subscriptions; one read per topic (its attributes).
    assert aws.log.count("ListSubscriptions") == 1 and aws.log.count("ListSubscriptionsByTopic") == 0
    assert aws.log.count("GetTopicAttributes") == 2

    # A subscription added by hand to one topic shows on that topic only.
    orders = found[Address("topic", "orders")].id
    sns.subscribe(TopicArn=orders, Protocol="email", Endpoint="intruder@example.com")
    found = discover(ctx, ["topic"])
    assert {a.name: [c.path for c in changes] for a, changes in diff_all(graph, found).items()} == {
        "orders": ["subscriptions"]}


def test_create_adopts_our_existing_topic(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "topics:\n  events:\n    subscriptions: [{email: ops@example.com}]\n")
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    aws.log.clear()
    assert by_kind("topic").create(ctx, graph[EVENTS]) == ARN
    assert aws.log.mutating() == []
    assert len(aws.client("sns").list_topics()["Topics"]) == 1
    assert len(aws.client("sns").list_subscriptions_by_topic(TopicArn=ARN)["Subscriptions"]) == 1


def test_a_new_topics_name_is_looked_up_with_one_call_before_it_is_made(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "topics:\n  events:\n    subscriptions: [{email: ops@example.com}]\n")
    ctx = make_ctx(aws)
    ctx.aws.account_id()                          # the ARN's account: read once a session
    aws.log.clear()
    assert by_kind("topic").create(ctx, graph[EVENTS]) == ARN
    assert [c.action for c in aws.log.snapshot()] == ["GetTopicAttributes", "CreateTopic", "Subscribe"]
    assert aws.client("sns").list_tags_for_resource(ResourceArn=ARN)["Tags"] != []


def test_create_refuses_a_topic_that_is_not_ours(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "topics:\n  events: {}\n")
    sns = aws.client("sns")
    sns.create_topic(Name="acme-qa-events", Tags=[{"Key": "team", "Value": "someone-else"}])
    aws.log.clear()
    with pytest.raises(NotOurs, match="SNS topic acme-qa-events already exists"):
        by_kind("topic").create(make_ctx(aws), graph[EVENTS])
    # moto accepts create_topic with other tags and replaces them (MOTO-NOTES §6): never called.
    assert aws.log.mutating() == []
    assert sns.list_tags_for_resource(ResourceArn=ARN)["Tags"] == [{"Key": "team", "Value": "someone-else"}]


def test_delete_of_a_missing_topic_succeeds(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "topics:\n  events: {}\n")
    ctx = make_ctx(aws)
    obs = create_all(ctx, graph)[EVENTS]
    aws.client("sns").delete_topic(TopicArn=ARN)
    assert by_kind("topic").read(ctx, ARN) is None
    by_kind("topic").delete(ctx, obs)


# ------------------------------------------------------------------ pending confirmation
# moto confirms e-mail subscriptions at once (MOTO-NOTES §8); AWS lists an unconfirmed one
# with SubscriptionArn "PendingConfirmation". The reconcile decision is driven with a Stubber.

def test_pending_subscriptions_count_as_present_and_are_never_unsubscribed():
    sns = offline_client("sns")
    stub = Stubber(sns)
    stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "ops@example.com",
         "TopicArn": ARN, "Owner": "123456789012"},
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "old@example.com",
         "TopicArn": ARN, "Owner": "123456789012"},
        {"SubscriptionArn": ARN + ":1111", "Protocol": "sms", "Endpoint": "+358401234567",
         "TopicArn": ARN, "Owner": "123456789012"}]}, {"TopicArn": ARN})
    stub.add_response("unsubscribe", {}, {"SubscriptionArn": ARN + ":1111"})
    want = TopicProps(name="acme-qa-events",
                      subscriptions=(Subscription(protocol="email", endpoint="ops@example.com"),))
    have = TopicProps(name="acme-qa-events", subscriptions=(
        Subscription(protocol="email", endpoint="ops@example.com"),
        Subscription(protocol="email", endpoint="old@example.com"),
        Subscription(protocol="sms", endpoint="+358401234567")))
    observed = Observed(address=EVENTS, id=ARN, props=have, tags={})
    p = by_kind("topic")
    with stub:
        # Only the confirmed extra is unsubscribed; ops@ is not subscribed again (a second mail).
        p.update(StubCtx(sns), observed, Node(EVENTS, want, "acme-qa-events", {}), p.diff(want, observed))
    stub.assert_no_pending_responses()
