"""What envctl's own clients do when a call's connection breaks: which calls are sent again.

botocore re-sends any call whose connection broke. For a mutating call without an idempotency
token that makes a second VPC, or fails with "already exists" on what the first call made;
envctl's session hands those back to the caller (the executor looks, then adopts), and lets
botocore re-send reads and calls that carry a token. Also here: buckets tagged on create (the
emulator's stand-in for AWS's CreateBucketConfiguration.Tags), so a lost reply leaves a
bucket that is recognisably ours.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from envctl.aws import errors
from envctl.aws.session import AwsOptions, AwsSession
from envctl.sandbox.middleware import Fault
from tests.conftest import REGION

AMI = "ami-12c6146b"      # one of moto's built-in images


def session(faulty) -> AwsSession:
    return AwsSession(AwsOptions(endpoint_url=faulty.endpoint, access_key="testing", secret_key="testing"), REGION)


def vpcs(ec2) -> list[str]:
    return [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]]


@pytest.mark.parametrize("fault", [Fault.LOST_REPLY, Fault.DROP], ids=["lost-reply", "drop"])
def test_a_broken_create_without_a_token_is_handed_back_not_sent_again(faulty, fault):
    ec2 = session(faulty).client("ec2")
    faulty.faults.force(fault, action="CreateVpc")
    with pytest.raises(ConnectionClosedError) as raised:
        ec2.create_vpc(CidrBlock="10.8.0.0/16")
    assert errors.is_ambiguous(raised.value)
    assert faulty.log.count("CreateVpc") == (1 if fault is Fault.LOST_REPLY else 0)
    assert len(vpcs(ec2)) == faulty.log.count("CreateVpc")


def test_plain_botocore_sends_it_again_and_makes_two(faulty):
    # The bug the session prevents: the same call through a client without its hook.
    ec2 = faulty.client("ec2", attempts=3)
    faulty.faults.force(Fault.LOST_REPLY, action="CreateVpc")
    ec2.create_vpc(CidrBlock="10.8.0.0/16")
    assert len(vpcs(ec2)) == 2


def test_a_broken_call_with_an_idempotency_token_is_sent_again(faulty):
    ec2 = session(faulty).client("ec2")
    faulty.faults.force(Fault.LOST_REPLY, action="RunInstances")
    made = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]   # botocore fills ClientToken
    live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert live == [made["InstanceId"]]
    assert faulty.tokens.replayed["RunInstances"] == 1


@pytest.mark.parametrize("fault", [Fault.LOST_REPLY, Fault.DROP], ids=["lost-reply", "drop"])
def test_a_broken_read_is_sent_again(faulty, fault):
    ec2 = session(faulty).client("ec2")
    faulty.faults.force(fault, action="DescribeVpcs")
    assert ec2.describe_vpcs()["Vpcs"]
    assert [s.fault for s in faulty.faults.log.snapshot() if s.action == "DescribeVpcs"] == [fault, None]


def test_a_repeatable_item_write_is_sent_again(faulty):
    ddb = session(faulty).client("dynamodb")
    ddb.create_table(TableName="locks", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    faulty.faults.force(Fault.LOST_REPLY, action="PutItem")
    ddb.put_item(TableName="locks", Item={"k": {"S": "acme/qa"}, "token": {"S": "mine"}},
                 ConditionExpression="attribute_not_exists(k) OR #t = :mine",
                 ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":mine": {"S": "mine"}})
    assert faulty.log.count("PutItem") == 2
    assert ddb.get_item(TableName="locks", Key={"k": {"S": "acme/qa"}})["Item"]["token"] == {"S": "mine"}


def test_throttles_and_server_errors_are_still_retried_by_botocore(faulty):
    ec2 = session(faulty).client("ec2")
    faulty.faults.force(Fault.THROTTLE, action="CreateVpc")
    faulty.faults.force(Fault.ERROR_503, action="CreateVpc")
    ec2.create_vpc(CidrBlock="10.8.0.0/16")
    assert len(vpcs(ec2)) == 1 and faulty.log.count("CreateVpc") == 1


# ------------------------------------------------------------------ buckets tagged on create

TAGS = [{"Key": "envctl:project", "Value": "acme"}, {"Key": "envctl:environment", "Value": "qa"}]


def test_a_bucket_created_with_tags_carries_them(faulty):
    s3 = faulty.client("s3")
    s3.create_bucket(Bucket="tagged-on-create",
                     CreateBucketConfiguration={"LocationConstraint": REGION, "Tags": TAGS})
    assert s3.get_bucket_tagging(Bucket="tagged-on-create")["TagSet"] == TAGS
    assert s3.get_bucket_location(Bucket="tagged-on-create")["LocationConstraint"] == REGION


def test_a_bucket_created_without_tags_has_none(faulty):
    s3 = faulty.client("s3")
    s3.create_bucket(Bucket="plain", CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(ClientError) as raised:
        s3.get_bucket_tagging(Bucket="plain")
    assert raised.value.response["Error"]["Code"] == "NoSuchTagSet"


def test_a_bucket_whose_create_lost_its_reply_is_there_and_tagged(faulty):
    s3 = session(faulty).client("s3")
    faulty.faults.force(Fault.LOST_REPLY, action="PUT /lost-reply-bucket")
    with pytest.raises(ConnectionClosedError):
        s3.create_bucket(Bucket="lost-reply-bucket",
                         CreateBucketConfiguration={"LocationConstraint": REGION, "Tags": TAGS})
    assert s3.get_bucket_tagging(Bucket="lost-reply-bucket")["TagSet"] == TAGS
    with pytest.raises(ClientError) as raised:       # what a blind repeat meets, as on AWS
        s3.create_bucket(Bucket="lost-reply-bucket",
                         CreateBucketConfiguration={"LocationConstraint": REGION, "Tags": TAGS})
    assert raised.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"


def test_bucket_tags_on_create_in_us_east_1(faulty):
    s3 = faulty.client("s3", region="us-east-1")
    s3.create_bucket(Bucket="virginia", CreateBucketConfiguration={"Tags": TAGS})
    assert s3.get_bucket_tagging(Bucket="virginia")["TagSet"] == TAGS
    assert s3.get_bucket_location(Bucket="virginia")["LocationConstraint"] is None
