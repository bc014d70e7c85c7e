"""Environments with a lifetime (issue 8): `ttl:` or `create --ttl` puts envctl:expires on every
resource, each create renews it, `list` shows it, and `envctl reap` destroys what has expired,
through destroy's own code, never a protected environment.

The clock is `envctl.cli.workflow.utc_now`: tests move it instead of waiting.
"""
from __future__ import annotations

import datetime
import json

import pytest

from envctl.cli.reap import parse_time
from tests.cli.conftest import QUEUE_AND_TOPIC

T0 = datetime.datetime(2030, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)

BASE = QUEUE_AND_TOPIC
NOT_INTERACTIVE = ("error: not running on a terminal (or CI is set), so envctl will not prompt: "
                   "pass --yes to go ahead\n")


@pytest.fixture
def clock(monkeypatch):
    """clock.now = …: the time create and reap see."""

    class Clock:
        now = T0

    monkeypatch.setattr("envctl.cli.workflow.utc_now", lambda: Clock.now)
    return Clock


@pytest.fixture
def specs(write_spec):
    write_spec("base.yaml", BASE)
    write_spec("preview.yaml", "extends: base.yaml\nttl: 3d\n")
    write_spec("qa.yaml", "extends: base.yaml\n")
    write_spec("safe.yaml", "extends: base.yaml\nprotected: true\n")
    return write_spec


def live(aws, environment: str) -> dict[str, dict[str, str]]:
    """address → tags of the environment's queues and topics, read with plain boto3."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    found = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if tags.get("envctl:environment") == environment:
            found[tags["envctl:resource"]] = tags
    for topic in sns.list_topics()["Topics"]:
        tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=topic["TopicArn"])["Tags"]}
        if tags.get("envctl:environment") == environment:
            found[tags["envctl:resource"]] = tags
    return found


def expiries(aws, environment: str) -> dict[str, str | None]:
    return {a: tags.get("envctl:expires") for a, tags in live(aws, environment).items()}


def create(envctl, *args: str):
    result = envctl("create", *args, "--yes")
    assert result.code == 0, result.stdout + result.stderr
    return result


# ------------------------------------------------------------------ the expiry tag

def test_create_with_a_ttl_tags_every_resource_with_its_expiry(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "8h")

    assert expiries(aws, "pr-1") == {"queue/work": "2030-05-01T20:00Z", "topic/alarms": "2030-05-01T20:00Z"}
    tags = live(aws, "pr-1")["queue/work"]
    assert tags["envctl:created"]                                  # the executor's own, kept
    assert tags["envctl:resource"] == "queue/work"
    assert "envctl:protected" not in tags


def test_the_specs_ttl_is_the_default(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview")                    # preview.yaml: ttl: 3d

    assert set(expiries(aws, "pr-1").values()) == {"2030-05-04T12:00Z"}


def test_without_a_ttl_there_is_no_expiry(aws, envctl, specs, clock):
    create(envctl, "qa")

    assert expiries(aws, "qa") == {"queue/work": None, "topic/alarms": None}


def test_each_create_renews_the_expiry_with_tags_alone_and_diff_stays_empty(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0 + 5 * HOUR
    aws.log.clear()

    result = create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")

    assert "No changes. acme/pr-1 matches the spec (2 resources).\n" in result.stdout
    assert result.stdout.endswith("Renewed the expiry of 2 resource(s) of acme/pr-1 to 2030-05-02T17:00Z.\n")
    assert set(expiries(aws, "pr-1").values()) == {"2030-05-02T17:00Z"}
    # Tags alone (and the environment's lock, a DynamoDB item, around them).
    assert sorted({c.action for c in aws.log.mutating() if c.service != "dynamodb"}) == ["TagQueue", "TagResource"]
    assert {c.action for c in aws.log.mutating() if c.service == "dynamodb"} <= {"PutItem", "DeleteItem",
                                                                                  "CreateTable", "UpdateItem"}
    assert envctl("diff", "pr-1", "--from", "preview").code == 0


def test_renewal_keeps_the_user_tags_and_the_creation_time(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    created = live(aws, "pr-1")["queue/work"]["envctl:created"]
    clock.now = T0 + DAY

    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")

    tags = live(aws, "pr-1")["queue/work"]
    assert tags == {"envctl:project": "acme", "envctl:environment": "pr-1", "envctl:resource": "queue/work",
                    "envctl:created": created, "envctl:expires": "2030-05-03T12:00Z"}


def test_an_update_carries_the_new_expiry_and_keeps_the_creation_time(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="acme-pr-1-work")["QueueUrl"]
    created = sqs.list_queue_tags(QueueUrl=url)["Tags"]["envctl:created"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99"})     # drift: an UPDATE
    clock.now = T0 + DAY

    result = create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")

    assert "Done: 1 updated, 1 unchanged" in result.stdout
    assert "Renewed the expiry of 1 resource(s) of acme/pr-1 to 2030-05-03T12:00Z." in result.stdout
    tags = sqs.list_queue_tags(QueueUrl=url)["Tags"]
    assert (tags["envctl:expires"], tags["envctl:created"]) == ("2030-05-03T12:00Z", created)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "30"}


def test_a_create_without_a_ttl_takes_the_expiry_off(aws, envctl, write_spec, specs, clock):
    # The spec (and the command line) are the truth: no ttl, no expiry; reap leaves it alone.
    write_spec("plain.yaml", "extends: base.yaml\n")
    create(envctl, "pr-1", "--from", "plain", "--ttl", "1d")
    clock.now = T0 + HOUR

    result = create(envctl, "pr-1", "--from", "plain")

    assert "Renewed" not in result.stdout
    assert "Removed the expiry (envctl:expires) of 2 resource(s) of acme/pr-1: it has no ttl now." in result.stdout
    assert expiries(aws, "pr-1") == {"queue/work": None, "topic/alarms": None}


def test_list_shows_the_expiry(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "2h")
    create(envctl, "qa")

    result = envctl("list", "--json")

    assert result.code == 0
    assert [(e["environment"], e["expires"]) for e in json.loads(result.stdout)["environments"]] == [
        ("pr-1", "2030-05-01T14:00Z"), ("qa", None)]
    text = envctl("list").stdout.splitlines()
    assert text[0].split() == ["PROJECT", "ENVIRONMENT", "RESOURCES", "CREATED", "EXPIRES"]
    assert text[1].split()[:3] == ["acme", "pr-1", "2"] and text[1].endswith("2030-05-01T14:00Z")


def test_a_protected_environment_cannot_have_a_ttl(aws, envctl, specs, clock):
    result = envctl("create", "safe", "--ttl", "1d", "--yes")

    assert result.code == 1
    assert result.stderr == "error: acme/safe is protected: a protected environment cannot have a ttl\n"
    assert aws.log.mutating() == []


def test_a_bad_ttl_is_refused_before_anything_happens(aws, envctl, specs):
    result = envctl("create", "pr-1", "--from", "preview", "--ttl", "3 days", "--yes")

    assert result.code == 1
    assert "Invalid value for '--ttl': '3 days' is not a lifetime: write <n>m, <n>h, <n>d or <n>w" in result.stderr
    assert aws.log.snapshot() == []


def test_a_protected_environment_carries_the_protected_tag(aws, envctl, specs, clock):
    create(envctl, "safe")

    assert {a: t.get("envctl:protected") for a, t in live(aws, "safe").items()} == {
        "queue/work": "true", "topic/alarms": "true"}


# ------------------------------------------------------------------ reap

def test_reap_destroys_the_expired_environments_and_nothing_else(aws, envctl, specs, clock):
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")     # expired a day ago
    clock.now = T0
    create(envctl, "pr-2", "--from", "preview", "--ttl", "1d")     # expires tomorrow
    create(envctl, "qa")                                           # no lifetime
    foreign = aws.client("sqs").create_queue(QueueName="acme-pr-1-notes", tags={"team": "other"})["QueueUrl"]

    result = envctl("reap", "--yes")

    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        "Expired environments in eu-north-1 (account 123456789012), now 2030-05-01T12:00Z:\n"
        "PROJECT  ENVIRONMENT  RESOURCES  EXPIRED            ACTION\n"
        "acme     pr-1         2          2030-04-30T12:00Z  would destroy\n")
    assert "Plan: 2 to destroy." in result.stdout                  # destroy's own output
    assert "0 resources left in acme/pr-1." in result.stdout
    assert result.stdout.endswith("Reap: 1 destroyed.\n")
    assert live(aws, "pr-1") == {}
    assert set(live(aws, "pr-2")) == set(live(aws, "qa")) == {"queue/work", "topic/alarms"}
    assert aws.client("sqs").list_queue_tags(QueueUrl=foreign)["Tags"] == {"team": "other"}


def test_reap_dry_run_changes_nothing_and_json_says_what_it_would_do(aws, envctl, specs, clock):
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0
    aws.log.clear()

    result = envctl("reap", "--dry-run", "--json")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "version": 1, "region": "eu-north-1", "account": "123456789012", "now": "2030-05-01T12:00Z",
        "dry_run": True, "environments": [
            {"project": "acme", "environment": "pr-1", "resources": 2, "expires": "2030-04-30T12:00Z",
             "action": "would destroy", "reason": None}]}
    assert aws.log.mutating() == []
    assert set(live(aws, "pr-1")) == {"queue/work", "topic/alarms"}


def test_reap_json_reports_what_it_destroyed_with_progress_on_stderr(aws, envctl, specs, clock):
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0

    result = envctl("reap", "--yes", "--json")

    assert result.code == 0, result.stderr
    [entry] = json.loads(result.stdout)["environments"]
    assert (entry["environment"], entry["action"]) == ("pr-1", "destroyed")
    assert "0 resources left in acme/pr-1." in result.stderr
    assert live(aws, "pr-1") == {}


def test_reap_with_nothing_expired(aws, envctl, specs, clock):
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    aws.log.clear()

    result = envctl("reap", "--yes")

    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == "No expired environments in eu-north-1 (account 123456789012).\n"
    assert aws.log.mutating() == []


def test_reap_needs_yes_off_a_terminal(aws, envctl, specs, clock):
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0
    aws.log.clear()

    result = envctl("reap")

    assert (result.code, result.stderr) == (1, NOT_INTERACTIVE)
    assert "acme     pr-1         2          2030-04-30T12:00Z  would destroy" in result.stdout
    assert aws.log.mutating() == []


def test_reap_json_never_prompts_even_on_a_terminal(aws, envctl, specs, clock):
    # A prompt would land on stdout, in the middle of the JSON: --json needs --yes instead.
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0
    aws.log.clear()

    result = envctl("--interactive", "reap", "--json", input="y\n")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: --json never prompts: pass --yes to go ahead\n"
    assert aws.log.mutating() == []


def _hand_expire(aws, environment: str, when: str = "2030-04-01T00:00Z") -> None:
    """Someone adds an expiry to an environment's queue by hand."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=f"acme-{environment}-work")["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"envctl:expires": when})


def test_reap_refuses_a_protected_environment_with_a_hand_made_expiry(aws, envctl, specs, clock):
    create(envctl, "safe")
    _hand_expire(aws, "safe")
    aws.log.clear()

    result = envctl("reap", "--yes")

    assert result.code == 1
    assert "acme     safe         2          2030-04-01T00:00Z  refused: protected: its spec specs/safe.yaml " \
           "says so" in result.stdout
    assert result.stdout.endswith("Reap: 1 refused.\n")
    assert aws.log.mutating() == []
    assert set(live(aws, "safe")) == {"queue/work", "topic/alarms"}


def test_reap_refuses_an_environment_whose_tags_say_protected_when_its_spec_is_gone(
        aws, envctl, specs, clock, workdir):
    create(envctl, "safe")
    _hand_expire(aws, "safe")
    (workdir / "specs" / "safe.yaml").unlink()
    aws.log.clear()

    result = envctl("reap", "--yes", "--json")

    assert result.code == 1
    [entry] = json.loads(result.stdout)["environments"]
    assert (entry["action"], entry["reason"]) == ("refused", "protected: queue/work is tagged envctl:protected")
    assert aws.log.mutating() == []


def test_reap_refuses_an_environment_with_deletion_protection(aws, envctl, specs, write_spec, clock):
    write_spec("keep.yaml", "extends: base.yaml\ntables:\n  t: {partition_key: id, deletion_protection: true}\n")
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "keep", "--ttl", "1d")
    clock.now = T0
    aws.log.clear()

    result = envctl("reap", "--yes", "--json")

    assert result.code == 1
    [entry] = json.loads(result.stdout)["environments"]
    assert (entry["action"], entry["reason"]) == ("refused", "protected: table/t has deletion protection on")
    assert aws.log.mutating() == []


def test_reap_goes_on_after_a_refusal(aws, envctl, specs, clock):
    create(envctl, "safe")
    _hand_expire(aws, "safe")
    clock.now = T0 - 2 * DAY
    create(envctl, "pr-1", "--from", "preview", "--ttl", "1d")
    clock.now = T0

    result = envctl("reap", "--yes", "--json")

    assert result.code == 1
    assert [(e["environment"], e["action"]) for e in json.loads(result.stdout)["environments"]] == [
        ("pr-1", "destroyed"), ("safe", "refused")]
    assert live(aws, "pr-1") == {}


def test_an_unreadable_expiry_is_left_alone(aws, envctl, specs, clock):
    create(envctl, "qa")
    _hand_expire(aws, "qa", when="next tuesday")
    aws.log.clear()

    result = envctl("reap", "--yes")

    assert result.code == 0
    assert result.stderr == "warning: acme/qa: unreadable envctl:expires 'next tuesday'; left alone\n"
    assert aws.log.mutating() == []


@pytest.mark.parametrize("text,expected", [
    ("2030-05-01T12:00Z", T0),
    ("2030-05-01T12:00:00+00:00", T0),
    ("2030-05-01T14:00+02:00", T0),
    ("2030-05-01T12:00", T0),
    ("tomorrow", None),
    ("", None),
])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


# ------------------------------------------------------------------ destroy knows the tag too

def test_destroy_from_tags_alone_refuses_an_environment_tagged_protected(aws, envctl, specs, clock, workdir):
    create(envctl, "safe")
    (workdir / "specs" / "safe.yaml").unlink()
    aws.log.clear()

    result = envctl("destroy", "safe", "--project", "acme", "--yes")

    assert result.code == 1
    assert result.stderr == "error: acme/safe is protected: destroy needs --force (nothing was deleted)\n"
    assert aws.log.mutating() == []
    assert envctl("destroy", "safe", "--project", "acme", "--yes", "--force").code == 0
    assert live(aws, "safe") == {}
