"""DynamoDB tables: expansion, the lifecycle against moto server, adoption, protection, waits."""
from __future__ import annotations

import pytest
from botocore.stub import Stubber

from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from envctl.provisioners.table import Table, TableDeletionProtected
from tests.provisioners.harness import (StubCtx, changed_values, create_all, delete_all, diff_all, discover,
                                        graph_from_yaml, make_ctx, offline_client, tagged_arns)

SESSIONS = Address("table", "sessions")

SPEC = """\
tags: {CostCenter: "4711"}
tables:
  sessions:
    partition_key: id
    sort_key: {name: created_at, type: N}
    ttl_attribute: expires_at
"""


# ------------------------------------------------------------------ expansion

def test_expand_maps_spec_to_aws_shape(tmp_path):
    graph = graph_from_yaml(tmp_path, """\
        tables:
          events:
            partition_key: {name: pk, type: B}
            billing: provisioned
            read_capacity: 5
            write_capacity: 2
            point_in_time_recovery: true
        """)
    p = graph[Address("table", "events")].props
    assert graph[Address("table", "events")].physical_name == "acme-qa-events" == p.name
    assert (p.partition_key.name, p.partition_key.type, p.sort_key) == ("pk", "B", None)
    assert (p.billing_mode, p.read_capacity, p.write_capacity) == ("PROVISIONED", 5, 2)
    assert p.point_in_time_recovery is True and p.ttl_attribute is None
    assert p.encryption == "KMS"                       # secure by default: AWS managed key
    assert p.deletion_protection is False              # not a protected environment


@pytest.mark.parametrize("protected,given,expected", [
    (True, None, True), (True, False, False), (False, None, False), (False, True, True)])
def test_deletion_protection_follows_protected_environment(tmp_path, protected, given, expected):
    line = "" if given is None else f"\n    deletion_protection: {str(given).lower()}"
    spec = f"protected: {str(protected).lower()}\ntables:\n  t:\n    partition_key: id{line}\n"
    graph = graph_from_yaml(tmp_path, spec)
    assert graph[Address("table", "t")].props.deletion_protection is expected


# ------------------------------------------------------------------ lifecycle

def test_lifecycle(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    ddb = aws.client("dynamodb")

    # 1. Read back with plain boto3: every attribute, the tags, the security defaults.
    t = ddb.describe_table(TableName="acme-qa-sessions")["Table"]
    assert t["TableStatus"] == "ACTIVE"
    assert t["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"},
                              {"AttributeName": "created_at", "KeyType": "RANGE"}]
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in t["AttributeDefinitions"]) == [
        ("created_at", "N"), ("id", "S")]
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert (t["SSEDescription"]["Status"], t["SSEDescription"]["SSEType"]) == ("ENABLED", "KMS")
    assert t["DeletionProtectionEnabled"] is False
    ttl = ddb.describe_time_to_live(TableName="acme-qa-sessions")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    pitr = ddb.describe_continuous_backups(TableName="acme-qa-sessions")["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    tags = {x["Key"]: x["Value"] for x in ddb.list_tags_of_resource(ResourceArn=t["TableArn"])["Tags"]}
    assert tags == {"envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "table/sessions",
                    "CostCenter": "4711"}
    assert by_kind("table").outputs(created[SESSIONS]) == {
        "name": "acme-qa-sessions", "arn": t["TableArn"], "stream_arn": ""}

    # 2. Discover finds it, the diff is empty, and nothing was written to find that out.
    aws.log.clear()
    found = discover(ctx, ["table"])
    assert list(found) == [SESSIONS]
    assert diff_all(graph, found) == {}
    assert aws.log.mutating() == []

    # 3. A change by hand shows as exactly that field …
    ddb.update_continuous_backups(TableName="acme-qa-sessions",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    found = discover(ctx, ["table"])
    assert changed_values(graph, found, SESSIONS) == {"point_in_time_recovery": (True, False)}

    # 4. … and update repairs it.
    changes = diff_all(graph, found)[SESSIONS]
    by_kind("table").update(ctx, found[SESSIONS], graph[SESSIONS], changes)
    pitr = ddb.describe_continuous_backups(TableName="acme-qa-sessions")["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    assert diff_all(graph, discover(ctx, ["table"])) == {}

    # 5. Deleted out of band: discovery no longer finds it, and the diff says create.
    ddb.delete_table(TableName="acme-qa-sessions")
    found = discover(ctx, ["table"])
    assert found == {}
    assert diff_all(graph, found) == {SESSIONS: None}

    # 6. Destroy leaves nothing tagged; an untagged and a foreign-tagged table are untouched.
    ddb.create_table(TableName="acme-qa-sessions-copy", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.create_table(TableName="acme-staging-sessions", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     Tags=[{"Key": "envctl:project", "Value": "acme"},
                           {"Key": "envctl:environment", "Value": "staging"},
                           {"Key": "envctl:resource", "Value": "table/sessions"}])
    create_all(ctx, graph)
    delete_all(ctx, discover(ctx, ["table"]), graph)
    assert tagged_arns(aws, ["dynamodb"]) == []
    assert sorted(ddb.list_tables()["TableNames"]) == ["acme-qa-sessions-copy", "acme-staging-sessions"]


def test_provisioned_billing_round_trip_and_drift(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, """\
        tables:
          counters:
            partition_key: id
            billing: provisioned
            read_capacity: 2
            write_capacity: 3
        """)
    address = Address("table", "counters")
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    ddb = aws.client("dynamodb")
    t = ddb.describe_table(TableName="acme-qa-counters")["Table"]
    assert t["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert (t["ProvisionedThroughput"]["ReadCapacityUnits"], t["ProvisionedThroughput"]["WriteCapacityUnits"]) == (2, 3)
    assert diff_all(graph, discover(ctx, ["table"])) == {}

    ddb.update_table(TableName="acme-qa-counters", ProvisionedThroughput={"ReadCapacityUnits": 7,
                                                                         "WriteCapacityUnits": 3})
    found = discover(ctx, ["table"])
    assert changed_values(graph, found, address) == {"read_capacity": (7, 2)}
    by_kind("table").update(ctx, found[address], graph[address], diff_all(graph, found)[address])
    assert ddb.describe_table(TableName="acme-qa-counters")["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 2
    assert diff_all(graph, discover(ctx, ["table"])) == {}


def test_ttl_attribute_change_disables_the_old_one_first(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    ddb = aws.client("dynamodb")
    ddb.update_time_to_live(TableName="acme-qa-sessions",
                            TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"})
    ddb.update_time_to_live(TableName="acme-qa-sessions",
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "valid_until"})
    found = discover(ctx, ["table"])
    assert changed_values(graph, found, SESSIONS) == {"ttl_attribute": ("valid_until", "expires_at")}

    aws.log.clear()
    by_kind("table").update(ctx, found[SESSIONS], graph[SESSIONS], diff_all(graph, found)[SESSIONS])
    # AWS refuses to switch the TTL attribute in one step (moto does not): disable, then enable.
    assert [c.action for c in aws.log.mutating()] == ["UpdateTimeToLive", "UpdateTimeToLive"]
    ttl = ddb.describe_time_to_live(TableName="acme-qa-sessions")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_encryption_drift_is_seen_and_repaired_by_update_table(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    node = graph[SESSIONS]
    ctx = make_ctx(aws)
    ddb = aws.client("dynamodb")
    # A table of ours left on the AWS owned key (AWS's default). moto cannot switch a live table's
    # encryption, so the drift starts at creation and the repair is checked by the call it makes.
    ddb.create_table(TableName="acme-qa-sessions", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"},
                                                              {"AttributeName": "created_at", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                           {"AttributeName": "created_at", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST", Tags=[{"Key": k, "Value": v} for k, v in node.tags.items()])
    ddb.update_time_to_live(TableName="acme-qa-sessions",
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    found = discover(ctx, ["table"])
    assert changed_values(graph, found, SESSIONS) == {"encryption": ("AWS_OWNED", "KMS")}

    aws.log.clear()
    by_kind("table").update(ctx, found[SESSIONS], node, diff_all(graph, found)[SESSIONS])
    assert [c.action for c in aws.log.mutating()] == ["UpdateTable"]


def test_create_and_read_back_make_each_call_once(aws, tmp_path):
    # CreateTable answers ACTIVE on moto: no describe before the TTL; the describe that finds
    # the table ACTIVE after it is also the read's.
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    table = by_kind("table")
    aws.log.clear()
    observed = table.wait(ctx, table.create(ctx, graph[SESSIONS]), "ready")
    assert [c.action for c in aws.log.snapshot()] == ["CreateTable", "UpdateTimeToLive", "DescribeTable",
                                                      "DescribeTimeToLive", "DescribeContinuousBackups",
                                                      "ListTagsOfResource"]
    assert observed.props.ttl_attribute == "expires_at" and table.diff(graph[SESSIONS].props, observed) == []


def test_create_adopts_our_existing_table(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    aws.log.clear()
    assert by_kind("table").create(ctx, graph[SESSIONS]) == "acme-qa-sessions"
    # Created first: the taken name is refused (nothing changes), then the table is adopted.
    assert [(c.action, c.status) for c in aws.log.mutating()] == [("CreateTable", 400)]
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["acme-qa-sessions"]


def test_create_refuses_a_table_that_is_not_ours(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ddb = aws.client("dynamodb")
    ddb.create_table(TableName="acme-qa-sessions", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    aws.log.clear()
    with pytest.raises(NotOurs, match="DynamoDB table acme-qa-sessions already exists"):
        by_kind("table").create(make_ctx(aws), graph[SESSIONS])
    assert [(c.action, c.status) for c in aws.log.mutating()] == [("CreateTable", 400)]
    arn = ddb.describe_table(TableName="acme-qa-sessions")["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []


def test_delete_refuses_a_protected_table(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "protected: true\n" + SPEC)
    ctx = make_ctx(aws)
    create_all(ctx, graph)
    ddb = aws.client("dynamodb")
    assert ddb.describe_table(TableName="acme-qa-sessions")["Table"]["DeletionProtectionEnabled"] is True
    found = discover(ctx, ["table"])
    with pytest.raises(TableDeletionProtected, match="deletion protection on"):
        by_kind("table").delete(ctx, found[SESSIONS])
    assert ddb.list_tables()["TableNames"] == ["acme-qa-sessions"]


def test_delete_of_a_missing_table_succeeds(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    obs = create_all(ctx, graph)[SESSIONS]
    aws.client("dynamodb").delete_table(TableName="acme-qa-sessions")
    by_kind("table").delete(ctx, obs)
    assert by_kind("table").wait(ctx, obs.id, "gone") is None
    assert by_kind("table").read(ctx, obs.id) is None


# ------------------------------------------------------------------ waits
# moto's tables are ACTIVE at once (MOTO-NOTES §7): the polling path is driven with a Stubber.

@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setattr(Table, "poll_interval", 0)
    client = offline_client("dynamodb")
    return client, Stubber(client)


def _table(status, sse=None):
    table = {"TableName": "tbl", "TableStatus": status, "TableArn": "arn:aws:dynamodb:eu-north-1:1:table/tbl"}
    if sse:
        table["SSEDescription"] = {"Status": sse, "SSEType": "KMS"}
    return {"Table": table}


def test_wait_active_polls_until_active_and_encryption_settled(stubbed):
    client, stub = stubbed
    for status, sse in (("CREATING", None), ("ACTIVE", "ENABLING"), ("ACTIVE", "ENABLED")):
        stub.add_response("describe_table", _table(status, sse), {"TableName": "tbl"})
    with stub:
        Table()._wait_active(StubCtx(client), "tbl", timeout=60)
    stub.assert_no_pending_responses()          # it stopped at the first read that was settled


def test_wait_active_fails_when_the_table_disappears(stubbed):
    client, stub = stubbed
    stub.add_client_error("describe_table", "ResourceNotFoundException", expected_params={"TableName": "tbl"})
    with stub, pytest.raises(RuntimeError, match="DynamoDB table tbl is gone, expected ACTIVE"):
        Table()._wait_active(StubCtx(client), "tbl", timeout=60)


def test_wait_times_out_naming_the_last_status(stubbed):
    client, stub = stubbed
    stub.add_response("describe_table", _table("UPDATING"), {"TableName": "tbl"})
    with stub, pytest.raises(TimeoutError, match="last status: UPDATING"):
        Table()._wait_active(StubCtx(client), "tbl", timeout=0)


def test_create_waits_for_active_before_setting_ttl(stubbed, tmp_path):
    # AWS answers CreateTable with CREATING and refuses UpdateTimeToLive until the table is ACTIVE.
    client, stub = stubbed
    node = graph_from_yaml(tmp_path, SPEC)[SESSIONS]
    stub.add_response("create_table", {"TableDescription": {"TableName": "acme-qa-sessions",
                                                            "TableStatus": "CREATING"}})
    stub.add_response("describe_table", _table("CREATING"))
    stub.add_response("describe_table", _table("ACTIVE"))
    stub.add_response("update_time_to_live", {}, {"TableName": "acme-qa-sessions", "TimeToLiveSpecification": {
        "Enabled": True, "AttributeName": "expires_at"}})
    with stub:
        assert Table().create(StubCtx(client), node) == "acme-qa-sessions"
    stub.assert_no_pending_responses()


def test_wait_gone_polls_through_deleting(stubbed):
    client, stub = stubbed
    stub.add_response("describe_table", _table("DELETING"), {"TableName": "tbl"})
    stub.add_client_error("describe_table", "ResourceNotFoundException", expected_params={"TableName": "tbl"})
    with stub:
        assert Table().wait(StubCtx(client), "tbl", "gone") is None
    stub.assert_no_pending_responses()
