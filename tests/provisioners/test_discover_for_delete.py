"""A destroy's discovery (Ctx.for_delete) reads only what deleting needs.

Tables: DescribeTable alone, not the TTL nor the backups (AWS answers DescribeContinuousBackups
10 times a second). Buckets, queues and topics: nothing per resource; their listings
(ListBuckets, ListQueues, ListTopics) say they exist, and their deletes need the name, the URL
or the ARN alone. Against moto
server, the calls read from the emulator's log; the same discovery for a plan reads them all,
which shows the test can fail.
"""
from __future__ import annotations

import dataclasses

from envctl.engine.observe import observe
from envctl.model.address import Address
from envctl.provisioners import by_kind
from tests.provisioners.harness import create_all, graph_from_yaml, make_ctx

SPEC = """\
tables:
  sessions:
    partition_key: id
    ttl_attribute: expires_at
buckets:
  uploads: {}
queues:
  imports: {}
topics:
  alarms:
    subscriptions: [{email: ops@example.com}]
"""
KINDS = ["table", "bucket", "queue", "topic"]
SCAN = {"GetResources"}


def discovered(aws, ctx, for_delete: bool):
    aws.log.clear()
    found = observe(dataclasses.replace(ctx, for_delete=for_delete), KINDS).resources
    return found, sorted({c.action for c in aws.log.snapshot()} - SCAN)


def test_a_destroys_discovery_reads_tables_once_and_buckets_and_queues_not_at_all(aws, tmp_path):
    ctx = make_ctx(aws)
    made = create_all(ctx, graph_from_yaml(tmp_path, SPEC))
    # Turned on by hand: the one setting of a table that a delete must see.
    aws.client("dynamodb").update_table(TableName="acme-qa-sessions", DeletionProtectionEnabled=True)

    for_plan, plan_reads = discovered(aws, ctx, for_delete=False)
    for_delete, delete_reads = discovered(aws, ctx, for_delete=True)

    assert {"DescribeTimeToLive", "DescribeContinuousBackups", "GetQueueAttributes", "GetTopicAttributes",
            "ListSubscriptions"} <= set(plan_reads)
    assert delete_reads == ["DescribeTable", "GET /", "ListQueues", "ListTopics"]     # S3's ListBuckets is GET /
    assert set(for_delete) == set(for_plan) == set(made)
    for address, seen in for_delete.items():
        assert (seen.id, seen.tags, seen.outputs) == (for_plan[address].id, for_plan[address].tags,
                                                      for_plan[address].outputs), address
        assert ctx.is_ours(seen.tags)
    assert for_delete[Address("table", "sessions")].props.deletion_protection is True


def test_what_it_found_can_be_deleted(aws, tmp_path):
    ctx = make_ctx(aws)
    create_all(ctx, graph_from_yaml(tmp_path, SPEC))
    found, _ = discovered(aws, ctx, for_delete=True)

    for address, seen in found.items():
        p = by_kind(address.kind)
        live = p.read_for_delete(ctx, seen)
        p.delete(ctx, live)
        p.wait(ctx, live.id, "gone")

    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert aws.client("sns").list_topics()["Topics"] == []


def test_a_topic_the_tag_scan_still_holds_but_aws_no_longer_lists_is_not_found(aws, tmp_path, monkeypatch):
    # AWS's tag scan is eventually consistent: a topic deleted a moment ago may still be in it
    # (moto drops it at once, so the scan is given one here).
    ctx = make_ctx(aws)
    create_all(ctx, graph_from_yaml(tmp_path, SPEC))
    gone = "arn:aws:sns:eu-north-1:123456789012:acme-qa-old"
    scan = ctx.aws.tagged_arns
    tags = {"envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "topic/old"}
    monkeypatch.setattr(ctx.aws, "tagged_arns", lambda kind: scan(kind) + ([(gone, tags)] if kind == "sns" else []))

    found, _ = discovered(aws, ctx, for_delete=True)

    assert Address("topic", "alarms") in found and Address("topic", "old") not in found
