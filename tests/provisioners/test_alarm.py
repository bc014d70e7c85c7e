"""CloudWatch metric alarms: the lifecycle against moto server.

The topic and queue an alarm refers to are made by hand with plain boto3 and stand in for
their nodes, so these tests exercise only the alarm and log group provisioners.
"""
from __future__ import annotations

import pytest

from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from tests.provisioners.harness import (create_all, delete_all, diff_all, discover, graph_from_yaml, make_ctx,
                                        resolved, stand_in_queue, stand_in_topic, tags_of)

SPEC = """\
tags: {Owner: platform-team}
topics:
  alarms: {}
queues:
  work-units: {}
log_groups:
  app:
    metric_filters:
      errors: {pattern: "ERROR", metric: AppErrors}
alarms:
  app-errors:
    metric: {log_filter: app.errors}
    statistic: Sum
    period_s: 300
    comparison: ">="
    threshold: 1
    notify: [alarms]
    description: Errors in the app log
  queue-age:
    metric: {namespace: AWS/SQS, name: ApproximateAgeOfOldestMessage, queue: work-units,
             dimensions: {Team: platform}}
    statistic: Maximum
    period_s: 60
    evaluation_periods: 3
    comparison: ">"
    threshold: 600
    missing_data: notBreaching
"""
APP_ERRORS = "acme-qa-app-errors"
QUEUE_AGE = "acme-qa-queue-age"


def stand_ins(aws) -> dict[Address, dict]:
    """The topic and queue, made by hand: their outputs as their provisioners would give them."""
    return {Address("topic", "alarms"): stand_in_topic(aws, "acme-qa-alarms"),
            Address("queue", "work-units"): stand_in_queue(aws, "acme-qa-work-units")}


def _alarm(cw, name):
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarms[0] if alarms else None


def _tags(cw, arn):
    return tags_of(cw.list_tags_for_resource(ResourceARN=arn)["Tags"])


def test_lifecycle(aws, tmp_path):
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="acme-qa-foreign", MetricName="M", Namespace="N", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    given = stand_ins(aws)
    topic = given[Address("topic", "alarms")]["arn"]
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)

    # create, read back with plain boto3
    created = create_all(ctx, graph, given)
    a = _alarm(cw, APP_ERRORS)
    assert (a["Namespace"], a["MetricName"], a["Statistic"], a["Period"], a["EvaluationPeriods"]) == \
        ("acme/qa", "AppErrors", "Sum", 300, 1)
    assert (a["Threshold"], a["ComparisonOperator"], a["TreatMissingData"]) == \
        (1.0, "GreaterThanOrEqualToThreshold", "missing")
    assert a["AlarmActions"] == [topic] and a["OKActions"] == [] and a["Dimensions"] == []
    assert a["AlarmDescription"] == "Errors in the app log"
    assert _tags(cw, a["AlarmArn"]) == {"envctl:project": "acme", "envctl:environment": "qa",
                                        "envctl:resource": "alarm/app-errors", "Owner": "platform-team"}
    q = _alarm(cw, QUEUE_AGE)
    assert (q["Namespace"], q["MetricName"], q["Statistic"], q["Period"], q["EvaluationPeriods"]) == \
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 60, 3)
    assert (q["Threshold"], q["ComparisonOperator"], q["TreatMissingData"]) == \
        (600.0, "GreaterThanThreshold", "notBreaching")
    assert sorted((d["Name"], d["Value"]) for d in q["Dimensions"]) == [("QueueName", "acme-qa-work-units"),
                                                                        ("Team", "platform")]
    assert q["AlarmActions"] == []
    assert by_kind("alarm").outputs(created[Address("alarm", "app-errors")]) == {
        "name": APP_ERRORS, "arn": a["AlarmArn"]}

    # discover finds exactly ours, in sync, with no mutating call
    aws.log.clear()
    found = discover(ctx, ["alarm", "log_group"])
    assert sorted(map(str, found)) == ["alarm/app-errors", "alarm/queue-age", "log_group/app"]
    assert diff_all(graph, found, given) == {}
    assert aws.log.mutating() == []

    # drift by hand: exactly those fields
    cw.put_metric_alarm(AlarmName=APP_ERRORS, MetricName="AppErrors", Namespace="acme/qa", Statistic="Sum",
                        Period=300, EvaluationPeriods=1, Threshold=5.0, TreatMissingData="missing",
                        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic],
                        AlarmDescription="Errors in the app log")
    cw.put_metric_alarm(AlarmName=QUEUE_AGE, MetricName="ApproximateAgeOfOldestMessage", Namespace="AWS/SQS",
                        Statistic="Maximum", Period=60, EvaluationPeriods=3, Threshold=600.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
                        Dimensions=[{"Name": "QueueName", "Value": "acme-qa-work-units"},
                                    {"Name": "Team", "Value": "platform"}], OKActions=[topic])
    found = discover(ctx, ["alarm", "log_group"])
    drift = diff_all(graph, found, given)
    assert {str(k): [(c.path, c.before, c.after) for c in v] for k, v in drift.items()} == {
        "alarm/app-errors": [("threshold", 5.0, 1.0)], "alarm/queue-age": [("ok_actions", [topic], [])]}

    # update repairs it; tags stay
    for address, changes in drift.items():
        by_kind("alarm").update(ctx, found[address], resolved(graph[address], given), changes)
    found = discover(ctx, ["alarm", "log_group"])
    assert diff_all(graph, found, given) == {}
    assert _alarm(cw, APP_ERRORS)["Threshold"] == 1.0 and _alarm(cw, QUEUE_AGE)["OKActions"] == []
    assert _tags(cw, a["AlarmArn"])["envctl:resource"] == "alarm/app-errors"

    # deleted out of band: gone from discovery, read says None
    cw.delete_alarms(AlarmNames=[QUEUE_AGE])
    found = discover(ctx, ["alarm", "log_group"])
    assert sorted(map(str, found)) == ["alarm/app-errors", "log_group/app"]
    assert by_kind("alarm").read(ctx, QUEUE_AGE) is None

    # delete_all leaves nothing tagged; the foreign alarm stays
    delete_all(ctx, found, graph)
    assert [x["AlarmName"] for x in cw.describe_alarms()["MetricAlarms"]] == ["acme-qa-foreign"]
    assert aws.client("logs").describe_log_groups(logGroupNamePrefix="acme-qa-")["logGroups"] == []


def test_create_adopts_our_existing_alarm(aws, tmp_path):
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    node = resolved(graph[Address("alarm", "queue-age")], given)
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=QUEUE_AGE, MetricName="Old", Namespace="N", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        Tags=[{"Key": k, "Value": v} for k, v in node.tags.items()])

    assert by_kind("alarm").create(ctx, node) == QUEUE_AGE
    alarms = cw.describe_alarms(AlarmNamePrefix=QUEUE_AGE)["MetricAlarms"]
    assert [(x["AlarmName"], x["MetricName"], x["Threshold"]) for x in alarms] == \
        [(QUEUE_AGE, "ApproximateAgeOfOldestMessage", 600.0)]         # one alarm, brought to the spec


def test_create_refuses_an_alarm_that_is_not_ours(aws, tmp_path):
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC)
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=QUEUE_AGE, MetricName="Theirs", Namespace="N", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    aws.log.clear()

    with pytest.raises(NotOurs):
        by_kind("alarm").create(make_ctx(aws), resolved(graph[Address("alarm", "queue-age")], given))
    assert aws.log.mutating() == []                       # put_metric_alarm would have overwritten it
    assert _alarm(cw, QUEUE_AGE)["MetricName"] == "Theirs"


def test_expand_alarm_on_each_kind_of_resource(tmp_path):
    """A named resource adds its dimension, by reference to that resource's output."""
    graph = graph_from_yaml(tmp_path, """\
        network:
          cidr: 10.0.0.0/16
          nat: none
          tiers: {data: {prefix: 24}}
        databases:
          main: {engine: postgres, version: "16.4", instance_class: db.t3.micro, storage_gb: 20, tier: data}
        functions: {}
        alarms:
          db-cpu:
            metric: {namespace: AWS/RDS, name: CPUUtilization, database: main}
            comparison: ">"
            threshold: 80
        """)
    node = graph[Address("alarm", "db-cpu")]
    (dimension,) = node.props.dimensions
    assert dimension.name == "DBInstanceIdentifier"
    assert str(dimension.value) == "db_instance/main.name"
    assert Address("db_instance", "main") in node.deps
    assert node.props.statistic == "Average" and node.props.evaluation_periods == 1


def test_a_destroy_deletes_its_alarms_in_one_call_and_refuses_one_that_is_no_longer_ours(aws, tmp_path):
    """CloudWatch answers DeleteAlarms 3 times a second, and takes 100 names a call: the executor
    deletes the alarms that are ready together in one call, each checked first by its tags."""
    from envctl.engine.executor import State, execute
    from envctl.model.graph import Graph
    from envctl.plan.planner import destroy_plan

    cw = aws.client("cloudwatch")
    names = [f"q{i}" for i in range(5)]
    alarms = "".join(f"  {n}: {{metric: {{namespace: AWS/SQS, name: ApproximateAgeOfOldestMessage, queue: work-units}},"
                     f" comparison: '>', threshold: 600}}\n" for n in names)
    graph = graph_from_yaml(tmp_path, "queues:\n  work-units: {}\nalarms:\n" + alarms)
    ctx = make_ctx(aws)
    given = {Address("queue", "work-units"): stand_in_queue(aws, "acme-qa-work-units")}
    create_all(ctx, graph, given)
    found = discover(ctx, ["alarm"])
    plan = destroy_plan(found)
    # Since the plan: q3 is taken over by hand (another environment's tags).
    q3 = _alarm(cw, "acme-qa-q3")["AlarmArn"]
    cw.tag_resource(ResourceARN=q3, Tags=[{"Key": "envctl:environment", "Value": "prod"}])
    aws.log.clear()

    result = execute(plan, Graph(), found, ctx, parallelism=10)

    assert aws.log.count("DeleteAlarms") == 1
    # Each one's tags; q3's "not ours" is read again in full, to tell it from "gone".
    assert (aws.log.count("ListTagsForResource"), aws.log.count("DescribeAlarms")) == (6, 1)
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["acme-qa-q3"]
    states = {str(a): o.state for a, o in result.outcomes.items()}
    assert states == {**{f"alarm/{n}": State.DELETED for n in names}, "alarm/q3": State.FAILED}
    assert "not tagged as this environment's" in result.outcomes[Address("alarm", "q3")].message
