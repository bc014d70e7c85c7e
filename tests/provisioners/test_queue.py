"""SQS queues: expansion (dead-letter queues, senders), the lifecycle against moto server,
the access policy built from allow_from, adoption and foreign names."""
from __future__ import annotations

import json

import pytest

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from tests.provisioners.harness import (changed_values, create_all, delete_all, diff_all, discover, graph_from_yaml,
                                        make_ctx, tagged_arns, update_props)

WORK = Address("queue", "work-units")
DLQ = Address("queue", "work-units-dlq")
IMPORTS = Address("queue", "imports")
KINDS = ["queue", "schedule"]

SPEC = """\
tags: {CostCenter: "4711"}
queues:
  work-units:
    visibility_timeout_s: 300
    dead_letter: {max_receives: 5, retention_s: 86400}
  imports: {}
schedules:
  nightly-import:
    cron: "0 2 * * ? *"
    send: {queue: imports, message: {job: import-partner-files}}
"""


def _attrs(sqs, name: str) -> dict:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


# ------------------------------------------------------------------ expansion

def test_expand_dead_letter_queue_and_senders(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC + """\
topics:
  events:
    subscriptions: [{queue: imports}]
buckets:
  drop:
    name: partner-drop-bucket
    notify: [{queue: imports, events: [created]}]
  other:
    notify: [{queue: work-units}]
""")
    work, dlq, imports = graph[WORK], graph[DLQ], graph[IMPORTS]
    assert dlq.physical_name == dlq.props.name == "acme-qa-work-units-dlq"
    assert dlq.props.message_retention_period == 86400 and dlq.props.redrive_policy is None
    assert str(work.props.redrive_policy.dead_letter_target_arn) == "queue/work-units-dlq.arn"
    assert work.props.redrive_policy.max_receive_count == 5
    assert work.deps == {DLQ}
    assert (work.props.visibility_timeout, work.props.maximum_message_size, work.props.sqs_managed_sse) == (
        300, 262144, True)
    assert imports.props.allow_from == (("events", "acme-qa-nightly-import"), ("s3", "partner-drop-bucket"),
                                        ("sns", "acme-qa-events"))
    assert work.props.allow_from == (("s3", "acme-qa-other"),)
    # The queue names its senders by physical name only: it depends on none of them.
    assert imports.deps == frozenset()


def test_expand_fifo_names(tmp_path):
    graph = graph_from_yaml(tmp_path, """\
        queues:
          orders: {fifo: true, dead_letter: {max_receives: 3}}
        """)
    assert graph[Address("queue", "orders")].props.name == "acme-qa-orders.fifo"
    assert graph[Address("queue", "orders-dlq")].props.name == "acme-qa-orders-dlq.fifo"
    assert graph[Address("queue", "orders-dlq")].props.fifo is True


# ------------------------------------------------------------------ lifecycle

def test_lifecycle(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    sqs = aws.client("sqs")

    # 1. Read back with plain boto3.
    dlq = _attrs(sqs, "acme-qa-work-units-dlq")
    work = _attrs(sqs, "acme-qa-work-units")
    imports = _attrs(sqs, "acme-qa-imports")
    assert work["VisibilityTimeout"] == "300"
    assert work["MessageRetentionPeriod"] == "345600"
    assert work["DelaySeconds"] == "0" and work["ReceiveMessageWaitTimeSeconds"] == "0"
    assert work["MaximumMessageSize"] == "262144"
    assert work["SqsManagedSseEnabled"] == "true" and dlq["SqsManagedSseEnabled"] == "true"
    assert json.loads(work["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert dlq["MessageRetentionPeriod"] == "86400" and "RedrivePolicy" not in dlq
    assert "Policy" not in work and "Policy" not in dlq          # nothing may send: no policy at all
    assert "FifoQueue" not in work
    policy = json.loads(imports["Policy"])
    assert policy["Statement"] == [{
        "Sid": "allow-events", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": imports["QueueArn"],
        "Condition": {"ArnEquals": {"aws:SourceArn": ["arn:aws:events:eu-north-1:123456789012:rule/"
                                                       "acme-qa-nightly-import"]}}}]
    url = sqs.get_queue_url(QueueName="acme-qa-work-units")["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "queue/work-units",
        "CostCenter": "4711"}
    assert by_kind("queue").outputs(created[WORK]) == {"url": url, "arn": work["QueueArn"],
                                                       "name": "acme-qa-work-units"}

    # 2. Discover finds all three, the diff is empty, and nothing was written.
    aws.log.clear()
    found = discover(ctx, KINDS)
    assert sorted(found) == [IMPORTS, WORK, DLQ, Address("schedule", "nightly-import")]
    assert diff_all(graph, found) == {}
    assert aws.log.mutating() == []

    # 3. Changes by hand show as exactly those fields: an attribute, and a statement added to a policy.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    imports_url = sqs.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]
    policy["Statement"].append({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
                                "Resource": imports["QueueArn"]})
    sqs.set_queue_attributes(QueueUrl=imports_url, Attributes={"Policy": json.dumps(policy), "DelaySeconds": "5"})
    found = discover(ctx, KINDS)
    assert changed_values(graph, found, WORK) == {"visibility_timeout": (60, 300)}
    imports_changes = changed_values(graph, found, IMPORTS)
    assert set(imports_changes) == {"allow_from", "delay_seconds"}
    assert imports_changes["delay_seconds"] == (5, 0)
    assert ["policy", '{"Action":"sqs:SendMessage","Effect":"Allow","Principal":"*","Resource":"'
            + imports["QueueArn"] + '"}'] in imports_changes["allow_from"][0]

    # 4. update repairs both, and the policy envctl wrote survives (moto drops unsent attributes).
    for address in (WORK, IMPORTS):
        update_props(ctx, graph, found, address)
    assert _attrs(sqs, "acme-qa-work-units")["VisibilityTimeout"] == "300"
    assert json.loads(_attrs(sqs, "acme-qa-imports")["Policy"])["Statement"] == policy["Statement"][:1]
    assert json.loads(_attrs(sqs, "acme-qa-work-units")["RedrivePolicy"])["maxReceiveCount"] == 5
    assert diff_all(graph, discover(ctx, KINDS)) == {}

    # 5. Deleted out of band: discovery no longer finds it.
    sqs.delete_queue(QueueUrl=imports_url)
    found = discover(ctx, KINDS)
    assert IMPORTS not in found and diff_all(graph, found)[IMPORTS] is None

    # 6. Destroy leaves nothing tagged; an untagged queue with a similar name is untouched.
    sqs.create_queue(QueueName="acme-qa-work-units-copy")
    delete_all(ctx, found, graph)
    assert tagged_arns(aws, ["sqs"]) == []
    assert [u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", [])] == ["acme-qa-work-units-copy"]


def test_access_policy_for_every_kind_of_sender(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "queues:\n  inbox: {}\n")
    base = graph[Address("queue", "inbox")]
    props = base.props.model_copy(update={"allow_from": (
        ("sns", "acme-qa-alerts"), ("s3", "partner-drop"), ("events", "acme-qa-b"), ("events", "acme-qa-a"))})
    node = Node(base.address, props, base.physical_name, base.tags)
    ctx = make_ctx(aws)
    url = by_kind("queue").create(ctx, node)
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    arn = attrs["QueueArn"]
    statements = {s["Sid"]: s for s in json.loads(attrs["Policy"])["Statement"]}
    assert statements["allow-events"]["Condition"] == {"ArnEquals": {"aws:SourceArn": [
        "arn:aws:events:eu-north-1:123456789012:rule/acme-qa-a",
        "arn:aws:events:eu-north-1:123456789012:rule/acme-qa-b"]}}
    assert statements["allow-sns"]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statements["allow-sns"]["Condition"] == {"ArnEquals": {"aws:SourceArn": [
        "arn:aws:sns:eu-north-1:123456789012:acme-qa-alerts"]}}
    # A bucket's ARN has no account in it: the statement pins the account too.
    assert statements["allow-s3"]["Condition"] == {"ArnEquals": {"aws:SourceArn": ["arn:aws:s3:::partner-drop"]},
                                                   "StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert all(s["Action"] == "sqs:SendMessage" and s["Resource"] == arn for s in statements.values())
    # Read back into the same set of senders: no diff.
    observed = by_kind("queue").read(ctx, url)
    assert by_kind("queue").diff(props, observed) == []

    # Nothing may send any more: the policy is removed, not left empty.
    emptied = props.model_copy(update={"allow_from": ()})
    changes = by_kind("queue").diff(emptied, observed)
    assert [c.path for c in changes] == ["allow_from"]
    by_kind("queue").update(ctx, observed, Node(node.address, emptied, node.physical_name, node.tags), changes)
    assert "Policy" not in aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_a_queue_with_senders_is_made_with_its_policy_in_one_call(aws, tmp_path):
    # The policy names the queue's own ARN, known before the queue exists: no second write.
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    ctx.aws.account_id()                       # known before any create (the account guard asks)
    queue = by_kind("queue")
    aws.log.clear()
    observed = queue.wait(ctx, queue.create(ctx, graph[IMPORTS]), "ready")
    assert [c.action for c in aws.log.snapshot()] == ["GetQueueUrl", "CreateQueue", "GetQueueAttributes",
                                                      "ListQueueTags"]
    assert observed.props.allow_from == (("events", "acme-qa-nightly-import"),)
    assert queue.diff(graph[IMPORTS].props, observed) == []


def test_update_of_one_attribute_keeps_the_policy(aws, tmp_path):
    """moto's set_queue_attributes erases Policy when it is not sent (MOTO-NOTES §6): an update
    that sent only the changed attribute would lose it here, so this proves the full set is sent."""
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]
    policy = _attrs(sqs, "acme-qa-imports")["Policy"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "9", "Policy": policy})
    found = discover(ctx, KINDS)
    assert changed_values(graph, found, IMPORTS) == {"delay_seconds": (9, 0)}
    update_props(ctx, graph, found, IMPORTS)
    attrs = _attrs(sqs, "acme-qa-imports")
    assert attrs["DelaySeconds"] == "0"
    assert json.loads(attrs["Policy"]) == json.loads(policy)


def test_policy_with_single_values_reads_as_ours(aws):
    """AWS may return a one-element list as its element: that is the same policy, not drift."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": {
        "Sid": "allow-sns", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:eu-north-1:123456789012:t"}}}})})
    assert by_kind("queue").read(make_ctx(aws), url).props.allow_from == (("sns", "t"),)


def test_fifo_queue_round_trip(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "queues:\n  orders: {fifo: true, dead_letter: {max_receives: 3}}\n")
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    attrs = _attrs(aws.client("sqs"), "acme-qa-orders.fifo")
    assert attrs["FifoQueue"] == "true"
    assert _attrs(aws.client("sqs"), "acme-qa-orders-dlq.fifo")["FifoQueue"] == "true"
    found = discover(ctx, KINDS)
    assert sorted(found) == [Address("queue", "orders"), Address("queue", "orders-dlq")]
    assert diff_all(graph, found) == {}


def test_discovery_reads_each_queue_once_with_the_url_sqs_gives(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    sqs = aws.client("sqs")
    # Tagged as ours under a name ListQueues(prefix) does not show: its URL is looked up alone.
    stray = sqs.create_queue(QueueName="stray", tags={"envctl:project": "acme", "envctl:environment": "qa",
                                                      "envctl:resource": "queue/stray"})["QueueUrl"]
    aws.log.clear()
    found = discover(ctx, ["queue"])
    assert {a: o.id for a, o in found.items()} == {
        **{a: created[a].id for a in (WORK, DLQ, IMPORTS)}, Address("queue", "stray"): stray}
    assert aws.log.count("ListQueues") == 1
    assert aws.log.count("GetQueueUrl") == 1                     # the stray queue's only
    assert aws.log.count("GetQueueAttributes") == 4 and aws.log.count("ListQueueTags") == 0


def test_create_adopts_our_existing_queue(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    aws.log.clear()
    assert by_kind("queue").create(ctx, graph[WORK]) == created[WORK].id
    assert aws.log.mutating() == []          # no create_queue: moto's would have replaced the tags
    assert len(aws.client("sqs").list_queues()["QueueUrls"]) == 3


def test_create_refuses_a_queue_that_is_not_ours(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="acme-qa-imports", tags={"team": "someone-else"})["QueueUrl"]
    aws.log.clear()
    with pytest.raises(NotOurs, match="SQS queue acme-qa-imports already exists"):
        by_kind("queue").create(make_ctx(aws), graph[IMPORTS])
    assert aws.log.mutating() == []
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "someone-else"}
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_user_tags_are_reconciled_without_touching_envctl_tags(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    obs = create_all(ctx, graph)[IMPORTS]
    by_kind("queue").update_tags(ctx, obs, {"Owner": "platform-team"})
    assert aws.client("sqs").list_queue_tags(QueueUrl=obs.id)["Tags"] == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "queue/imports",
        "Owner": "platform-team"}


def test_read_and_delete_of_a_missing_queue(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "queues:\n  inbox: {}\n")
    ctx = make_ctx(aws)
    obs = create_all(ctx, graph)[Address("queue", "inbox")]
    aws.client("sqs").delete_queue(QueueUrl=obs.id)
    assert by_kind("queue").read(ctx, obs.id) is None
    by_kind("queue").delete(ctx, obs)            # already gone: success, no error
