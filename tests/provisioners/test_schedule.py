"""EventBridge schedules: expansion, the lifecycle against moto server with the target as a
field of the rule, adoption and foreign names."""
from __future__ import annotations

import json

import pytest

from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from tests.provisioners.harness import (changed_values, create_all, delete_all, diff_all, discover, graph_from_yaml,
                                        make_ctx, update_props)

NIGHTLY = Address("schedule", "nightly-import")
KINDS = ["queue", "schedule"]
RULE_ARN = "arn:aws:events:eu-north-1:123456789012:rule/acme-qa-nightly-import"

SPEC = """\
tags: {CostCenter: "4711"}
queues:
  imports: {}
schedules:
  nightly-import:
    cron: "0 2 * * ? *"
    send:
      queue: imports
      message: {job: import-partner-files, when: nightly}
"""


def _queue_arn(aws, name: str = "acme-qa-imports") -> str:
    sqs = aws.client("sqs")
    return sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
                                    AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _ours(aws) -> list[str]:
    """Rules tagged for qa (moto's tagging API does not list rules: ask EventBridge)."""
    events = aws.client("events")
    qa = {"Key": "envctl:environment", "Value": "qa"}
    return [r["Name"] for r in events.list_rules()["Rules"]
            if qa in events.list_tags_for_resource(ResourceARN=r["Arn"])["Tags"]]


# ------------------------------------------------------------------ expansion

def test_expand_rule_and_target(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC + """\
  heartbeat:
    rate: "5 minutes"
    enabled: false
    send: {queue: imports, message: ping}
""")
    nightly = graph[NIGHTLY].props
    assert nightly.name == "acme-qa-nightly-import"
    assert (nightly.schedule_expression, nightly.state) == ("cron(0 2 * * ? *)", "ENABLED")
    [target] = nightly.targets
    assert (target.id, str(target.arn)) == ("queue", "queue/imports.arn")
    assert target.input == '{"job":"import-partner-files","when":"nightly"}'     # canonical JSON
    heartbeat = graph[Address("schedule", "heartbeat")].props
    assert (heartbeat.schedule_expression, heartbeat.state) == ("rate(5 minutes)", "DISABLED")
    # EventBridge's Input must be JSON text: a string message is sent as a JSON string.
    assert heartbeat.targets[0].input == '"ping"'
    assert graph[NIGHTLY].deps == {Address("queue", "imports")}
    assert graph[Address("queue", "imports")].props.allow_from == (
        ("events", "acme-qa-heartbeat"), ("events", "acme-qa-nightly-import"))


# ------------------------------------------------------------------ lifecycle

def test_lifecycle(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    events = aws.client("events")
    queue_arn = _queue_arn(aws)

    # 1. Read back with plain boto3.
    rule = events.describe_rule(Name="acme-qa-nightly-import")
    assert (rule["ScheduleExpression"], rule["State"]) == ("cron(0 2 * * ? *)", "ENABLED")
    assert rule["Description"] == "envctl acme/qa: sends a message to queue imports"
    [target] = events.list_targets_by_rule(Rule="acme-qa-nightly-import")["Targets"]
    assert (target["Id"], target["Arn"]) == ("queue", queue_arn)
    assert json.loads(target["Input"]) == {"job": "import-partner-files", "when": "nightly"}
    assert {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]} == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "schedule/nightly-import",
        "CostCenter": "4711"}
    assert by_kind("schedule").outputs(created[NIGHTLY]) == {"name": "acme-qa-nightly-import", "arn": RULE_ARN}

    # 2. Discover, empty diff, no mutating call.
    aws.log.clear()
    found = discover(ctx, KINDS)
    assert sorted(found) == [Address("queue", "imports"), NIGHTLY]
    assert diff_all(graph, found) == {}
    assert aws.log.mutating() == []

    # 3a. Disabled by hand: the diff is exactly the state; update enables it again.
    events.disable_rule(Name="acme-qa-nightly-import")
    found = discover(ctx, KINDS)
    assert changed_values(graph, found, NIGHTLY) == {"state": ("DISABLED", "ENABLED")}
    aws.log.clear()
    update_props(ctx, graph, found, NIGHTLY)
    assert [c.action for c in aws.log.mutating()] == ["PutRule"]
    assert events.describe_rule(Name="acme-qa-nightly-import")["State"] == "ENABLED"

    # 3b. The message edited and a second target added by hand: the diff is exactly the targets;
    # update puts ours back and removes the stranger.
    events.put_targets(Rule="acme-qa-nightly-import", Targets=[
        {"Id": "queue", "Arn": queue_arn, "Input": '{"job": "something-else"}'},
        {"Id": "extra", "Arn": queue_arn}])
    found = discover(ctx, KINDS)
    assert set(changed_values(graph, found, NIGHTLY)) == {"targets"}
    aws.log.clear()
    update_props(ctx, graph, found, NIGHTLY)
    assert sorted(c.action for c in aws.log.mutating()) == ["PutTargets", "RemoveTargets"]
    [target] = events.list_targets_by_rule(Rule="acme-qa-nightly-import")["Targets"]
    assert (target["Id"], json.loads(target["Input"])) == ("queue", {"job": "import-partner-files", "when": "nightly"})
    assert diff_all(graph, discover(ctx, KINDS)) == {}

    # 4. Deleted out of band: gone from discovery.
    events.remove_targets(Rule="acme-qa-nightly-import", Ids=["queue"])
    events.delete_rule(Name="acme-qa-nightly-import")
    found = discover(ctx, KINDS)
    assert NIGHTLY not in found and diff_all(graph, found)[NIGHTLY] is None

    # 5. Destroy: targets removed before the rule, nothing tagged left, foreign rules untouched.
    events.put_rule(Name="acme-qa-nightly-import-copy", ScheduleExpression="rate(1 day)")
    events.put_rule(Name="acme-staging-nightly-import", ScheduleExpression="rate(1 day)",
                    Tags=[{"Key": "envctl:project", "Value": "acme"}, {"Key": "envctl:environment", "Value": "staging"},
                          {"Key": "envctl:resource", "Value": "schedule/nightly-import"}])
    create_all(ctx, graph)
    aws.log.clear()
    delete_all(ctx, discover(ctx, KINDS), graph)
    # moto deletes a rule that still has targets; AWS refuses: the order is checked from the log.
    assert 0 <= aws.log.index("RemoveTargets") < aws.log.index("DeleteRule")
    assert _ours(aws) == []
    assert sorted(r["Name"] for r in events.list_rules()["Rules"]) == [
        "acme-qa-nightly-import-copy", "acme-staging-nightly-import"]


def test_expression_and_description_changes_are_updates(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    events = aws.client("events")
    events.put_rule(Name="acme-qa-nightly-import", ScheduleExpression="rate(1 hour)", State="ENABLED",
                    Description="changed by hand")
    found = discover(ctx, KINDS)
    assert changed_values(graph, found, NIGHTLY) == {
        "schedule_expression": ("rate(1 hour)", "cron(0 2 * * ? *)"),
        "description": ("changed by hand", "envctl acme/qa: sends a message to queue imports")}
    update_props(ctx, graph, found, NIGHTLY)
    assert events.describe_rule(Name="acme-qa-nightly-import")["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert diff_all(graph, discover(ctx, KINDS)) == {}


class _ScanHoldingRules:
    """The session of `ctx`, but with a tag scan that holds EventBridge rules as AWS's does
    (moto's scan has none): `rules` are the (ARN, tags) it answers for "events"."""

    def __init__(self, session, rules):
        self.session, self.rules, self.region = session, rules, session.region

    def client(self, service):
        return self.session.client(service)

    def account_id(self):
        return self.session.account_id()

    def tagged_arns(self, resource_type):
        return list(self.rules) if resource_type == "events" else self.session.tagged_arns(resource_type)

    def forget_tagged(self):
        self.session.forget_tagged()


def test_discovery_takes_rule_tags_from_the_scan_and_reads_the_others(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    events = aws.client("events")
    events.put_rule(Name="acme-qa-nightly-import-copy", ScheduleExpression="rate(1 day)")   # our prefix, untagged

    # moto's scan holds no rule: each rule listed has its tags read.
    aws.log.clear()
    assert sorted(discover(ctx, ["schedule"])) == [NIGHTLY]
    # The listing does not wait for the tag scan (other kinds set it going): it comes first.
    assert [c.action for c in aws.log.snapshot()][:2] == ["ListRules", "GetResources"]
    assert [c.service for c in aws.log.snapshot() if c.action == "ListTagsForResource"] == ["events", "events"]

    # AWS's scan holds ours: only the rule it does not hold has its tags read.
    ours = [(RULE_ARN, {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=RULE_ARN)["Tags"]})]
    ctx.aws = _ScanHoldingRules(ctx.aws, ours)
    aws.log.clear()
    found = discover(ctx, KINDS)
    assert found[NIGHTLY].tags == ours[0][1]
    assert diff_all(graph, found) == {}
    assert [c.service for c in aws.log.snapshot() if c.action == "ListTagsForResource"] == ["events"]
    assert aws.log.count("ListTargetsByRule") == 1


def test_create_adopts_our_existing_rule(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    aws.log.clear()
    assert by_kind("schedule").create(ctx, graph[NIGHTLY]) == "acme-qa-nightly-import"
    assert aws.log.mutating() == []


def test_create_refuses_a_rule_that_is_not_ours(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    events = aws.client("events")
    events.put_rule(Name="acme-qa-nightly-import", ScheduleExpression="rate(7 days)")
    aws.log.clear()
    with pytest.raises(NotOurs, match="EventBridge rule acme-qa-nightly-import already exists"):
        by_kind("schedule").create(make_ctx(aws), graph[NIGHTLY])
    # put_rule is an upsert: it must not have been called on someone else's rule.
    assert aws.log.mutating() == []
    assert events.describe_rule(Name="acme-qa-nightly-import")["ScheduleExpression"] == "rate(7 days)"


def test_delete_removes_the_targets_it_read_and_those_put_since(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    first, second = create_all(ctx, graph)[NIGHTLY], create_all(make_ctx(aws, environment="dev"), graph_from_yaml(
        tmp_path, SPEC, env="dev"))[Address("schedule", "nightly-import")]
    events = aws.client("events")
    # As read just before: its targets are known, nothing is listed again.
    aws.log.clear()
    by_kind("schedule").delete(ctx, first)
    assert [c.action for c in aws.log.snapshot()] == ["RemoveTargets", "DeleteRule"]
    # A target put after the read: the rule is refused, then its targets are listed afresh.
    events.put_targets(Rule=second.id, Targets=[{"Id": "extra", "Arn": second.props.targets[0].arn}])
    aws.log.clear()
    by_kind("schedule").delete(make_ctx(aws, environment="dev"), second)
    assert [(c.action, c.status) for c in aws.log.snapshot()] == [
        ("RemoveTargets", 200), ("DeleteRule", 400), ("ListTargetsByRule", 200), ("RemoveTargets", 200),
        ("DeleteRule", 200)]
    assert events.list_rules(NamePrefix="acme-")["Rules"] == []


def test_delete_of_a_missing_rule_succeeds(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    obs = create_all(ctx, graph)[NIGHTLY]
    events = aws.client("events")
    events.remove_targets(Rule=obs.id, Ids=["queue"])
    events.delete_rule(Name=obs.id)
    assert by_kind("schedule").read(ctx, obs.id) is None
    by_kind("schedule").delete(ctx, obs)
