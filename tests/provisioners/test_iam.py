"""IAM roles and instance profiles: expansion of grants into exact policies (a table, no AWS),
then the lifecycle against moto server:

create → read back with plain boto3 → discover + diff clean, read-only → drift by hand shows
exactly that field → update repairs it → deleted out of band is absent → delete leaves nothing
under the environment's path, foreign roles untouched; adoption and NotOurs.
"""
from __future__ import annotations

import json

import pytest

from envctl.model.address import Address
from envctl.model.graph import Ref, Template
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from envctl.provisioners.role import Statement, canonical_policy, canonical_statements
from tests.provisioners.harness import (create_all, delete_all, discover, drift, graph_from_yaml, kinds_of,
                                        make_ctx, outputs_of, repair, resolved)

ACCOUNT = "123456789012"
PATH = "/envctl/acme/qa/"
EXTRA_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/acme-extra"

SPEC = f"""\
tags:
  Owner: platform-team
roles:
  app:
    assumed_by: ec2
    allow:
      - {{queue: work, actions: [send, receive]}}
      - {{table: sessions, actions: [read]}}
      - {{queue: work, actions: [send]}}
      - {{log_group: app, actions: [write]}}
    managed_policies: [{EXTRA_POLICY}]
  worker:
    assumed_by: lambda
    allow:
      - {{queue: work, actions: [receive]}}
queues:
  work: {{}}
tables:
  sessions: {{partition_key: id}}
log_groups:
  app: {{retention_days: 7}}
"""


@pytest.fixture
def env(aws, tmp_path):
    aws.client("iam").create_policy(PolicyName="acme-extra", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}))
    graph = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    return ctx, graph, create_all(ctx, graph)


# ------------------------------------------------------------------ expansion (pure)

FUNCTION_SPEC = """\
roles:
  ingest:
    assumed_by: lambda
    allow:
      - {bucket: uploads, actions: [read, write]}
      - {log_group: ingest, actions: [read]}
buckets:
  uploads: {}
  named: {name: partner-drop-zone}
log_groups:
  ingest: {}
functions:
  ingest:
    runtime: python3.12
    handler: handler.main
    source: functions/ingest
    role: ingest
"""


def test_grants_expand_to_exact_actions_on_exact_resources(tmp_path):
    graph = graph_from_yaml(tmp_path, FUNCTION_SPEC, files={"functions/ingest/handler.py": "def main(e, c): pass\n"})
    role = graph[Address("role", "ingest")]
    assert role.physical_name == "acme-qa-ingest"
    assert role.props.path == PATH
    assert json.loads(role.props.assume_role_policy)["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}]
    group = lambda name: Ref(Address("log_group", name), "arn")  # noqa: E731
    assert role.props.statements == (
        # Buckets: the bucket itself for listing, its objects for the rest; the ARN is written out
        # (no Ref: role → bucket → function → role would be a cycle).
        Statement(actions=("s3:ListBucket",), resources=("arn:aws:s3:::acme-qa-uploads",)),
        Statement(actions=("s3:DeleteObject", "s3:GetObject", "s3:PutObject"),
                  resources=("arn:aws:s3:::acme-qa-uploads/*",)),
        # The function's own log group, for every function whose role this is.
        Statement(actions=("logs:CreateLogStream", "logs:PutLogEvents"),
                  resources=(Template((group("function-ingest"), ":*")),)),
        Statement(actions=("logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"),
                  resources=(Template((group("ingest"), ":*")),)),
    )
    assert not any("*" in a for s in role.props.statements for a in s.actions)
    assert Address("instance_profile", "ingest") not in graph          # only roles assumed by ec2 get one
    assert Address("role", "ingest") in graph[Address("function", "ingest")].deps


def test_an_ec2_role_gets_an_instance_profile_holding_it(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC)
    profile = graph[Address("instance_profile", "app")]
    assert profile.physical_name == "acme-qa-app"
    assert profile.props.path == PATH
    assert profile.props.role_name == Ref(Address("role", "app"), "name")
    app = graph[Address("role", "app")].props
    # Two grants on one queue merge into one statement; actions sorted, no duplicates; statements
    # in the order of (kind, name): log_group/app, queue/work, table/sessions.
    assert [s.resources[0].parts[0].address if isinstance(s.resources[0], Template) else s.resources[0].address
            for s in app.statements] == [Address("log_group", "app"), Address("queue", "work"),
                                         Address("table", "sessions")]
    assert app.statements[1] == Statement(
        actions=("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
                 "sqs:ReceiveMessage", "sqs:SendMessage"),
        resources=(Ref(Address("queue", "work"), "arn"),))
    assert app.managed_policies == (EXTRA_POLICY,)


def test_policies_compare_by_meaning():
    a = canonical_policy({"Version": "2012-10-17", "Statement": [
        {"Sid": "One", "Effect": "Allow", "Action": ["b", "a", "a"], "Resource": "r"},
        {"Effect": "Allow", "Action": "c", "Resource": ["r2"]}]})
    b = canonical_policy(json.dumps({"Statement": [{"Effect": "Allow", "Resource": ["r2"], "Action": ["c"]},
                                                   {"Effect": "Allow", "Resource": ["r"], "Action": ["a", "b"]}],
                                     "Version": "2012-10-17"}))
    assert a == b
    assert canonical_policy({"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "r"}]}) != \
        canonical_policy({"Statement": [{"Effect": "Deny", "Action": "a", "Resource": "r"}]})
    assert canonical_statements([Statement(actions=("x", "a"), resources=("r",)),
                                 Statement(actions=("a", "x", "a"), resources=("r", "r"))]) == \
        (Statement(actions=("a", "x"), resources=("r",)),)


# ------------------------------------------------------------------ 1. create, read back

def test_create_builds_roles_with_exact_policies_and_a_profile(env, aws):
    ctx, graph, created = env
    iam = aws.client("iam")
    queue_arn = created[Address("queue", "work")].outputs["arn"]
    table_arn = created[Address("table", "sessions")].outputs["arn"]
    group_arn = created[Address("log_group", "app")].outputs["arn"]

    role = iam.get_role(RoleName="acme-qa-app")["Role"]
    assert role["Path"] == PATH
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role{PATH}acme-qa-app"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "role/app", "Owner": "platform-team"}
    assert iam.list_role_policies(RoleName="acme-qa-app")["PolicyNames"] == ["envctl"]
    policy = iam.get_role_policy(RoleName="acme-qa-app", PolicyName="envctl")["PolicyDocument"]
    assert {(tuple(s["Action"]), tuple(s["Resource"])) for s in policy["Statement"]} == {
        (("logs:CreateLogStream", "logs:PutLogEvents"), (f"{group_arn}:*",)),
        (("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
          "sqs:ReceiveMessage", "sqs:SendMessage"), (queue_arn,)),
        (("dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
          "dynamodb:Query", "dynamodb:Scan"), (table_arn,)),
    }
    assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="acme-qa-app")["AttachedPolicies"]] \
        == [EXTRA_POLICY]

    worker = iam.get_role(RoleName="acme-qa-worker")["Role"]
    assert worker["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert iam.list_attached_role_policies(RoleName="acme-qa-worker")["AttachedPolicies"] == []

    profile = iam.get_instance_profile(InstanceProfileName="acme-qa-app")["InstanceProfile"]
    assert profile["Path"] == PATH
    assert [r["RoleName"] for r in profile["Roles"]] == ["acme-qa-app"]
    assert {t["Key"]: t["Value"] for t in profile["Tags"]} == {
        "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "instance_profile/app",
        "Owner": "platform-team"}
    assert iam.list_instance_profiles_for_role(RoleName="acme-qa-worker")["InstanceProfiles"] == []

    outputs = by_kind("role").outputs(created[Address("role", "app")])
    assert outputs == {"arn": role["Arn"], "name": "acme-qa-app", "id": role["RoleId"]}
    assert by_kind("instance_profile").outputs(created[Address("instance_profile", "app")]) == {
        "arn": profile["Arn"], "name": "acme-qa-app"}


# ------------------------------------------------------------------ 2. discover and diff: clean, read-only

def test_discover_finds_the_roles_and_diff_is_clean_without_a_mutating_call(env, aws):
    ctx, graph, created = env
    aws.log.clear()
    found, changes = drift(ctx, graph)
    assert changes == {}
    assert {a: o.id for a, o in found.items() if a.kind in ("role", "instance_profile")} == {
        Address("role", "app"): "acme-qa-app", Address("role", "worker"): "acme-qa-worker",
        Address("instance_profile", "app"): "acme-qa-app"}
    assert aws.log.mutating() == []
    # Roles: one listing with their policies and tags, no call per role. Profiles: one read each.
    assert aws.log.count("GetAccountAuthorizationDetails") == 1
    assert [aws.log.count(a) for a in ("GetRole", "ListRolePolicies", "GetRolePolicy",
                                       "ListAttachedRolePolicies")] == [0, 0, 0, 0]
    assert aws.log.count("ListInstanceProfiles") == 1 and aws.log.count("GetInstanceProfile") == 1


def test_a_policy_spelled_differently_by_hand_is_no_change(env, aws):
    ctx, graph, created = env
    iam = aws.client("iam")
    live = iam.get_role_policy(RoleName="acme-qa-app", PolicyName="envctl")["PolicyDocument"]
    respelled = [dict(s, Action=list(reversed(s["Action"])), Sid=f"S{i}") for i, s in enumerate(live["Statement"])]
    iam.put_role_policy(RoleName="acme-qa-app", PolicyName="envctl",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": respelled[::-1]}))
    assert drift(ctx, graph)[1] == {}


# ------------------------------------------------------------------ 3 + 4. drift by hand, update repairs

def _action_added(iam):
    live = iam.get_role_policy(RoleName="acme-qa-app", PolicyName="envctl")["PolicyDocument"]
    live["Statement"][0]["Action"] = list(live["Statement"][0]["Action"]) + ["sqs:PurgeQueue"]
    iam.put_role_policy(RoleName="acme-qa-app", PolicyName="envctl", PolicyDocument=json.dumps(live))


def _trust_widened(iam):
    iam.update_assume_role_policy(RoleName="acme-qa-app", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}}]}))


def _managed_policy_detached(iam):
    iam.detach_role_policy(RoleName="acme-qa-app", PolicyArn=EXTRA_POLICY)


def _admin_attached(iam):
    iam.attach_role_policy(RoleName="acme-qa-worker", PolicyArn=EXTRA_POLICY)


def _inline_policy_added(iam):
    iam.put_role_policy(RoleName="acme-qa-worker", PolicyName="backdoor", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))


def _envctl_policy_deleted(iam):
    iam.delete_role_policy(RoleName="acme-qa-worker", PolicyName="envctl")


def _profile_emptied(iam):
    iam.remove_role_from_instance_profile(InstanceProfileName="acme-qa-app", RoleName="acme-qa-app")


def _role_tag_changed(iam):
    iam.tag_role(RoleName="acme-qa-worker", Tags=[{"Key": "Owner", "Value": "someone-else"},
                                                  {"Key": "Extra", "Value": "x"}])


def _profile_tag_removed(iam):
    iam.untag_instance_profile(InstanceProfileName="acme-qa-app", TagKeys=["Owner"])


@pytest.mark.parametrize("change, address, fields", [
    (_action_added, Address("role", "app"), ["statements"]),
    (_trust_widened, Address("role", "app"), ["assume_role_policy"]),
    (_managed_policy_detached, Address("role", "app"), ["managed_policies"]),
    (_admin_attached, Address("role", "worker"), ["managed_policies"]),
    (_inline_policy_added, Address("role", "worker"), ["other_inline_policies"]),
    (_envctl_policy_deleted, Address("role", "worker"), ["statements"]),
    (_profile_emptied, Address("instance_profile", "app"), ["role_name"]),
    (_role_tag_changed, Address("role", "worker"), ["tags"]),
    (_profile_tag_removed, Address("instance_profile", "app"), ["tags"]),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_drift_by_hand_shows_exactly_that_field_and_update_repairs_it(env, aws, change, address, fields):
    ctx, graph, created = env
    change(aws.client("iam"))
    found, changes = drift(ctx, graph)
    assert changes == {address: fields}
    outputs = outputs_of(found)
    desired = resolved(graph[address], outputs).props
    assert not any(c.forces_replace for c in by_kind(address.kind).diff(desired, found[address]))
    repair(ctx, graph, found, address)
    assert drift(ctx, graph)[1] == {}


# ------------------------------------------------------------------ 5. deleted out of band

def test_a_role_deleted_out_of_band_is_absent_and_its_profile_shows_the_gap(env, aws):
    ctx, graph, created = env
    iam = aws.client("iam")
    iam.remove_role_from_instance_profile(InstanceProfileName="acme-qa-app", RoleName="acme-qa-app")
    iam.delete_role_policy(RoleName="acme-qa-app", PolicyName="envctl")
    iam.detach_role_policy(RoleName="acme-qa-app", PolicyArn=EXTRA_POLICY)
    iam.delete_role(RoleName="acme-qa-app")
    found, changes = drift(ctx, graph)
    assert Address("role", "app") not in found
    assert changes == {Address("role", "app"): None, Address("instance_profile", "app"): ["role_name"]}
    assert by_kind("role").read(ctx, "acme-qa-app") is None


# ------------------------------------------------------------------ 6. delete everything, foreign untouched

def test_delete_all_leaves_nothing_under_the_path_and_foreign_roles_untouched(env, aws):
    ctx, graph, created = env
    iam = aws.client("iam")
    trust = by_kind("role").read(ctx, "acme-qa-app").props.assume_role_policy
    # Same path, no envctl tags; and a look-alike name elsewhere, with another environment's tags.
    iam.create_role(RoleName="acme-qa-handmade", Path=PATH, AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="acme-qa-app-copy", Path="/", AssumeRolePolicyDocument=trust, Tags=[
        {"Key": "envctl:project", "Value": "acme"}, {"Key": "envctl:environment", "Value": "prod"},
        {"Key": "envctl:resource", "Value": "role/app"}])
    iam.create_instance_profile(InstanceProfileName="acme-qa-handmade", Path=PATH)
    iam.add_role_to_instance_profile(InstanceProfileName="acme-qa-handmade", RoleName="acme-qa-handmade")

    found = discover(ctx, kinds_of(graph))
    delete_all(ctx, found, graph)
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix=PATH)["Roles"]] == ["acme-qa-handmade"]
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles(PathPrefix=PATH)["InstanceProfiles"]] == [
        "acme-qa-handmade"]
    assert iam.get_role(RoleName="acme-qa-app-copy")["Role"]["RoleName"] == "acme-qa-app-copy"
    assert [r["RoleName"] for r in iam.get_instance_profile(
        InstanceProfileName="acme-qa-handmade")["InstanceProfile"]["Roles"]] == ["acme-qa-handmade"]
    assert drift(ctx, graph)[0] == {}


def test_deletes_go_by_the_read_made_just_before_them(env, aws):
    # The executor reads each resource right before it deletes it: its policies and role are
    # known, nothing is listed again.
    ctx, graph, created = env
    steps = ((Address("instance_profile", "app"), ["RemoveRoleFromInstanceProfile", "DeleteInstanceProfile"]),
             (Address("role", "app"), ["DeleteRolePolicy", "DetachRolePolicy", "DeleteRole"]))
    for address, calls in steps:
        p = by_kind(address.kind)
        observed = p.read(ctx, created[address].id)
        aws.log.clear()
        p.delete(ctx, observed)
        assert [c.action for c in aws.log.snapshot()] == calls
        assert p.read(ctx, created[address].id) is None


def test_a_role_still_in_a_profile_is_taken_out_and_deleted(env, aws):
    # IAM refuses to delete a role an instance profile holds: then everything is listed afresh.
    ctx, graph, created = env
    role = by_kind("role").read(ctx, "acme-qa-app")
    aws.log.clear()
    by_kind("role").delete(ctx, role)
    assert by_kind("role").read(ctx, "acme-qa-app") is None
    assert ("DeleteRole", 409) in [(c.action, c.status) for c in aws.log.snapshot()]
    assert aws.client("iam").get_instance_profile(InstanceProfileName="acme-qa-app")["InstanceProfile"]["Roles"] == []


def test_delete_of_a_missing_role_or_profile_succeeds(env, aws):
    ctx, graph, created = env
    for address in (Address("instance_profile", "app"), Address("role", "app")):
        by_kind(address.kind).delete(ctx, created[address])
        by_kind(address.kind).delete(ctx, created[address])
        assert by_kind(address.kind).read(ctx, created[address].id) is None


# ------------------------------------------------------------------ adoption and foreign names

def test_create_adopts_our_existing_role_and_profile(env, aws):
    ctx, graph, created = env
    outputs = outputs_of(created)
    for address in (Address("role", "app"), Address("instance_profile", "app")):
        node = resolved(graph[address], outputs)
        assert by_kind(address.kind).create(ctx, node) == "acme-qa-app"
    iam = aws.client("iam")
    assert sorted(r["RoleName"] for r in iam.list_roles(PathPrefix=PATH)["Roles"]) == ["acme-qa-app", "acme-qa-worker"]
    assert len(iam.list_attached_role_policies(RoleName="acme-qa-app")["AttachedPolicies"]) == 1
    assert [r["RoleName"] for r in iam.get_instance_profile(
        InstanceProfileName="acme-qa-app")["InstanceProfile"]["Roles"]] == ["acme-qa-app"]


def test_create_refuses_a_role_or_profile_name_taken_by_someone_else(aws, tmp_path):
    iam = aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="acme-qa-app", Path=PATH, AssumeRolePolicyDocument=trust)
    iam.create_instance_profile(InstanceProfileName="acme-qa-app", Path=PATH)
    graph = graph_from_yaml(tmp_path, "roles:\n  app: {assumed_by: ec2}\n")
    ctx = make_ctx(aws)
    with pytest.raises(NotOurs, match="IAM role acme-qa-app"):
        by_kind("role").create(ctx, graph[Address("role", "app")])
    node = resolved(graph[Address("instance_profile", "app")], {Address("role", "app"): {"name": "acme-qa-app"}})
    with pytest.raises(NotOurs, match="IAM instance profile acme-qa-app"):
        by_kind("instance_profile").create(ctx, node)
    assert iam.list_role_policies(RoleName="acme-qa-app")["PolicyNames"] == []
    assert iam.get_instance_profile(InstanceProfileName="acme-qa-app")["InstanceProfile"]["Roles"] == []
