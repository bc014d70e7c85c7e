"""`create --json` and `destroy --json` (issue 8): stdout holds one JSON document (version 1)
saying what happened to each resource, printed even when a resource failed; people's output
goes to stderr; --json never asks. Ids are checked against what plain boto3 reads back."""
from __future__ import annotations

import json

import pytest

from tests.cli.test_create import stop_after

SPEC = """\
project: acme
region: eu-north-1
account: "123456789012"
queues:
  work-units: {}
  imports: {}
topics:
  alarms: {}
schedules:
  nightly-import:
    cron: "0 2 * * ? *"
    send:
      queue: imports
      message: {job: import-partner-files}
"""
ADDRESSES = ["queue/work-units", "queue/imports", "topic/alarms", "schedule/nightly-import"]
STATES = ("created", "updated", "replaced", "deleted", "unchanged", "failed", "skipped", "not started")
NEVER_PROMPTS = "error: --json never prompts: pass --yes to go ahead\n"


@pytest.fixture
def qa(write_spec):
    return write_spec("qa.yaml", SPEC)


def live_ids(aws) -> dict[str, str]:
    """address → id of what AWS holds for acme/qa, read with plain boto3 (queue: URL, topic: ARN,
    schedule: rule name)."""
    sqs, sns, events = aws.client("sqs"), aws.client("sns"), aws.client("events")
    ids = {}
    for url in sqs.list_queues(QueueNamePrefix="acme-qa-").get("QueueUrls", []):
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if tags.get("envctl:environment") == "qa":
            ids[tags["envctl:resource"]] = url
    for topic in sns.list_topics()["Topics"]:
        tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=topic["TopicArn"])["Tags"]}
        if tags.get("envctl:environment") == "qa":
            ids[tags["envctl:resource"]] = topic["TopicArn"]
    for rule in events.list_rules(NamePrefix="acme-qa-")["Rules"]:
        ids["schedule/" + rule["Name"].removeprefix("acme-qa-")] = rule["Name"]
    return ids


def counts(**nonzero: int) -> dict[str, int]:
    return {state: nonzero.get(state.replace(" ", "_"), 0) for state in STATES}


def by_address(document: dict) -> dict[str, dict]:
    return {r["address"]: r for r in document["resources"]}


# ------------------------------------------------------------------ create

def test_create_json_says_what_was_made_with_the_ids_aws_has(aws, envctl, qa):
    planned = json.loads(envctl("diff", "qa", "--json").stdout)

    result = envctl("create", "qa", "--yes", "--json")

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)                     # stdout: the document and nothing else
    ids = live_ids(aws)
    assert sorted(ids) == sorted(ADDRESSES)
    assert list(document) == ["version", "command", "project", "environment", "region", "account", "ok",
                              "interrupted", "elapsed_s", "plan", "resources", "counts", "expires"]
    assert {k: document[k] for k in ("version", "command", "project", "environment", "region", "account", "ok",
                                     "interrupted", "expires")} == {
        "version": 1, "command": "create", "project": "acme", "environment": "qa", "region": "eu-north-1",
        "account": "123456789012", "ok": True, "interrupted": False, "expires": None}
    assert isinstance(document["elapsed_s"], float) and document["elapsed_s"] >= 0
    assert document["plan"] == planned                       # the plan diff showed is the plan that ran
    assert [(r["address"], r["action"], r["state"], r["id"], r["error"]) for r in document["resources"]] == [
        (c["address"], "create", "created", ids[c["address"]], None) for c in planned["changes"]]
    assert all(isinstance(r["seconds"], float) for r in document["resources"])
    assert document["counts"] == counts(created=4)
    # People's output went to stderr.
    assert "+ queue/imports" in result.stderr and "Done: 4 created" in result.stderr


def test_a_second_create_json_changes_nothing_and_lists_every_resource_unchanged(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    ids = live_ids(aws)
    aws.log.clear()

    result = envctl("create", "qa", "--json")     # nothing to apply: nothing to ask, no --yes needed

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["elapsed_s"] == 0.0
    assert document["plan"]["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "noop": 4,
                                           "orphan": 0}
    assert {r["address"]: (r["action"], r["state"], r["id"], r["error"]) for r in document["resources"]} == {
        a: ("noop", "unchanged", ids[a], None) for a in ADDRESSES}
    assert document["counts"] == counts(unchanged=4)
    assert "No changes. acme/qa matches the spec (4 resources)." in result.stderr
    assert aws.log.mutating() == []


def test_create_json_with_a_ttl_gives_the_expiry(aws, envctl, qa):
    result = envctl("create", "qa", "--yes", "--json", "--ttl", "2h")

    assert result.code == 0, result.stderr
    expires = json.loads(result.stdout)["expires"]
    url = live_ids(aws)["queue/imports"]
    assert aws.client("sqs").list_queue_tags(QueueUrl=url)["Tags"]["envctl:expires"] == expires


def test_a_failed_resource_is_in_the_document_and_exit_is_1(aws, envctl, qa):
    sqs = aws.client("sqs")
    foreign = sqs.create_queue(QueueName="acme-qa-imports")["QueueUrl"]       # not envctl's: NotOurs

    result = envctl("create", "qa", "--yes", "--json")

    assert result.code == 1
    assert result.clean
    document = json.loads(result.stdout)
    assert (document["ok"], document["interrupted"]) == (False, False)
    resources = by_address(document)
    assert resources["queue/imports"] | {"seconds": 0} == {
        "address": "queue/imports", "action": "create", "state": "failed", "id": None, "seconds": 0,
        "error": "creating queue (queue/imports): SQS queue acme-qa-imports already exists and is not managed "
                 "by envctl for this environment; rename it in the spec or remove the existing one"}
    assert (resources["schedule/nightly-import"]["state"], resources["schedule/nightly-import"]["error"]) == (
        "skipped", "waits for queue/imports, which failed")
    ids = live_ids(aws)
    assert {a: (r["state"], r["id"]) for a, r in resources.items() if r["state"] == "created"} == {
        "queue/work-units": ("created", ids["queue/work-units"]), "topic/alarms": ("created", ids["topic/alarms"])}
    assert document["counts"] == counts(created=2, failed=1, skipped=1)
    assert result.stderr.endswith("error: not every change to acme/qa was made (see above); once the cause is "
                                  "fixed, run create again to finish\n")
    assert sqs.list_queue_tags(QueueUrl=foreign).get("Tags", {}) == {}


def test_an_interrupted_create_says_what_was_not_started(aws, envctl, qa, monkeypatch):
    stop_after(1, monkeypatch)                   # as the first Ctrl-C: no new work once one is done

    result = envctl("create", "qa", "--yes", "--json", "--parallelism", "1")

    assert result.code == 1
    document = json.loads(result.stdout)
    assert (document["ok"], document["interrupted"]) == (False, True)
    states = [r["state"] for r in document["resources"]]
    assert states[0] == "created" and set(states[1:]) == {"not started"}
    assert {r["error"] for r in document["resources"][1:]} == {"stopped before it started"}
    assert document["counts"] == counts(created=1, not_started=3)
    assert sorted(live_ids(aws)) == [document["resources"][0]["address"]]


def test_json_never_prompts_without_yes_it_refuses_and_changes_nothing(aws, envctl, qa):
    result = envctl("--interactive", "create", "qa", "--json", input="y\n")    # even on a terminal

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.endswith("\n" + NEVER_PROMPTS)
    assert "Plan: 4 to create" in result.stderr                                  # the plan, then the refusal
    assert aws.log.mutating() == []
    assert live_ids(aws) == {}


@pytest.mark.parametrize("command", ["create", "destroy"])
def test_errors_before_a_plan_are_one_sentence_and_stdout_stays_empty(aws, envctl, write_spec, command):
    write_spec("prod.yaml", SPEC.replace("123456789012", "210987654321"))

    result = envctl(command, "prod", "--yes", "--json")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == ("error: the credentials belong to account 123456789012, but the spec pins account "
                             "210987654321 at specs/prod.yaml:3; use credentials for 210987654321 (--profile) or change the "
                             "spec's account:\n")


def test_a_bad_spec_is_one_sentence_and_stdout_stays_empty(aws, envctl, write_spec):
    write_spec("qa.yaml", "project: acme\nregion: eu-north-1\nqueues:\n  work: {delay_s: 901}\n")

    result = envctl("create", "qa", "--yes", "--json")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: specs/qa.yaml:4: queues.work.delay_s: input should be less than or equal to 900\n"
    assert aws.log.snapshot() == []


# ------------------------------------------------------------------ destroy

def test_destroy_json_says_what_was_deleted_and_that_nothing_is_left(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    ids = live_ids(aws)

    result = envctl("destroy", "qa", "--yes", "--json")

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["version", "command", "project", "environment", "region", "account", "ok",
                              "interrupted", "elapsed_s", "plan", "resources", "counts", "left"]
    assert {k: document[k] for k in ("version", "command", "project", "environment", "ok", "left")} == {
        "version": 1, "command": "destroy", "project": "acme", "environment": "qa", "ok": True, "left": []}
    assert {r["address"]: (r["action"], r["state"], r["id"], r["error"]) for r in document["resources"]} == {
        a: ("delete", "deleted", ids[a], None) for a in ADDRESSES}
    assert document["plan"]["summary"]["delete"] == 4
    assert document["counts"] == counts(deleted=4)
    assert "0 resources left in acme/qa." in result.stderr
    assert live_ids(aws) == {}


def test_destroy_json_of_an_empty_environment(aws, envctl, qa):
    result = envctl("destroy", "qa", "--yes", "--json")

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["ok"], document["resources"], document["left"], document["counts"]) == (
        True, [], [], counts())
    assert document["plan"]["changes"] == []
    assert result.stderr == "Nothing to destroy: acme/qa has no resources.\n"


def test_destroy_json_names_what_is_left(aws, envctl, write_spec):
    write_spec("qa.yaml", SPEC + "tables:\n  t: {partition_key: id, deletion_protection: true}\n")
    assert envctl("create", "qa", "--yes").code == 0

    result = envctl("destroy", "qa", "--yes", "--json")        # deletion protection: needs --force

    assert result.code == 1
    assert result.clean
    document = json.loads(result.stdout)
    assert document["ok"] is False
    table = by_address(document)["table/t"]
    assert (table["state"], table["id"]) == ("failed", "acme-qa-t")
    assert "has deletion protection on" in table["error"]
    assert document["left"] == [{"address": "table/t", "id": "acme-qa-t"}]
    assert "acme-qa-t" in aws.client("dynamodb").list_tables()["TableNames"]
    assert document["counts"] == counts(deleted=4, failed=1)


def test_destroy_json_never_prompts(aws, envctl, qa):
    assert envctl("create", "qa", "--yes").code == 0
    aws.log.clear()

    result = envctl("--interactive", "destroy", "qa", "--json", input="qa\n")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.endswith("\n" + NEVER_PROMPTS)
    assert aws.log.mutating() == []
