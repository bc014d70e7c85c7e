"""The spec models on their own: defaults, shorthands, one-field rules, and the tables they hold."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from envctl.spec import models, names, refs
from envctl.spec.models import (GRANTS, Alarm, Capacity, EnvironmentSpec, Grant, IngressRule, LogGroup, Network,
                                Queue, Schedule, Subscription, Table, Tier)
from envctl.spec.validate import load

REPO_SPECS = Path(__file__).resolve().parents[2] / "specs"


def error_of(model, data) -> str:
    with pytest.raises(ValidationError) as e:
        model.model_validate(data)
    return "\n".join(err["msg"] for err in e.value.errors())


def test_the_repository_examples_parse_into_the_models(monkeypatch):
    monkeypatch.chdir(REPO_SPECS.parent)

    qa = load(REPO_SPECS, "qa")
    prod = load(REPO_SPECS, "prod")

    assert qa.model.network.cidr == "10.30.0.0/16"
    assert qa.model.applications["orders"].capacity == Capacity(min=1, desired=1, max=2)
    assert qa.model.account == "123456789012" and not qa.model.protected
    assert prod.model.protected and prod.model.network.nat == "per_zone"
    assert prod.model.databases["main"].multi_az is True
    assert qa.model.tables["sessions"].partition_key.name == "id"
    assert qa.model.security_groups["app"].ingress[0].source == "bastion"


def test_every_model_refuses_unknown_keys():
    assert "Extra inputs are not permitted" in error_of(Queue, {"visiblity_timeout_s": 1})
    assert "Extra inputs are not permitted" in error_of(EnvironmentSpec, {"project": "a", "region": "eu-north-1",
                                                                           "queus": {}})


def test_models_are_frozen():
    queue = Queue()
    with pytest.raises(ValidationError):
        queue.delay_s = 5


def test_queue_defaults_are_sqs_defaults():
    assert Queue() == Queue(fifo=False, visibility_timeout_s=30, retention_s=345600, delay_s=0,
                            max_message_bytes=262144, receive_wait_s=0, dead_letter=None)


def test_empty_sections_may_be_written_as_null():
    spec = EnvironmentSpec.model_validate({"project": "acme", "region": "eu-north-1", "queues": None, "tags": None})

    assert spec.queues == {} and spec.tags == {}


@pytest.mark.parametrize(("tier", "ok"), [
    ({"prefix": 24}, True),
    ({"cidrs": ["10.0.0.0/24", "10.0.1.0/24"]}, True),
    ({}, False),
    ({"prefix": 24, "cidrs": ["10.0.0.0/24"]}, False),
    ({"prefix": 15}, False),
    ({"prefix": 29}, False),
    ({"cidrs": ["10.0.0.1/24"]}, False),
])
def test_a_tier_is_sized_by_prefix_or_cidrs(tier, ok):
    if ok:
        assert Tier.model_validate(tier).internet is False
    else:
        with pytest.raises(ValidationError):
            Tier.model_validate(tier)


def test_network_defaults():
    net = Network.model_validate({"cidr": "10.0.0.0/16", "tiers": {"a": {"prefix": 24}}})

    assert (net.zones, net.nat) == (2, "single")
    assert net.tiers["a"].nat is True


@pytest.mark.parametrize(("rule", "refused"), [
    ({"port": 22, "from": "0.0.0.0/0"}, "SSH"),
    ({"port": 3389, "from": "0.0.0.0/0"}, "RDP"),
    ({"ports": "1-1024", "from": "0.0.0.0/0"}, "SSH"),
    ({"port": 22, "from": "::/0"}, "SSH"),
    ({"protocol": "all", "from": "0.0.0.0/0"}, "SSH"),
    ({"port": 22, "from": "0.0.0.0/0", "allow_world": True}, None),
    ({"port": 443, "from": "0.0.0.0/0"}, None),
    ({"port": 22, "protocol": "udp", "from": "0.0.0.0/0"}, None),
    ({"protocol": "icmp", "from": "0.0.0.0/0"}, None),
    ({"port": 22, "from": "10.0.0.0/8"}, None),
    ({"port": 22, "from": "bastion"}, None),
])
def test_remote_administration_from_the_world_needs_allow_world(rule, refused):
    if refused:
        assert f"{refused} open to {rule['from']} is refused" in error_of(IngressRule, rule)
    else:
        assert IngressRule.model_validate(rule).source == rule["from"]


@pytest.mark.parametrize(("rule", "message"), [
    ({"from": "x"}, "a tcp rule needs port or ports"),
    ({"port": 22, "ports": "20-30", "from": "x"}, "a tcp rule needs port or ports"),
    ({"ports": "30-20", "from": "x"}, "invalid port range '30-20'"),
    ({"ports": "1-70000", "from": "x"}, "invalid port range '1-70000'"),
    ({"protocol": "icmp", "port": 8, "from": "x"}, "a icmp rule takes no port"),
    ({"port": 70000, "from": "x"}, "less than or equal to 65535"),
])
def test_rule_ports(rule, message):
    assert message in error_of(IngressRule, rule)


def test_rule_port_range():
    assert IngressRule.model_validate({"ports": "8000-8100", "from": "x"}).port_range == (8000, 8100)
    assert IngressRule.model_validate({"protocol": "icmp", "from": "x"}).port_range == (-1, -1)


def test_grant_names_one_resource_and_known_actions():
    grant = Grant.model_validate({"queue": "work", "actions": ["send", "receive"]})

    assert grant.target == ("queue", "work")
    assert "got none" in error_of(Grant, {"actions": ["send"]})
    assert "got 2" in error_of(Grant, {"queue": "a", "topic": "b", "actions": ["send"]})
    assert "unknown action 'write' on a queue; choose from: send, receive" in error_of(
        Grant, {"queue": "a", "actions": ["write"]})
    assert "at least 1 item" in error_of(Grant, {"queue": "a", "actions": []})


def test_grants_map_to_exact_iam_actions_never_wildcards():
    for kind, words in GRANTS.items():
        assert kind in Grant.model_fields
        for word, actions in words.items():
            assert actions, (kind, word)
            for action in actions:
                service, _, name = action.partition(":")
                assert service and name and "*" not in action, action


def test_table_keys_may_be_just_a_name():
    table = Table.model_validate({"partition_key": "id", "sort_key": {"name": "created_at", "type": "N"}})

    assert (table.partition_key.name, table.partition_key.type) == ("id", "S")
    assert (table.sort_key.name, table.sort_key.type) == ("created_at", "N")
    assert table.billing == "on_demand"


def test_table_capacity_goes_with_provisioned_billing():
    assert "provisioned billing needs" in error_of(Table, {"partition_key": "id", "billing": "provisioned"})
    assert "apply only with billing: provisioned" in error_of(Table, {"partition_key": "id", "read_capacity": 5})
    assert Table.model_validate({"partition_key": "id", "billing": "provisioned", "read_capacity": 5,
                                 "write_capacity": 5}).read_capacity == 5


@pytest.mark.parametrize(("capacity", "ok"), [
    ((0, 0, 0), True), ((1, 2, 4), True), ((2, 2, 2), True), ((3, 2, 4), False), ((1, 5, 4), False),
])
def test_capacity_is_ordered(capacity, ok):
    data = dict(zip(("min", "desired", "max"), capacity))
    if ok:
        assert Capacity.model_validate(data) == Capacity(**data)
    else:
        assert "need min ≤ desired ≤ max" in error_of(Capacity, data)


def test_subscription_is_exactly_one_endpoint():
    assert Subscription(email="ops@example.com").protocol_endpoint == ("email", "ops@example.com")
    assert Subscription(queue="work").protocol_endpoint == ("queue", "work")
    assert "exactly one of" in error_of(Subscription, {})
    assert "exactly one of" in error_of(Subscription, {"email": "a@b.co", "queue": "work"})


@pytest.mark.parametrize("days", [None, 1, 14, 30, 365, 3653])
def test_log_retention_accepts_cloudwatch_values(days):
    assert LogGroup(retention_days=days).retention_days == days


@pytest.mark.parametrize("days", [0, 2, 10, 31, 366, 4000])
def test_log_retention_refuses_other_values(days):
    assert f"not {days}" in error_of(LogGroup, {"retention_days": days})


@pytest.mark.parametrize(("period", "ok"), [(10, True), (30, True), (60, True), (300, True), (5, False),
                                            (45, False), (90, False)])
def test_alarm_period(period, ok):
    data = {"metric": {"namespace": "AWS/EC2", "name": "CPUUtilization"}, "comparison": ">", "threshold": 1,
            "period_s": period}
    if ok:
        assert Alarm.model_validate(data).period_s == period
    else:
        assert "period must be 10, 30 or a multiple of 60" in error_of(Alarm, data)


@pytest.mark.parametrize(("metric", "message"), [
    ({"log_filter": "app.errors", "namespace": "x"}, "log_filter stands alone"),
    ({"namespace": "AWS/EC2"}, "give log_filter"),
    ({"namespace": "AWS/SQS", "name": "X", "queue": "a", "table": "b"}, "at most one resource"),
])
def test_alarm_metric_shape(metric, message):
    data = {"metric": metric, "comparison": ">", "threshold": 1}
    assert message in error_of(Alarm, data)


def test_schedule_expression():
    send = {"queue": "imports", "message": {"job": "x"}}
    assert Schedule.model_validate({"cron": "0 2 * * ? *", "send": send}).expression == "cron(0 2 * * ? *)"
    assert Schedule.model_validate({"rate": "5 minutes", "send": send}).expression == "rate(5 minutes)"
    assert "exactly one" in error_of(Schedule, {"send": send})


@pytest.mark.parametrize("key", ["envctl:owner", "ENVCTL:x", "aws:cloudformation:stack", "AWS:x"])
def test_reserved_tag_prefixes_are_refused(key):
    data = {"project": "acme", "region": "eu-north-1", "tags": {key: "x"}}
    assert "prefixes are reserved" in error_of(EnvironmentSpec, data)


def test_ordinary_tag_keys_are_fine():
    data = {"project": "acme", "region": "eu-north-1", "tags": {"CostCenter": "4711", "team:owner": "x"}}
    assert EnvironmentSpec.model_validate(data).tags == {"CostCenter": "4711", "team:owner": "x"}


@pytest.mark.parametrize(("name", "ok"), [("work-units", True), ("a", True), ("q1", True), ("Work", False),
                                          ("-work", False), ("work-", False), ("work_units", False),
                                          ("w" * 48, True), ("w" * 49, False)])
def test_resource_names(name, ok):
    data = {"project": "acme", "region": "eu-north-1", "queues": {name: {}}}
    if ok:
        assert name in EnvironmentSpec.model_validate(data).queues
    else:
        with pytest.raises(ValidationError):
            EnvironmentSpec.model_validate(data)


def test_sections_are_the_resource_sections():
    assert models.SECTIONS == ("network", "security_groups", "roles", "instances", "applications", "databases",
                               "tables", "queues", "topics", "buckets", "functions", "log_groups", "alarms",
                               "schedules")


# ------------------------------------------------------------------ names and ${…} references

@pytest.mark.parametrize(("kind", "name", "problem"), [
    ("bucket", "acme-qa-uploads", None),
    ("bucket", "a" * 64, "over the limit of 63"),
    ("bucket", "Acme-qa", "is not allowed"),
    ("bucket", "10.0.0.1", "must not look like an IP address"),
    ("queue", "acme-qa-work.fifo", None),
    ("queue", "q" * 81, "over the limit of 80"),
    ("role", "r" * 65, "over the limit of 64"),
    ("function", "acme-qa-ingest", None),
    ("db_instance", "acme-qa--main", "is not allowed"),
    ("unknown-kind", "anything", None),
])
def test_physical_name_rules(kind, name, problem):
    if problem is None:
        assert names.check(kind, name) is None
    else:
        assert problem in names.check(kind, name)


def test_physical_names_are_project_environment_name():
    assert names.physical_name("acme", "qa", "work-units") == "acme-qa-work-units"


def test_references_parse_and_explain_mistakes():
    assert refs.find("url=${queues.work.url}&t=${topics.alarms.arn}") == ["queues.work.url", "topics.alarms.arn"]
    assert refs.parse("queues.work-units.url") == refs.SpecRef("queues", "work-units", "url")
    assert refs.parse("queues.work-units.url").text == "${queues.work-units.url}"
    with pytest.raises(ValueError, match="must have the form"):
        refs.parse("queues.work")
    with pytest.raises(ValueError, match="unknown section 'queue'"):
        refs.parse("queue.work.url")
    with pytest.raises(ValueError, match="a queue has no attribute 'endpoint'; one of url, arn, name"):
        refs.parse("queues.work.endpoint")


def test_every_referenceable_section_is_a_section_of_the_spec():
    assert set(refs.ATTRIBUTES) <= set(models.SECTIONS)
