"""CloudWatch log groups with metric filters: the lifecycle against moto server."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from envctl.provisioners.log_group import MetricFilter, filter_calls
from envctl.sandbox.middleware import Latency, chain
from envctl.sandbox.server import EmulatedAws
from tests.provisioners.harness import (Arrivals, create_all, delete_all, diff_all, discover, graph_from_yaml,
                                        make_ctx)

SPEC = """\
tags: {Owner: platform-team}
log_groups:
  app:
    retention_days: 30
    metric_filters:
      errors: {pattern: "ERROR", metric: AppErrors}
      slow: {pattern: "[t, latency > 1000]", metric: SlowRequests, namespace: Acme/Web, value: "$latency"}
  audit: {}
"""
APP = "acme-qa-app"
AUDIT = "acme-qa-audit"


def _group(logs, name):
    return next((g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                 if g["logGroupName"] == name), None)


def _filters(logs, name):
    return sorted((f["filterName"], f["filterPattern"], f["metricTransformations"][0]["metricName"],
                   f["metricTransformations"][0]["metricNamespace"], f["metricTransformations"][0]["metricValue"])
                  for f in logs.describe_metric_filters(logGroupName=name)["metricFilters"])


def _tagged_groups(logs):
    return sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
                  if logs.list_tags_for_resource(resourceArn=g["logGroupArn"])["tags"].get("envctl:environment")
                  == "qa")


def test_lifecycle(aws, tmp_path):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="acme-qa-foreign")          # our prefix, not our tags
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)

    # create, read back with plain boto3
    created = create_all(ctx, graph)
    app = _group(logs, APP)
    assert app["retentionInDays"] == 30
    assert "retentionInDays" not in _group(logs, AUDIT)             # never expire
    assert logs.list_tags_for_resource(resourceArn=app["logGroupArn"])["tags"] == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "log_group/app",
        "Owner": "platform-team"}
    assert _filters(logs, APP) == [("errors", "ERROR", "AppErrors", "acme/qa", "1"),
                                   ("slow", "[t, latency > 1000]", "SlowRequests", "Acme/Web", "$latency")]
    assert _filters(logs, AUDIT) == []
    assert by_kind("log_group").outputs(created[Address("log_group", "app")]) == {
        "name": APP, "arn": f"arn:aws:logs:eu-north-1:{aws.account}:log-group:{APP}"}

    # discover finds exactly ours, in sync, with no mutating call
    aws.log.clear()
    found = discover(ctx, ["log_group"])
    assert sorted(map(str, found)) == ["log_group/app", "log_group/audit"]
    assert diff_all(graph, found) == {}
    assert aws.log.mutating() == []

    # drift by hand: exactly those fields
    logs.put_retention_policy(logGroupName=APP, retentionInDays=7)
    logs.delete_metric_filter(logGroupName=APP, filterName="slow")
    logs.put_metric_filter(logGroupName=APP, filterName="extra", filterPattern="WARN",
                           metricTransformations=[{"metricName": "W", "metricNamespace": "x", "metricValue": "1"}])
    logs.put_retention_policy(logGroupName=AUDIT, retentionInDays=1)
    found = discover(ctx, ["log_group"])
    drift = diff_all(graph, found)
    assert {str(a): sorted(c.path for c in changes) for a, changes in drift.items()} == {
        "log_group/app": ["metric_filters", "retention_in_days"], "log_group/audit": ["retention_in_days"]}
    assert next(c for c in drift[Address("log_group", "app")] if c.path == "retention_in_days").before == 7

    # update repairs it: only the needed calls
    aws.log.clear()
    for address, changes in drift.items():
        by_kind("log_group").update(ctx, found[address], graph[address], changes)
    assert aws.log.count("PutMetricFilter") == 1 and aws.log.count("DeleteMetricFilter") == 1
    assert aws.log.count("DeleteRetentionPolicy") == 1 and aws.log.count("PutRetentionPolicy") == 1
    assert _group(logs, APP)["retentionInDays"] == 30
    assert "retentionInDays" not in _group(logs, AUDIT)
    assert [f[0] for f in _filters(logs, APP)] == ["errors", "slow"]
    assert diff_all(graph, discover(ctx, ["log_group"])) == {}

    # deleted out of band: gone from discovery, read says None
    logs.delete_log_group(logGroupName=AUDIT)
    found = discover(ctx, ["log_group"])
    assert sorted(map(str, found)) == ["log_group/app"]
    assert by_kind("log_group").read(ctx, AUDIT) is None

    # delete_all leaves nothing tagged; the foreign group stays; deleting again is fine
    delete_all(ctx, found, graph)
    assert _tagged_groups(logs) == []
    assert _group(logs, "acme-qa-foreign") is not None
    by_kind("log_group").delete(ctx, found[Address("log_group", "app")])


def test_create_adopts_our_existing_group(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    node = graph[Address("log_group", "app")]
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=APP, tags=dict(node.tags))   # e.g. a run that crashed after create

    assert by_kind("log_group").create(ctx, node) == APP
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=APP)["logGroups"]] == [APP]
    assert _group(logs, APP)["retentionInDays"] == 30                 # brought to the spec
    assert [f[0] for f in _filters(logs, APP)] == ["errors", "slow"]


def test_create_refuses_a_group_that_is_not_ours(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=APP, tags={"team": "someone-else"})

    with pytest.raises(NotOurs):
        by_kind("log_group").create(make_ctx(aws), graph[Address("log_group", "app")])
    assert logs.list_tags_for_resource(resourceArn=_group(logs, APP)["logGroupArn"])["tags"] == {
        "team": "someone-else"}
    assert "retentionInDays" not in _group(logs, APP)


def test_update_tags_changes_only_user_tags(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    observed = create_all(ctx, graph)[Address("log_group", "audit")]

    by_kind("log_group").update_tags(ctx, observed, {"CostCenter": "4711"})
    tags = aws.client("logs").list_tags_for_resource(resourceArn=observed.outputs["arn"])["tags"]
    assert tags == {"envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "log_group/audit",
                    "CostCenter": "4711"}


def _f(name, pattern="P"):
    return MetricFilter(name=name, pattern=pattern, metric_name="M", namespace="N")


@pytest.mark.parametrize("current,desired,to_put,to_delete", [
    ([], [_f("a")], ["a"], []),
    ([_f("a")], [_f("a")], [], []),
    ([_f("a")], [_f("a", "Q")], ["a"], []),                 # changed: put replaces it on AWS
    ([_f("a"), _f("b")], [_f("b")], [], ["a"]),
    ([_f("a"), _f("a", "Q")], [_f("a", "Q")], ["a"], []),    # a duplicate (moto appends): put again
])
def test_filter_calls(current, desired, to_put, to_delete):
    # A changed filter cannot be made by hand on moto (put_metric_filter appends a second one
    # of the same name), so the reconcile decision is tested here as a table.
    put, delete = filter_calls(current, desired)
    assert [f.name for f in put] == to_put
    assert delete == to_delete


TWO_GROUPS = """\
log_groups:
  web:
    metric_filters:
      errors: {pattern: "ERROR", metric: WebErrors}
  worker:
    metric_filters:
      errors: {pattern: "FATAL", metric: WorkerErrors}
      retries: {pattern: "RETRY", metric: WorkerRetries}
"""


def _filter_names(observed):
    return [(f.name, f.pattern, f.metric_name) for f in observed.props.metric_filters]


def test_discovery_lists_filters_once_and_gives_each_group_its_own(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, TWO_GROUPS)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    logs = aws.client("logs")
    # A foreign group under our prefix with a filter of the same name as ours.
    logs.create_log_group(logGroupName="acme-qa-web-copy")
    logs.put_metric_filter(logGroupName="acme-qa-web-copy", filterName="errors", filterPattern="OTHER",
                           metricTransformations=[{"metricName": "X", "metricNamespace": "x", "metricValue": "1"}])

    aws.log.clear()
    found = discover(ctx, ["log_group"])
    assert {a.name: _filter_names(o) for a, o in found.items()} == {
        "web": [("errors", "ERROR", "WebErrors")],
        "worker": [("errors", "FATAL", "WorkerErrors"), ("retries", "RETRY", "WorkerRetries")]}
    assert diff_all(graph, found) == {}
    # Tags come from the tag scan and every group's filters from one listing: no call per group.
    assert aws.log.count("DescribeMetricFilters") == 1
    assert [c for c in aws.log.snapshot() if c.service == "logs" and c.action == "ListTagsForResource"] == []

    # A filter removed by hand from one group shows on that group only; update puts it back.
    logs.delete_metric_filter(logGroupName="acme-qa-worker", filterName="retries")
    found = discover(ctx, ["log_group"])
    drift = diff_all(graph, found)
    assert {a.name: [c.path for c in changes] for a, changes in drift.items()} == {"worker": ["metric_filters"]}
    worker = Address("log_group", "worker")
    by_kind("log_group").update(ctx, found[worker], graph[worker], drift[worker])
    assert diff_all(graph, discover(ctx, ["log_group"])) == {}


def test_discovery_lists_both_prefixes_and_the_filters_side_by_side(aws, tmp_path):
    """After the tag scan, the groups under each of envctl's two prefixes and the region's
    metric filters are three independent listings: one call's time, not three."""
    arrivals, latency = Arrivals(), Latency()
    server = EmulatedAws(wrap=chain(arrivals, latency)).start()
    try:
        ctx = make_ctx(SimpleNamespace(endpoint=server.endpoint, region=aws.region))
        graph = graph_from_yaml(tmp_path, SPEC)
        create_all(ctx, graph)
        latency.configure(seconds=0.3)
        arrivals.calls.clear()
        with ThreadPoolExecutor(4) as pool:
            found = discover(dataclasses.replace(ctx, read_pool=pool), ["log_group"])
    finally:
        server.stop()
    assert diff_all(graph, found) == {}
    listings = arrivals.of("DescribeLogGroups", "DescribeMetricFilters")
    assert len(listings) == 3
    assert max(listings) - min(listings) < 0.2          # one after another, they arrive 0.3 s apart
