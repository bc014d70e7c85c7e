"""`read_for_delete`: the kinds whose delete needs only the id read their tags alone, one call.

The executor checks those tags before deleting (engine/executor.py); a full read would take 2–8
calls on these kinds. Against moto server, read back with the provisioners and plain boto3.
moto keeps the tags of a deleted alarm or log group, so there their tags alone cannot say
"gone"; AWS answers ResourceNotFound. They read their tags alone all the same: on moto one
deleted since the plan is deleted again, which DeleteAlarms and (envctl's) log group delete
take as success, and a full read would add calls that AWS answers 5 to 10 times a second
(DescribeAlarms; DescribeLogGroups and DescribeMetricFilters) to each of a destroy. Tables
read DescribeTable with the tags (below).
"""
from __future__ import annotations

import pytest

from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import DeletionProtected
from tests.provisioners.harness import create_all, graph_from_yaml, make_ctx

SPEC = """\
tags: {Owner: platform-team}
topics:
  alarms: {}
queues:
  imports: {}
schedules:
  nightly-import:
    cron: "0 2 * * ? *"
    send:
      queue: imports
      message: {job: import}
roles:
  app:
    assumed_by: ec2
    allow:
      - {queue: imports, actions: [send]}
buckets:
  uploads: {}
log_groups:
  app:
    metric_filters:
      errors: {pattern: "ERROR", metric: AppErrors}
alarms:
  backlog:
    metric: {namespace: AWS/SQS, name: ApproximateNumberOfMessagesVisible, queue: imports}
    comparison: ">"
    threshold: 100
    notify: [alarms]
"""

# The one call each kind makes, as the emulator logs it (S3's REST calls: method and path).
TAG_READS = {
    "alarm": "ListTagsForResource",
    "log_group": "ListTagsForResource",
    "queue": "ListQueueTags",
    "topic": "ListTagsForResource",
    "schedule": "ListTagsForResource",
    "role": "ListRoleTags",
    "bucket": "GET /acme-qa-uploads",
}
ADDRESSES = {"alarm": "backlog", "log_group": "app", "queue": "imports", "topic": "alarms", "schedule": "nightly-import", "role": "app",
             "bucket": "uploads"}


@pytest.fixture
def made(aws, tmp_path):
    ctx = make_ctx(aws)
    return ctx, create_all(ctx, graph_from_yaml(tmp_path, SPEC))


@pytest.mark.parametrize("kind", sorted(TAG_READS))
def test_one_call_reads_the_live_tags_and_keeps_what_the_plan_saw(aws, made, kind):
    ctx, observed = made
    seen = observed[Address(kind, ADDRESSES[kind])]
    p = by_kind(kind)
    # Retagged by hand since the plan: the read must see it.
    p.update_tags(ctx, seen, {**seen.tags, "Owner": "someone-else"})
    aws.log.clear()

    now = p.read_for_delete(ctx, seen)

    assert [c.action for c in aws.log.snapshot()] == [TAG_READS[kind]]
    assert now is not None and now.tags["Owner"] == "someone-else"
    assert ctx.is_ours(now.tags)
    assert (now.address, now.id, now.props, now.outputs) == (seen.address, seen.id, seen.props, seen.outputs)


@pytest.mark.parametrize("kind", sorted(set(TAG_READS) - {"alarm", "log_group"}))     # moto keeps their tags
def test_once_deleted_it_is_gone_or_without_our_tags(made, kind):
    # AWS's tag APIs answer "not found" for a deleted resource; some of moto's answer no tags,
    # and the executor then reads in full to tell gone from not ours.
    ctx, observed = made
    seen = observed[Address(kind, ADDRESSES[kind])]
    p = by_kind(kind)
    p.delete(ctx, seen)
    p.wait(ctx, seen.id, "gone")

    now = p.read_for_delete(ctx, seen)

    assert now is None or not ctx.is_ours(now.tags)
    assert p.read(ctx, seen.id) is None


# A table's delete also needs its deletion protection as it is now: DescribeTable and the tags,
# side by side (a full read is 4 calls: TTL and point-in-time recovery matter to no delete).
TABLE_SPEC = """\
tables:
  sessions:
    partition_key: id
    ttl_attribute: expires_at
"""


@pytest.fixture
def table(aws, tmp_path):
    ctx = make_ctx(aws)
    return ctx, create_all(ctx, graph_from_yaml(tmp_path, TABLE_SPEC))[Address("table", "sessions")]


def test_a_table_reads_its_tags_and_its_deletion_protection_as_they_are_now(aws, table):
    ctx, seen = table
    p = by_kind("table")
    assert seen.props.deletion_protection is False
    p.update_tags(ctx, seen, {**seen.tags, "Owner": "someone-else"})
    aws.client("dynamodb").update_table(TableName=seen.id, DeletionProtectionEnabled=True)   # by hand, since the plan
    aws.log.clear()

    now = p.read_for_delete(ctx, seen)

    assert sorted(c.action for c in aws.log.snapshot()) == ["DescribeTable", "ListTagsOfResource"]
    assert now is not None and now.tags["Owner"] == "someone-else" and ctx.is_ours(now.tags)
    assert now.props.deletion_protection is True
    assert now.props.model_copy(update={"deletion_protection": False}) == seen.props
    assert (now.address, now.id, now.outputs) == (seen.address, seen.id, seen.outputs)
    # So the delete refuses, as it would have after a full read.
    with pytest.raises(DeletionProtected):
        p.delete(ctx, now)


def test_a_deleted_table_is_gone(table):
    ctx, seen = table
    p = by_kind("table")
    p.delete(ctx, seen)
    p.wait(ctx, seen.id, "gone")

    assert p.read_for_delete(ctx, seen) is None
