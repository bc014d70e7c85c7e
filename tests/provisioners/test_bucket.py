"""S3 buckets: the lifecycle against moto server.

The role and queue the spec refers to are made by hand with plain boto3 and stand in for
their nodes; the function a bucket notifies is made by envctl's own provisioner.
Shaped by MOTO-NOTES: objects are written only while the bucket has no policy (§4: moto
refuses object operations under a policy with a Condition, so the teardown must drop the
policy before emptying, or it fails here); a tagged bucket in another region stands in for
moto's cross-region leak in the Tagging API (§1).
"""
from __future__ import annotations

import json

import pytest

from envctl.aws.session import AwsOptions, AwsSession
from envctl.model.address import Address
from envctl.provisioners import by_kind
from envctl.provisioners.base import Ctx, NotOurs
from tests.provisioners.harness import (create_all, delete_all, diff_all, discover, graph_from_yaml, make_ctx,
                                        outputs_of, resolved, stand_in_queue, stand_in_role, tags_of)

SPEC = """\
tags: {Owner: platform-team}
roles:
  ingest: {assumed_by: lambda}
queues:
  work-units: {}
functions:
  ingest: {runtime: python3.12, handler: handler.main, source: functions/ingest, role: ingest}
buckets:
  uploads:
    versioning: true
    lifecycle:
      - {prefix: tmp/, expire_days: 7, abort_incomplete_upload_days: 1}
      - {noncurrent_expire_days: 30, transition_days: 60, storage_class: GLACIER}
    notify:
      - {function: ingest, events: [created], prefix: incoming/, suffix: .xml}
      - {queue: work-units, events: [removed, restored]}
  archive:
    name: acme-qa-long-term-archive
"""
FILES = {"functions/ingest/handler.py": "def main(event, context):\n    pass\n"}
UPLOADS = "acme-qa-uploads"
ARCHIVE = "acme-qa-long-term-archive"
ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}


def stand_ins(aws) -> dict[Address, dict]:
    """The role and queue, made by hand: their outputs as their provisioners would give them."""
    return {Address("role", "ingest"): stand_in_role(aws, "acme-qa-ingest"),
            Address("queue", "work-units"): stand_in_queue(aws, "acme-qa-work-units")}


def _tags(s3, name):
    return tags_of(s3.get_bucket_tagging(Bucket=name)["TagSet"])


def _sub(call, name, key):
    try:
        return call(Bucket=name)[key]
    except Exception:
        return None


def _ours(tags, address):
    return [{"Key": "envctl:project", "Value": "acme"}, {"Key": "envctl:environment", "Value": "qa"},
            {"Key": "envctl:resource", "Value": address}] + [{"Key": k, "Value": v} for k, v in tags.items()]


def test_lifecycle(aws, tmp_path):
    s3, s3_us = aws.client("s3"), aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="acme-qa-foreign", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    s3_us.create_bucket(Bucket="acme-qa-other-region")                 # tagged as ours, in another region
    s3_us.put_bucket_tagging(Bucket="acme-qa-other-region", Tagging={"TagSet": _ours({}, "bucket/other")})
    given = stand_ins(aws)
    queue_arn = given[Address("queue", "work-units")]["arn"]
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    ctx = make_ctx(aws)

    # create, read back with plain boto3
    created = create_all(ctx, graph, given)
    function_arn = created[Address("function", "ingest")].outputs["arn"]
    for name in (UPLOADS, ARCHIVE):
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-north-1"
        assert s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == ALL_BLOCKED
        assert s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"] == [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
        (statement,) = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
        assert statement == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                             "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert _tags(s3, UPLOADS) == {"envctl:project": "acme", "envctl:environment": "qa",
                                  "envctl:resource": "bucket/uploads", "Owner": "platform-team"}
    assert _tags(s3, ARCHIVE)["envctl:resource"] == "bucket/archive"
    assert s3.get_bucket_versioning(Bucket=UPLOADS)["Status"] == "Enabled"
    assert "Status" not in s3.get_bucket_versioning(Bucket=ARCHIVE)       # never versioned
    rules = sorted(s3.get_bucket_lifecycle_configuration(Bucket=UPLOADS)["Rules"], key=lambda r: r["ID"])
    assert [(r["Filter"], r["Status"], r.get("Expiration"), r.get("NoncurrentVersionExpiration"),
             r.get("Transitions"), r.get("AbortIncompleteMultipartUpload")) for r in rules] == [
        ({"Prefix": "tmp/"}, "Enabled", {"Days": 7}, None, None, {"DaysAfterInitiation": 1}),
        ({"Prefix": ""}, "Enabled", None, {"NoncurrentDays": 30}, [{"Days": 60, "StorageClass": "GLACIER"}], None)]
    assert _sub(s3.get_bucket_lifecycle_configuration, ARCHIVE, "Rules") is None
    notifications = s3.get_bucket_notification_configuration(Bucket=UPLOADS)
    (to_function,) = notifications["LambdaFunctionConfigurations"]
    assert (to_function["LambdaFunctionArn"], to_function["Events"]) == (function_arn, ["s3:ObjectCreated:*"])
    assert to_function["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"},
                                                           {"Name": "suffix", "Value": ".xml"}]
    (to_queue,) = notifications["QueueConfigurations"]
    assert (to_queue["QueueArn"], sorted(to_queue["Events"])) == (queue_arn,
                                                                  ["s3:ObjectRemoved:*", "s3:ObjectRestore:*"])
    assert "Filter" not in to_queue
    assert by_kind("bucket").outputs(created[Address("bucket", "archive")]) == {
        "name": ARCHIVE, "arn": f"arn:aws:s3:::{ARCHIVE}", "domain_name": f"{ARCHIVE}.s3.eu-north-1.amazonaws.com"}

    # discover finds exactly ours in this region, in sync, with no mutating call
    aws.log.clear()
    found = discover(ctx, ["bucket", "function", "log_group"])
    assert sorted(map(str, found)) == ["bucket/archive", "bucket/uploads", "function/ingest",
                                       "log_group/function-ingest"]
    assert diff_all(graph, found, given) == {}
    assert aws.log.mutating() == []
    # This region's buckets named by one ListBuckets, not a GetBucketLocation each: six reads a bucket.
    assert aws.log.count("GET /") == 1
    assert aws.log.count(f"GET /{UPLOADS}") == 6 and aws.log.count(f"GET /{ARCHIVE}") == 6

    # drift by hand: exactly those fields
    s3.put_public_access_block(Bucket=UPLOADS, PublicAccessBlockConfiguration={**ALL_BLOCKED,
                                                                               "BlockPublicPolicy": False})
    s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_policy(Bucket=UPLOADS)
    s3.put_bucket_notification_configuration(Bucket=UPLOADS, NotificationConfiguration={
        "QueueConfigurations": [to_queue]})
    s3.put_bucket_encryption(Bucket=ARCHIVE, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]})
    found = discover(ctx, ["bucket", "function", "log_group"])
    drift = diff_all(graph, found, given)
    assert {str(a): sorted(c.path for c in changes) for a, changes in drift.items()} == {
        "bucket/uploads": ["block_public_policy", "notifications", "policy", "versioning"],
        "bucket/archive": ["bucket_key_enabled"]}
    assert next(c for c in drift[Address("bucket", "uploads")] if c.path == "policy").before is None

    # objects while there is no policy (MOTO-NOTES §4): versions and a delete marker to empty later
    s3.put_object(Bucket=UPLOADS, Key="incoming/a.xml", Body=b"1")
    s3.put_object(Bucket=UPLOADS, Key="incoming/a.xml", Body=b"2")
    s3.delete_object(Bucket=UPLOADS, Key="incoming/a.xml")

    # update repairs it
    for address, changes in drift.items():
        by_kind("bucket").update(ctx, found[address], resolved(graph[address], outputs_of(created, given)),
                                 changes)
    found = discover(ctx, ["bucket", "function", "log_group"])
    assert diff_all(graph, found, given) == {}
    assert s3.get_public_access_block(Bucket=UPLOADS)["PublicAccessBlockConfiguration"] == ALL_BLOCKED
    assert s3.get_bucket_versioning(Bucket=UPLOADS)["Status"] == "Enabled"

    # deleted out of band: gone from discovery, read says None
    s3.delete_bucket_policy(Bucket=ARCHIVE)
    s3.delete_bucket(Bucket=ARCHIVE)
    found = discover(ctx, ["bucket", "function", "log_group"])
    assert Address("bucket", "archive") not in found
    assert by_kind("bucket").read(ctx, ARCHIVE) is None

    # delete_all empties (policy first, or moto refuses the deletes) and leaves nothing tagged here
    delete_all(ctx, found, graph)
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["acme-qa-foreign", "acme-qa-other-region"]
    tagged = aws.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "envctl:environment", "Values": ["qa"]}])["ResourceTagMappingList"]
    assert {r["ResourceARN"] for r in tagged} <= {"arn:aws:s3:::acme-qa-other-region"}   # moto's leak, if any
    by_kind("bucket").delete(ctx, found[Address("bucket", "uploads")])   # already gone: fine


def test_delete_empties_a_versioned_bucket_under_its_policy(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "buckets:\n  logs: {versioning: true}\n")
    ctx = make_ctx(aws)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="acme-qa-logs", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    for i in range(3):                               # before the policy (MOTO-NOTES §4)
        s3.put_object(Bucket="acme-qa-logs", Key=f"k{i}", Body=b"x")
    s3.put_bucket_tagging(Bucket="acme-qa-logs", Tagging={"TagSet": _ours({}, "bucket/logs")})
    by_kind("bucket").create(ctx, graph[Address("bucket", "logs")])  # adopts it and applies the policy
    assert "Policy" in s3.get_bucket_policy(Bucket="acme-qa-logs")

    aws.log.clear()
    by_kind("bucket").delete(ctx, by_kind("bucket").read(ctx, "acme-qa-logs"))
    assert s3.list_buckets()["Buckets"] == []
    mutating = [(c.action.split()[0], c.status) for c in aws.log.mutating()]
    # The bucket (refused: not empty), then its policy, notifications, objects, and the bucket again.
    assert mutating == [("DELETE", 409), ("DELETE", 204), ("PUT", 200), ("POST", 200), ("DELETE", 204)]


def test_delete_of_an_empty_bucket_is_one_call(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "buckets:\n  logs: {versioning: true}\n")
    ctx = make_ctx(aws)
    bucket = by_kind("bucket")
    observed = bucket.wait(ctx, bucket.create(ctx, graph[Address("bucket", "logs")]), "ready")
    assert observed.props.policy is not None               # its policy and all go with it

    aws.log.clear()
    bucket.delete(ctx, observed)
    assert [c.action.split()[0] for c in aws.log.snapshot()] == ["DELETE"]
    assert aws.client("s3").list_buckets()["Buckets"] == []


def test_create_adopts_our_existing_bucket(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, "buckets:\n  data: {}\n")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="acme-qa-data", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    s3.put_bucket_tagging(Bucket="acme-qa-data", Tagging={"TagSet": _ours({}, "bucket/data")})
    aws.log.clear()

    assert by_kind("bucket").create(make_ctx(aws), graph[Address("bucket", "data")]) == "acme-qa-data"
    assert aws.log.count("PUT /acme-qa-data") >= 1 and [b["Name"] for b in s3.list_buckets()["Buckets"]] == [
        "acme-qa-data"]
    assert s3.get_public_access_block(Bucket="acme-qa-data")["PublicAccessBlockConfiguration"] == ALL_BLOCKED
    assert "DenyInsecureTransport" in s3.get_bucket_policy(Bucket="acme-qa-data")["Policy"]


@pytest.mark.parametrize("tags", [None, [{"Key": "team", "Value": "someone-else"}]])
def test_create_refuses_a_bucket_that_is_not_ours(aws, tmp_path, tags):
    # Untagged covers a create that crashed before put_bucket_tagging too: find (by name) sees
    # it, discovery (by tag) cannot, and envctl will not claim it.
    graph = graph_from_yaml(tmp_path, "buckets:\n  data: {}\n")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="acme-qa-data", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    if tags:
        s3.put_bucket_tagging(Bucket="acme-qa-data", Tagging={"TagSet": tags})
    ctx = make_ctx(aws)
    node = graph[Address("bucket", "data")]
    assert by_kind("bucket").find(ctx, node).tags == {t["Key"]: t["Value"] for t in tags or []}
    aws.log.clear()

    with pytest.raises(NotOurs):
        by_kind("bucket").create(ctx, node)
    # Created first: the taken name is refused (nothing changes), then looked at and refused.
    assert [(c.action, c.status) for c in aws.log.mutating()] == [("PUT /acme-qa-data", 409)]
    assert _sub(s3.get_bucket_policy, "acme-qa-data", "Policy") is None
    assert _sub(s3.get_bucket_tagging, "acme-qa-data", "TagSet") == tags      # left as it was


def test_create_in_us_east_1_looks_first(aws, tmp_path):
    # There, creating a bucket one already owns succeeds silently: the look comes first.
    graph = graph_from_yaml(tmp_path, "buckets:\n  data: {}\n")
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="acme-qa-data")
    session = AwsSession(AwsOptions(endpoint_url=aws.endpoint, region="us-east-1"), "us-east-1")
    session.scope = ("acme", "qa")
    aws.log.clear()

    with pytest.raises(NotOurs):
        by_kind("bucket").create(Ctx(aws=session, project="acme", environment="qa"), graph[Address("bucket", "data")])
    assert aws.log.mutating() == []
    assert _sub(s3.get_bucket_tagging, "acme-qa-data", "TagSet") is None


def test_create_in_us_east_1(aws, tmp_path):
    # us-east-1 takes no LocationConstraint, and reports none.
    graph = graph_from_yaml(tmp_path, "buckets:\n  data: {}\n")
    session = AwsSession(AwsOptions(endpoint_url=aws.endpoint, region="us-east-1"), "us-east-1")
    session.scope = ("acme", "qa")
    ctx = Ctx(aws=session, project="acme", environment="qa")
    bucket = by_kind("bucket")

    observed = bucket.wait(ctx, bucket.create(ctx, graph[Address("bucket", "data")]), "ready")
    assert aws.client("s3", "us-east-1").get_bucket_location(Bucket="acme-qa-data")["LocationConstraint"] is None
    assert observed.outputs["domain_name"] == "acme-qa-data.s3.us-east-1.amazonaws.com"
    assert [str(o.address) for o in bucket.discover(ctx)] == ["bucket/data"]
    assert list(bucket.discover(make_ctx(aws))) == []                # not in eu-north-1


def test_update_tags_keeps_envctls_own(aws, tmp_path):
    # put_bucket_tagging replaces the whole tag set: envctl's ownership tags must go with it.
    graph = graph_from_yaml(tmp_path, "tags: {Owner: a}\nbuckets:\n  data: {}\n")
    ctx = make_ctx(aws)
    bucket = by_kind("bucket")
    observed = bucket.wait(ctx, bucket.create(ctx, graph[Address("bucket", "data")]), "ready")

    bucket.update_tags(ctx, observed, {"CostCenter": "4711"})
    assert _tags(aws.client("s3"), "acme-qa-data") == {"envctl:project": "acme", "envctl:environment": "qa",
                                                       "envctl:resource": "bucket/data", "CostCenter": "4711"}
