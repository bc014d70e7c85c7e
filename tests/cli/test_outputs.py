"""envctl outputs ENV: ids, ARNs, URLs and names of what exists, as aligned text or JSON."""
from __future__ import annotations

import json

import pytest

from tests.cli.conftest import SMALL_NETWORK

# SMALL_NETWORK ends in the indent that write_spec takes off: the queues continue it.
SPEC = SMALL_NETWORK + """\
queues:
      work-units: {}
    """


@pytest.fixture
def built(aws, envctl, write_spec):
    write_spec("qa.yaml", SPEC)
    result = envctl("create", "qa", "--yes")
    assert result.code == 0, result.stdout + result.stderr
    aws.log.clear()


def live(aws) -> dict[str, str]:
    """The ids, read back with plain boto3."""
    ec2 = aws.client("ec2")
    ours = [{"Name": "tag:envctl:environment", "Values": ["qa"]}]
    return {
        "vpc": ec2.describe_vpcs(Filters=ours)["Vpcs"][0]["VpcId"],
        "igw": ec2.describe_internet_gateways(Filters=ours)["InternetGateways"][0]["InternetGatewayId"],
        "subnet": ec2.describe_subnets(Filters=ours)["Subnets"][0]["SubnetId"],
        "rtb": ec2.describe_route_tables(Filters=ours)["RouteTables"][0]["RouteTableId"],
        "sg": ec2.describe_security_groups(Filters=ours)["SecurityGroups"][0]["GroupId"],
        "queue": aws.client("sqs").get_queue_url(QueueName="acme-qa-work-units")["QueueUrl"],
    }


def test_outputs_json(aws, built, envctl):
    ids = live(aws)

    result = envctl("outputs", "qa", "--json")

    assert result.code == 0
    assert json.loads(result.stdout) == {
        "version": 1, "project": "acme", "environment": "qa",
        "resources": {
            "internet_gateway/main": {"id": ids["igw"]},
            "queue/work-units": {"url": ids["queue"], "name": "acme-qa-work-units",
                                 "arn": "arn:aws:sqs:eu-north-1:123456789012:acme-qa-work-units"},
            "route_table/public": {"id": ids["rtb"]},
            "security_group/web": {"id": ids["sg"], "name": "acme-qa-web"},
            "subnet/public-a": {"id": ids["subnet"], "cidr_block": "10.40.0.0/24",
                                "availability_zone": "eu-north-1a"},
            "vpc/main": {"id": ids["vpc"], "cidr_block": "10.40.0.0/16"},
        }}
    assert list(json.loads(result.stdout)["resources"]) == sorted(json.loads(result.stdout)["resources"])
    assert aws.log.mutating() == []


def test_outputs_text_is_aligned_and_whole(aws, built, envctl):
    ids = live(aws)

    result = envctl("outputs", "qa")

    assert result.code == 0
    assert result.stdout == f"""\
resource               output             value
internet_gateway/main  id                 {ids["igw"]}
queue/work-units       arn                arn:aws:sqs:eu-north-1:123456789012:acme-qa-work-units
                       name               acme-qa-work-units
                       url                {ids["queue"]}
route_table/public     id                 {ids["rtb"]}
security_group/web     id                 {ids["sg"]}
                       name               acme-qa-web
subnet/public-a        availability_zone  eu-north-1a
                       cidr_block         10.40.0.0/24
                       id                 {ids["subnet"]}
vpc/main               cidr_block         10.40.0.0/16
                       id                 {ids["vpc"]}
"""
    assert result.stderr == ""


def test_outputs_of_an_environment_not_created(aws, envctl, write_spec):
    write_spec("qa.yaml", SPEC)

    text = envctl("outputs", "qa")
    as_json = envctl("outputs", "qa", "--json")

    assert (text.code, as_json.code) == (0, 0)
    assert text.stdout == "acme/qa has no resources; run `envctl create qa`\n"
    assert json.loads(as_json.stdout) == {"version": 1, "project": "acme", "environment": "qa", "resources": {}}


def test_outputs_refuses_a_foreign_account_like_every_command(aws, envctl, write_spec):
    write_spec("qa.yaml", SPEC.replace("123456789012", "210987654321"))

    result = envctl("outputs", "qa", "--json")

    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: the credentials belong to account 123456789012, but the spec pins ")
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]
