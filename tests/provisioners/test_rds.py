"""RDS: DB subnet groups and DB instances. Expansion, version rules (tables, no AWS), then the
lifecycle against moto server:

create → read back with plain boto3 → discover + diff clean, read-only → drift by hand shows
exactly that field → update repairs it → deleted out of band is absent → delete leaves nothing
tagged, foreign databases untouched; deletion protection, the final snapshot hook, adoption
and NotOurs; the waits with botocore's Stubber (moto is available at once, MOTO-NOTES §7).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from botocore.stub import Stubber

from envctl.model.address import Address
from envctl.model.graph import Ref
from envctl.provisioners import by_kind
from envctl.provisioners.base import Ctx, NotOurs, Observed
from envctl.provisioners.db_instance import DbDeletionProtected, DbInstanceProps
from envctl.provisioners.db_subnet_group import DbSubnetGroupProps
from tests.provisioners.harness import (StubClients, changes_of, create_all, delete_all, discover, drift,
                                        graph_from_yaml, kinds_of, make_ctx, offline_client, outputs_of, repair,
                                        resolved, tags_of)

DB = Address("db_instance", "main")
GROUP = Address("db_subnet_group", "main")

SPEC = """\
tags:
  Owner: platform-team
network:
  cidr: 10.50.0.0/16
  zones: 2
  nat: none
  tiers:
    data: {{prefix: 24}}
security_groups:
  db:
    ingress:
      - {{port: 5432, from: 10.50.0.0/16}}
  admin:
    ingress:
      - {{port: 5432, from: 10.50.1.0/24}}
databases:
  main:
    engine: postgres
    version: "{version}"
    instance_class: db.t3.micro
    storage_gb: 20
    tier: data
    security_groups: [db]
    backup_retention_days: 7
"""


@pytest.fixture
def env(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC.format(version="16.4"))
    ctx = make_ctx(aws)
    return ctx, graph, create_all(ctx, graph)


def describe_db(aws, name="acme-qa-main") -> dict:
    return aws.client("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


# ------------------------------------------------------------------ expansion (pure)

def test_a_database_expands_encrypted_private_with_a_managed_password(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC.format(version="16.4"))
    db = graph[DB]
    assert db.physical_name == "acme-qa-main"
    assert db.props == DbInstanceProps(
        engine="postgres", engine_version="16.4", instance_class="db.t3.micro", allocated_storage=20,
        storage_type="gp3", multi_az=False, storage_encrypted=True, publicly_accessible=False,
        backup_retention_period=7, deletion_protection=False, master_username="envctl",
        manage_master_user_password=True, db_subnet_group_name=Ref(GROUP, "name"),
        vpc_security_group_ids=(Ref(Address("security_group", "db"), "id"),), port=5432)
    assert graph[GROUP].props == DbSubnetGroupProps(
        description="acme qa main",
        subnet_ids=(Ref(Address("subnet", "data-a"), "id"), Ref(Address("subnet", "data-b"), "id")))
    assert "password" not in json.dumps(db.props.model_dump(mode="json")).replace("manage_master_user_password", "")


@dataclass
class Live:
    version: str


def _version_diff(desired: str, live: str):
    props = dict(engine="postgres", instance_class="db.t3.micro", allocated_storage=20, master_username="envctl",
                 db_subnet_group_name="g", port=5432)
    observed = Observed(DB, "acme-qa-main", DbInstanceProps(engine_version=live, **props), {})
    return [(c.path, c.forces_replace) for c in by_kind("db_instance").diff(
        DbInstanceProps(engine_version=desired, **props), observed)]


@pytest.mark.parametrize("desired, live, expected", [
    ("16.4", "16.4", []),
    ("16", "16.4", []),                                   # a prefix names every release of it
    ("16.4", "16.6", []),                                 # AWS's automatic minor upgrade is no change
    ("16.6", "16.4", [("engine_version", False)]),        # an upgrade, in place
    ("17.2", "16.4", [("engine_version", False)]),        # a major upgrade, in place
    ("15.7", "16.4", [("engine_version", True)]),         # RDS cannot downgrade: replace
    ("8.0.35", "8.0.39", []),
    ("8.0.35", "8.4.3", [("engine_version", True)]),
])
def test_engine_version_rules(desired, live, expected):
    assert _version_diff(desired, live) == expected


# ------------------------------------------------------------------ 1. create, read back

def test_create_builds_the_subnet_group_and_the_database(env, aws):
    ctx, graph, created = env
    rds = aws.client("rds")
    subnets = {created[Address("subnet", n)].id for n in ("data-a", "data-b")}
    group = rds.describe_db_subnet_groups(DBSubnetGroupName="acme-qa-main")["DBSubnetGroups"][0]
    assert group["DBSubnetGroupDescription"] == "acme qa main"
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == subnets
    ownership = {"envctl:project": "acme", "envctl:environment": "qa", "Owner": "platform-team"}
    assert tags_of(rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])["TagList"]) == {
        **ownership, "envctl:resource": "db_subnet_group/main"}
    assert created[GROUP].outputs == {"name": "acme-qa-main", "arn": group["DBSubnetGroupArn"]}

    db = describe_db(aws)
    assert (db["Engine"], db["EngineVersion"], db["DBInstanceClass"]) == ("postgres", "16.4", "db.t3.micro")
    assert (db["AllocatedStorage"], db["StorageType"], db["StorageEncrypted"]) == (20, "gp3", True)
    assert (db["MultiAZ"], db["PubliclyAccessible"], db["DeletionProtection"]) == (False, False, False)
    assert db["BackupRetentionPeriod"] == 7
    assert db["MasterUsername"] == "envctl"
    assert db["MasterUserSecret"]["SecretArn"].startswith("arn:aws:secretsmanager:eu-north-1:")
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "acme-qa-main"
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [
        created[Address("security_group", "db")].id]
    assert db["Endpoint"]["Port"] == 5432
    assert tags_of(db["TagList"]) == {**ownership, "envctl:resource": "db_instance/main"}
    address = db["Endpoint"]["Address"]
    assert created[DB].outputs == {
        "name": "acme-qa-main", "arn": db["DBInstanceArn"], "address": address, "port": "5432",
        "endpoint": f"{address}:5432", "secret_arn": db["MasterUserSecret"]["SecretArn"]}
    assert "password" not in json.dumps(created[DB].outputs).lower()


# ------------------------------------------------------------------ 2. discover and diff: clean, read-only

def test_discover_finds_the_database_and_diff_is_clean_without_a_mutating_call(env, aws):
    ctx, graph, created = env
    aws.log.clear()
    found, changes = drift(ctx, graph)
    assert changes == {}
    assert aws.log.mutating() == []
    assert (found[DB].id, found[GROUP].id) == ("acme-qa-main", "acme-qa-main")
    assert aws.log.count("DescribeDBInstances") == 1


# ------------------------------------------------------------------ 3 + 4. drift by hand, update repairs

@pytest.mark.parametrize("parameters, field, live", [
    ({"DBInstanceClass": "db.t3.small"}, "instance_class", ("DBInstanceClass", "db.t3.micro")),
    ({"BackupRetentionPeriod": 1}, "backup_retention_period", ("BackupRetentionPeriod", 7)),
    ({"DeletionProtection": True}, "deletion_protection", ("DeletionProtection", False)),
    ({"MultiAZ": True}, "multi_az", ("MultiAZ", False)),
    ({"PubliclyAccessible": True}, "publicly_accessible", ("PubliclyAccessible", False)),
])
def test_database_drift_shows_exactly_that_field_and_update_repairs_it(env, aws, parameters, field, live):
    ctx, graph, created = env
    aws.client("rds").modify_db_instance(DBInstanceIdentifier="acme-qa-main", ApplyImmediately=True, **parameters)
    found, changes = drift(ctx, graph)
    assert changes == {DB: [field]}
    assert not any(c.forces_replace for c in changes_of(graph, found, DB)[1])
    repair(ctx, graph, found, DB)
    assert drift(ctx, graph)[1] == {}
    key, value = live
    assert describe_db(aws)[key] == value


def test_security_groups_changed_by_hand_are_repaired(env, aws):
    ctx, graph, created = env
    aws.client("rds").modify_db_instance(DBInstanceIdentifier="acme-qa-main", ApplyImmediately=True,
                                         VpcSecurityGroupIds=[created[Address("security_group", "admin")].id])
    found, changes = drift(ctx, graph)
    assert changes == {DB: ["vpc_security_group_ids"]}
    repair(ctx, graph, found, DB)
    assert [g["VpcSecurityGroupId"] for g in describe_db(aws)["VpcSecurityGroups"]] == [
        created[Address("security_group", "db")].id]


def test_tags_changed_by_hand_are_repaired_on_database_and_subnet_group(env, aws):
    ctx, graph, created = env
    rds = aws.client("rds")
    for address in (DB, GROUP):
        rds.add_tags_to_resource(ResourceName=created[address].outputs["arn"],
                                 Tags=[{"Key": "Owner", "Value": "someone"}, {"Key": "Extra", "Value": "x"}])
    found, changes = drift(ctx, graph)
    assert changes == {DB: ["tags"], GROUP: ["tags"]}
    for address in (DB, GROUP):
        repair(ctx, graph, found, address)
    assert drift(ctx, graph)[1] == {}
    assert tags_of(describe_db(aws)["TagList"])["Owner"] == "platform-team"


def test_storage_grows_in_place_but_a_smaller_size_is_a_replacement(env, aws, tmp_path):
    ctx, graph, created = env
    bigger = graph_from_yaml(tmp_path, SPEC.format(version="16.4").replace("storage_gb: 20", "storage_gb: 30"))
    found, changes = drift(ctx, bigger)
    assert changes == {DB: ["allocated_storage"]}
    [change] = changes_of(bigger, found, DB)[1]
    assert (change.before, change.after, change.forces_replace) == (20, 30, False)
    repair(ctx, bigger, found, DB)
    assert describe_db(aws)["AllocatedStorage"] == 30
    found, changes = drift(ctx, graph)                   # back to the spec of 20 GiB
    [change] = changes_of(graph, found, DB)[1]
    assert (change.path, change.before, change.after, change.forces_replace) == ("allocated_storage", 30, 20, True)


def test_a_major_version_upgrade_happens_in_place(env, aws, tmp_path):
    ctx, graph, created = env
    upgraded = graph_from_yaml(tmp_path, SPEC.format(version="17.2"))
    found, changes = drift(ctx, upgraded)
    assert changes == {DB: ["engine_version"]}
    repair(ctx, upgraded, found, DB)
    assert describe_db(aws)["EngineVersion"] == "17.2"
    assert drift(ctx, upgraded)[1] == {}
    # Back to 16.4 in the spec with 17.2 live: RDS cannot downgrade, so that is a replacement.
    found, _ = drift(ctx, graph)
    assert [(c.path, c.forces_replace) for c in changes_of(graph, found, DB)[1]] == [("engine_version", True)]


def test_subnet_group_changes_are_one_modify_call(aws, tmp_path):
    # moto's modify_db_subnet_group drops the group from its store (moto/rds/models.py pops it and
    # never puts it back): the call is checked with botocore's Stubber instead of read back.
    rds = offline_client("rds")
    ctx = Ctx(aws=StubClients({"rds": rds}), project="acme", environment="qa")
    graph = graph_from_yaml(tmp_path, SPEC.format(version="16.4"))
    node = resolved(graph[GROUP], {Address("subnet", "data-a"): {"id": "subnet-a"},
                                   Address("subnet", "data-b"): {"id": "subnet-b"}})
    observed = Observed(GROUP, "acme-qa-main", DbSubnetGroupProps(description="old words", subnet_ids=("subnet-a",)),
                        dict(node.tags), outputs={"name": "acme-qa-main", "arn": "arn:aws:rds:::subgrp:acme-qa-main"})
    changes = by_kind("db_subnet_group").diff(node.props, observed)
    assert [c.path for c in changes] == ["description", "subnet_ids"]
    with Stubber(rds) as stub:
        stub.add_response("modify_db_subnet_group", {"DBSubnetGroup": {}}, {
            "DBSubnetGroupName": "acme-qa-main", "DBSubnetGroupDescription": "acme qa main",
            "SubnetIds": ["subnet-a", "subnet-b"]})
        by_kind("db_subnet_group").update(ctx, observed, node, changes)
        stub.assert_no_pending_responses()


# ------------------------------------------------------------------ 5. deleted out of band

def test_a_database_deleted_out_of_band_is_absent(env, aws):
    ctx, graph, created = env
    aws.client("rds").delete_db_instance(DBInstanceIdentifier="acme-qa-main", SkipFinalSnapshot=True)
    found, changes = drift(ctx, graph)
    assert DB not in found and changes == {DB: None}
    assert by_kind("db_instance").read(ctx, "acme-qa-main") is None


# ------------------------------------------------------------------ 6. delete everything, foreign untouched

def test_delete_all_leaves_nothing_tagged_and_foreign_databases_untouched(env, aws):
    ctx, graph, created = env
    rds = aws.client("rds")
    # The look-alike lives in the default VPC: in our subnets it would keep them from being deleted.
    subnets = [s["SubnetId"] for s in aws.client("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
    rds.create_db_subnet_group(DBSubnetGroupName="acme-qa-main-copy", DBSubnetGroupDescription="hand made",
                               SubnetIds=subnets)
    rds.create_db_instance(DBInstanceIdentifier="acme-qa-main-copy", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, MasterUsername="someone", ManageMasterUserPassword=True,
                           DBSubnetGroupName="acme-qa-main-copy")
    found = discover(ctx, kinds_of(graph))
    assert DB in found and Address("db_instance", "main-copy") not in found
    aws.log.clear()
    delete_all(ctx, found, graph)

    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]] == ["acme-qa-main-copy"]
    assert [g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]] == [
        "acme-qa-main-copy"]
    assert drift(ctx, graph)[0] == {}
    # moto deletes a subnet group still in use (MOTO-NOTES §3): the order is asserted on the log.
    calls = [c.action for c in aws.log.snapshot() if c.mutating]
    assert calls.index("DeleteDBInstance") < calls.index("DeleteDBSubnetGroup") < calls.index("DeleteSubnet")
    assert "CreateDBSnapshot" not in calls
    assert rds.describe_db_snapshots(DBInstanceIdentifier="acme-qa-main")["DBSnapshots"] == []


def test_delete_refuses_a_protected_database(env, aws):
    ctx, graph, created = env
    aws.client("rds").modify_db_instance(DBInstanceIdentifier="acme-qa-main", DeletionProtection=True,
                                         ApplyImmediately=True)
    observed = by_kind("db_instance").read(ctx, "acme-qa-main")
    aws.log.clear()
    with pytest.raises(DbDeletionProtected, match="deletion protection on; set deletion_protection: false"):
        by_kind("db_instance").delete(ctx, observed)
    assert aws.log.mutating() == []
    assert describe_db(aws)["DBInstanceStatus"] == "available"


def test_delete_keeps_a_final_snapshot_when_destroy_asks(env, aws):
    ctx, graph, created = env
    ctx.final_snapshot = "20261128-1200"          # destroy of a protected environment sets it
    by_kind("db_instance").delete(ctx, created[DB])
    by_kind("db_instance").wait(ctx, "acme-qa-main", "gone")
    assert [s["DBSnapshotIdentifier"] for s in aws.client("rds").describe_db_snapshots()["DBSnapshots"]] == [
        "acme-qa-main-final-20261128-1200"]


def test_force_lifts_deletion_protection(env, aws):
    ctx, graph, created = env
    aws.client("rds").modify_db_instance(DBInstanceIdentifier="acme-qa-main", DeletionProtection=True,
                                         ApplyImmediately=True)
    observed = by_kind("db_instance").read(ctx, "acme-qa-main")
    ctx.force = True
    aws.log.clear()
    by_kind("db_instance").delete(ctx, observed)
    by_kind("db_instance").wait(ctx, "acme-qa-main", "gone")
    assert [c.action for c in aws.log.mutating()] == ["ModifyDBInstance", "DeleteDBInstance"]
    assert aws.client("rds").describe_db_instances()["DBInstances"] == []


def test_delete_of_a_missing_database_or_group_succeeds(env, aws):
    ctx, graph, created = env
    for address in (DB, GROUP):
        p = by_kind(address.kind)
        for _ in range(2):
            p.delete(ctx, created[address])
            p.wait(ctx, created[address].id, "gone")
        assert p.read(ctx, created[address].id) is None


# ------------------------------------------------------------------ adoption and foreign names

def test_create_adopts_our_existing_database_and_group(env, aws):
    ctx, graph, created = env
    outputs = outputs_of(created)
    for address in (GROUP, DB):
        assert by_kind(address.kind).create(ctx, resolved(graph[address], outputs)) == "acme-qa-main"
    rds = aws.client("rds")
    assert len(rds.describe_db_instances()["DBInstances"]) == 1
    assert len(rds.describe_db_subnet_groups()["DBSubnetGroups"]) == 1


def test_create_refuses_names_taken_by_someone_else(aws, tmp_path):
    ctx = make_ctx(aws)
    graph = graph_from_yaml(tmp_path, SPEC.format(version="16.4"))
    ec2 = aws.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
    rds = aws.client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName="acme-qa-main", DBSubnetGroupDescription="theirs", SubnetIds=subnets)
    rds.create_db_instance(DBInstanceIdentifier="acme-qa-main", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, MasterUsername="someone", ManageMasterUserPassword=True,
                           DBSubnetGroupName="acme-qa-main")
    outputs = {Address("subnet", n): {"id": s} for n, s in zip(("data-a", "data-b"), subnets)}
    outputs |= {Address("security_group", "db"): {"id": "sg-12345678"}, GROUP: {"name": "acme-qa-main"}}
    with pytest.raises(NotOurs, match="DB subnet group acme-qa-main"):
        by_kind("db_subnet_group").create(ctx, resolved(graph[GROUP], outputs))
    with pytest.raises(NotOurs, match="RDS DB instance acme-qa-main"):
        by_kind("db_instance").create(ctx, resolved(graph[DB], outputs))
    assert describe_db(aws)["MasterUsername"] == "someone"


# ------------------------------------------------------------------ waits, with botocore's Stubber

def _db(status: str, pending: dict | None = None) -> dict:
    db = {"DBInstanceIdentifier": "acme-qa-main", "DBInstanceClass": "db.t3.small", "Engine": "postgres",
          "DBInstanceStatus": status, "MasterUsername": "envctl", "AllocatedStorage": 20, "EngineVersion": "16.4",
          "DBInstanceArn": "arn:aws:rds:eu-north-1:123456789012:db:acme-qa-main", "TagList": []}
    if pending:
        db["PendingModifiedValues"] = pending
    return {"DBInstances": [db]}


@pytest.fixture
def stubbed(monkeypatch):
    rds, ec2 = offline_client("rds"), offline_client("ec2")
    monkeypatch.setattr(type(by_kind("db_instance")), "poll_interval", 0.0)
    ctx = Ctx(aws=StubClients({"rds": rds, "ec2": ec2}), project="acme", environment="qa")
    return ctx, rds


def test_ready_waits_through_modifying_and_pending_values(stubbed):
    ctx, rds = stubbed
    with Stubber(rds) as stub:
        # Right after modify_db_instance AWS may still say "available", with the change pending.
        stub.add_response("describe_db_instances", _db("available", {"DBInstanceClass": "db.t3.small"}))
        stub.add_response("describe_db_instances", _db("modifying"))
        stub.add_response("describe_db_instances", _db("available"))           # read on from it
        observed = by_kind("db_instance").wait(ctx, "acme-qa-main", "ready")
        stub.assert_no_pending_responses()
    assert observed.props.instance_class == "db.t3.small"


def test_ready_fails_on_a_failure_status(stubbed):
    ctx, rds = stubbed
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", _db("creating"))
        stub.add_response("describe_db_instances", _db("incompatible-network"))
        with pytest.raises(RuntimeError, match="RDS DB instance acme-qa-main is incompatible-network"):
            by_kind("db_instance").wait(ctx, "acme-qa-main", "ready")


def test_gone_waits_until_the_instance_is_not_found(stubbed):
    ctx, rds = stubbed
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", _db("deleting"))
        stub.add_response("describe_db_instances", _db("deleting"))
        stub.add_client_error("describe_db_instances", "DBInstanceNotFound", http_status_code=404)
        assert by_kind("db_instance").wait(ctx, "acme-qa-main", "gone") is None
        stub.assert_no_pending_responses()
