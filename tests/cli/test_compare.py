"""envctl compare A B: how two environments' resolved specs differ, or (--live) their resources.

Exit codes as diff's: 0 identical, 2 differences, 1 error.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from envctl.cli.app import App, Options
from envctl.cli.compare import ADDED, CHANGED, REMOVED, Difference, differences, normalised
from envctl.cli.workflow import load_spec, observe

BASE = """\
project: acme
region: eu-north-1
account: "123456789012"
queues:
  work: {visibility_timeout_s: 60}
  imports: {}
topics:
  alarms:
    subscriptions:
      - {email: ops@example.com}
"""
QA = """\
extends: base.yaml
"""
PROD = """\
extends: base.yaml
account: "210987654321"
protected: true
queues:
  work: {visibility_timeout_s: 300}
topics:
  alarms:
    subscriptions:
      - {email: ops@example.com}
      - {email: oncall@example.com}
"""


@pytest.fixture
def specs(write_spec):
    write_spec("base.yaml", BASE)
    write_spec("qa.yaml", QA)
    write_spec("prod.yaml", PROD)
    return write_spec


# ------------------------------------------------------------------ specs

def test_compare_shows_where_the_specs_differ(envctl, specs):
    result = envctl("compare", "qa", "prod")

    assert result.code == 2, result.stderr
    assert result.stdout == (
        "acme/qa → acme/prod: 4 difference(s) in their specs\n"
        "  ~ account: 123456789012 → 210987654321\n"
        "  ~ protected: false → true\n"
        "  ~ queues.work.visibility_timeout_s: 60 → 300\n"
        '  + topics.alarms.subscriptions[1]: {"email": "oncall@example.com"} (only in acme/prod)\n')
    assert result.stderr == ""


def test_compare_json(envctl, specs):
    result = envctl("compare", "prod", "qa", "--json")

    assert result.code == 2
    document = json.loads(result.stdout)
    assert document["version"] == 1 and document["live"] is False
    assert document["a"] == {"project": "acme", "environment": "prod"}
    assert document["b"] == {"project": "acme", "environment": "qa"}
    assert document["differences"][2] == {"path": "queues.work.visibility_timeout_s", "change": "changed",
                                          "a": 300, "b": 60}
    assert document["differences"][3] == {
        "path": "topics.alarms.subscriptions[1]", "change": "removed",
        "a": {"email": "oncall@example.com", "sms": None, "queue": None, "function": None}, "b": None}


def test_the_same_spec_under_two_names_is_identical(aws, envctl, specs):
    result = envctl("compare", "qa", "pr-7", "--from-b", "qa")

    assert result.code == 0
    assert result.stdout == "The specs of acme/qa and acme/pr-7 are the same.\n"
    assert aws.log.snapshot() == []                              # specs alone: no AWS call


def test_defaults_count_as_written(envctl, specs, write_spec):
    # 30 is SQS's default visibility timeout: writing it changes nothing.
    write_spec("a.yaml", "extends: base.yaml\nqueues:\n  imports: {visibility_timeout_s: 30}\n")

    assert envctl("compare", "qa", "a").code == 0


def test_compare_an_unknown_environment(envctl, specs):
    result = envctl("compare", "qa", "staging")

    assert result.code == 1
    assert result.stderr.startswith("error: specs/staging.yaml: no spec for environment 'staging'")


def test_compare_an_invalid_spec(envctl, specs, write_spec):
    write_spec("bad.yaml", "extends: base.yaml\nqueues:\n  work: {delay_s: 901}\n")

    result = envctl("compare", "qa", "bad")

    assert result.code == 1
    assert result.stderr == ("error: specs/bad.yaml:3: queues.work.delay_s: "
                             "input should be less than or equal to 900\n")


@pytest.mark.parametrize("a,b,expected", [
    ({"x": 1}, {"x": 1}, []),
    ({"x": 1}, {"x": 2}, [Difference("x", CHANGED, 1, 2)]),
    ({"x": {"y": "a"}}, {"x": {"y": "b"}}, [Difference("x.y", CHANGED, "a", "b")]),
    ({"x": 1}, {}, [Difference("x", REMOVED, a=1)]),
    ({}, {"x": 1}, [Difference("x", ADDED, b=1)]),
    ({"l": [1, 2]}, {"l": [1, 3]}, [Difference("l[1]", CHANGED, 2, 3)]),
    ({"l": [{"k": 1}]}, {"l": [{"k": 2}]}, [Difference("l[0].k", CHANGED, 1, 2)]),
    ({"l": [1, 2]}, {"l": [2, 3, 4]}, [Difference("l[0]", REMOVED, a=1), Difference("l[1]", ADDED, b=3),
                                       Difference("l[2]", ADDED, b=4)]),
    ({"x": None}, {"x": {"y": 1}}, [Difference("x", CHANGED, None, {"y": 1})]),
])
def test_differences(a, b, expected):
    assert differences(a, b) == expected


# ------------------------------------------------------------------ live

@pytest.fixture
def twins(aws, envctl, specs):
    """qa and pr-7, built from the same spec."""
    for args in (["qa"], ["pr-7", "--from", "qa"]):
        result = envctl("create", *args, "--yes")
        assert result.code == 0, result.stdout + result.stderr
    aws.log.clear()


def test_two_environments_built_from_one_spec_are_the_same_live(aws, envctl, twins):
    result = envctl("compare", "qa", "pr-7", "--from-b", "qa", "--live")

    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout == "The live resources of acme/qa and acme/pr-7 are the same.\n"
    assert aws.log.mutating() == []


def test_a_change_made_by_hand_shows_as_exactly_that(aws, envctl, twins):
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="acme-pr-7-work")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99", "Policy": ""})
    sqs.tag_queue(QueueUrl=url, Tags={"Owner": "someone"})

    result = envctl("compare", "qa", "pr-7", "--from-b", "qa", "--live")

    assert result.code == 2
    assert result.stdout == ("acme/qa → acme/pr-7: 2 difference(s) in their live resources\n"
                             "  ~ queue/work.visibility_timeout: 60 → 99\n"
                             "  + queue/work.tags.Owner: someone (only in acme/pr-7)\n")


def test_a_resource_in_one_environment_only(aws, envctl, twins):
    sqs = aws.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"])

    result = envctl("compare", "qa", "pr-7", "--from-b", "qa", "--live", "--json")

    assert result.code == 2
    [difference] = json.loads(result.stdout)["differences"]
    assert (difference["path"], difference["change"], difference["a"]) == ("queue/imports", "added", None)
    assert difference["b"]["name"] == "<queue/imports.name>"     # its own name: the environment's taken out


def test_live_values_name_their_resources_not_their_ids(aws, envctl, write_spec):
    # A dead-letter queue is referenced by ARN; a role by path: both without the environment.
    write_spec("qa.yaml", """\
        project: acme
        region: eu-north-1
        queues:
          work: {dead_letter: {max_receives: 3}}
        roles:
          worker:
            assumed_by: lambda
            allow:
              - {queue: work, actions: [receive]}
        """)
    for args in (["qa"], ["pr-7", "--from", "qa"]):
        assert envctl("create", *args, "--yes").code == 0
    app = App(Options(specs=Path("specs")))
    _, _, observed = observe(app, load_spec(app, "pr-7", "qa"))

    view = normalised(observed, "acme", "pr-7", "123456789012")

    assert view["queue/work"]["redrive_policy"]["dead_letter_target_arn"] == "<queue/work-dlq.arn>"
    assert view["queue/work-dlq"]["name"] == "<queue/work-dlq.name>"
    assert view["role/worker"]["path"] == "/envctl/acme/<env>/"
    assert "<queue/work.arn>" in json.dumps(view["role/worker"])
    assert "pr-7" not in json.dumps(view) and "123456789012" not in json.dumps(view)


def test_live_compare_needs_both_environments_reachable(aws, envctl, specs):
    # prod pins another account than the credentials': the account guard stops it.
    result = envctl("compare", "qa", "prod", "--live")

    assert result.code == 1
    assert "the credentials belong to account 123456789012, but the spec pins account 210987654321" in result.stderr
