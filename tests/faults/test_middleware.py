"""The fault layers themselves, driven by real boto3 clients over HTTP.

Each protocol's throttle must be the one botocore recognises as throttling (so its
standard retry mode backs off and retries it); a dropped connection must not reach moto
and a lost reply must; EC2 client tokens must behave as on AWS; the same seed must give
the same faults.
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from envctl.aws import errors
from envctl.sandbox.middleware import AwsRequest, Fault, Latency, RateLimit, Rates
from envctl.sandbox.server import RECEIVED

AMI = "ami-12c6146b"      # one of moto's built-in images

# (client, operation, arguments, the action as logged, throttling code, HTTP status)
THROTTLES = [
    ("ec2", "describe_vpcs", {}, "DescribeVpcs", "RequestLimitExceeded", 503),
    ("iam", "list_roles", {}, "ListRoles", "Throttling", 400),
    ("sts", "get_caller_identity", {}, "GetCallerIdentity", "Throttling", 400),
    ("rds", "describe_db_instances", {}, "DescribeDBInstances", "Throttling", 400),
    ("autoscaling", "describe_auto_scaling_groups", {}, "DescribeAutoScalingGroups", "Throttling", 400),
    ("sns", "list_topics", {}, "ListTopics", "Throttling", 400),
    ("cloudwatch", "describe_alarms", {}, "DescribeAlarms", "ThrottlingException", 400),
    ("dynamodb", "list_tables", {}, "ListTables", "ThrottlingException", 400),
    ("sqs", "list_queues", {}, "ListQueues", "ThrottlingException", 400),
    ("logs", "describe_log_groups", {}, "DescribeLogGroups", "ThrottlingException", 400),
    ("events", "list_rules", {}, "ListRules", "ThrottlingException", 400),
    ("resourcegroupstaggingapi", "get_resources", {}, "GetResources", "ThrottlingException", 400),
    ("s3", "list_buckets", {}, "GET /", "SlowDown", 503),
    ("lambda", "list_functions", {}, "GET /2015-03-31/functions", "TooManyRequestsException", 429),
]


def throttle_verdicts(client) -> list[bool]:
    """botocore's own verdict, per attempt, on whether the answer was a throttle."""
    detector = ThrottlingErrorDetector(RetryEventAdapter())
    verdicts: list[bool] = []
    client.meta.events.register("needs-retry", lambda **kw: verdicts.append(detector.is_throttling_error(**kw)))
    return verdicts


@pytest.mark.parametrize("service, operation, kwargs, action, code, status", THROTTLES,
                         ids=[t[0] for t in THROTTLES])
def test_each_protocol_throttles_in_its_own_form_and_botocore_retries_it(faulty, service, operation, kwargs,
                                                                         action, code, status):
    once = faulty.client(service, attempts=1)
    verdicts = throttle_verdicts(once)
    faulty.faults.force(Fault.THROTTLE)
    with pytest.raises(ClientError) as raised:
        getattr(once, operation)(**kwargs)
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert verdicts == [True]
    assert errors.is_throttle(raised.value) and errors.is_transient(raised.value)

    faulty.faults.configure()
    retrying = faulty.client(service, attempts=3)
    faulty.faults.force(Fault.THROTTLE)
    answer = getattr(retrying, operation)(**kwargs)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [(s.action, s.fault) for s in faulty.faults.log.snapshot()] == [(action, Fault.THROTTLE), (action, None)]


SERVER_ERRORS = [
    ("ec2", "describe_vpcs", {}, {500: "InternalError", 503: "Unavailable"}),
    ("iam", "list_roles", {}, {500: "InternalFailure", 503: "ServiceUnavailable"}),
    ("sqs", "list_queues", {}, {500: "InternalFailure", 503: "ServiceUnavailable"}),
    ("s3", "list_buckets", {}, {500: "InternalError", 503: "ServiceUnavailable"}),
    ("lambda", "list_functions", {}, {500: "ServiceException", 503: "ServiceException"}),
]


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("service, operation, kwargs, codes", SERVER_ERRORS, ids=[e[0] for e in SERVER_ERRORS])
def test_server_errors_are_not_carried_out_and_are_retried(faulty, service, operation, kwargs, codes, status):
    fault = Fault.ERROR_500 if status == 500 else Fault.ERROR_503
    once = faulty.client(service, attempts=1)
    verdicts = throttle_verdicts(once)
    faulty.faults.force(fault)
    with pytest.raises(ClientError) as raised:
        getattr(once, operation)(**kwargs)
    assert raised.value.response["Error"]["Code"] == codes[status]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert verdicts == [False]                  # a server error, not a throttle
    assert errors.is_transient(raised.value)
    assert faulty.log.snapshot() == []           # moto never saw it

    faulty.faults.force(fault)
    answer = getattr(faulty.client(service, attempts=3), operation)(**kwargs)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_dropped_connection_is_not_carried_out(faulty):
    ec2 = faulty.client("ec2", attempts=1)
    faulty.faults.force(Fault.DROP, action="CreateVpc")
    with pytest.raises(ConnectionClosedError) as raised:
        ec2.create_vpc(CidrBlock="10.7.0.0/16")
    assert errors.is_ambiguous(raised.value)     # the client cannot tell a drop from a lost reply
    assert faulty.log.count("CreateVpc") == 0
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.7.0.0/16"] == []


def test_a_lost_reply_is_carried_out(faulty):
    sqs = faulty.client("sqs", attempts=1)
    faulty.faults.force(Fault.LOST_REPLY, action="CreateQueue")
    with pytest.raises(ConnectionClosedError) as raised:
        sqs.create_queue(QueueName="lost-reply")
    assert errors.is_ambiguous(raised.value)
    assert faulty.log.count("CreateQueue") == 1
    assert [u.rsplit("/", 1)[-1] for u in sqs.list_queues()["QueueUrls"]] == ["lost-reply"]
    assert faulty.faults.log.injected() == [faulty.faults.log.snapshot()[0]]


def test_botocore_retries_a_lost_reply_so_a_call_without_token_is_made_twice(faulty):
    # Why envctl must look by tag before creating again: this is what a bare retry does.
    ec2 = faulty.client("ec2", attempts=3)
    faulty.faults.force(Fault.LOST_REPLY, action="CreateVpc")
    made = ec2.create_vpc(CidrBlock="10.8.0.0/16")
    assert made["ResponseMetadata"]["RetryAttempts"] == 1
    assert faulty.log.count("CreateVpc") == 2
    assert len([v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.8.0.0/16"]) == 2


# ------------------------------------------------------------------ EC2 client tokens

def running(ec2) -> list[str]:
    return [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]


def test_a_lost_reply_of_a_call_with_a_token_is_answered_again_without_a_second_instance(faulty):
    ec2 = faulty.client("ec2", attempts=3)
    faulty.faults.force(Fault.LOST_REPLY, action="RunInstances")
    made = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="token-1")
    assert made["ResponseMetadata"]["RetryAttempts"] == 1
    assert running(ec2) == [made["Instances"][0]["InstanceId"]]
    assert faulty.log.count("RunInstances") == 1
    assert faulty.tokens.replayed["RunInstances"] == 1


def test_the_same_token_and_parameters_get_the_first_answer(faulty):
    ec2 = faulty.client("ec2")
    first = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="token-2")["Instances"][0]
    again = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="token-2")["Instances"][0]
    other = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="token-3")["Instances"][0]
    assert again["InstanceId"] == first["InstanceId"] != other["InstanceId"]
    assert sorted(running(ec2)) == sorted([first["InstanceId"], other["InstanceId"]])
    assert faulty.log.count("RunInstances") == 2


def test_the_same_token_with_other_parameters_is_a_mismatch(faulty):
    ec2 = faulty.client("ec2")
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="token-4")
    with pytest.raises(ClientError) as raised:
        ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.large", ClientToken="token-4")
    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(running(ec2)) == 1


def test_a_nat_gateway_retried_after_a_lost_reply_is_one_gateway(faulty):
    # moto alone answers the retry with Resource.AlreadyAssociated (the address is taken).
    ec2 = faulty.client("ec2", attempts=3)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    faulty.faults.force(Fault.LOST_REPLY, action="CreateNatGateway")
    made = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation, ClientToken="nat-token")["NatGateway"]
    live = [n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"]
    assert live == [made["NatGatewayId"]]


def test_tokens_belong_to_a_region_and_are_forgotten_on_reset(faulty):
    here, there = faulty.client("ec2"), faulty.client("ec2", region="us-east-1")
    first = here.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="token-5")["Instances"][0]
    elsewhere = there.run_instances(ImageId=AMI, MinCount=1, MaxCount=1,
                                    ClientToken="token-5")["Instances"][0]
    assert elsewhere["InstanceId"] != first["InstanceId"] and len(running(there)) == 1
    faulty.server.reset()
    after = here.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="token-5")["Instances"][0]
    assert running(here) == [after["InstanceId"]] and after["InstanceId"] != first["InstanceId"]


# ------------------------------------------------------------------ the seed, the filters, the other layers

def fates(faulty, calls: list[str], seed: int) -> dict[str, list]:
    """Make `calls` (sts / sqs, no retries) under one seed; the decisions per action."""
    faulty.faults.configure(Rates(throttle=0.2, error_500=0.1, error_503=0.1, drop=0.1), seed=seed)
    sts, sqs = faulty.client("sts", attempts=1), faulty.client("sqs", attempts=1)
    for call in calls:
        try:
            sts.get_caller_identity() if call == "sts" else sqs.list_queues()
        except (ClientError, ConnectionClosedError):
            pass
    out: dict[str, list] = {}
    for seen in faulty.faults.log.snapshot():
        out.setdefault(seen.action, []).append(seen.fault)
    return out


def test_the_same_seed_gives_each_actions_calls_the_same_faults(faulty):
    alone = fates(faulty, ["sts"] * 30, seed=11)
    again = fates(faulty, ["sts"] * 30, seed=11)
    interleaved = fates(faulty, ["sts", "sqs"] * 30, seed=11)
    other_seed = fates(faulty, ["sts"] * 30, seed=12)
    assert alone == again
    assert interleaved["GetCallerIdentity"] == alone["GetCallerIdentity"]   # other actions do not shift it
    assert other_seed != alone
    assert {f for f in alone["GetCallerIdentity"]} >= {None, Fault.THROTTLE}


def test_filters_choose_which_calls_may_fail(faulty):
    faulty.faults.configure(Rates(throttle=1.0), only_mutating=True, services={"sqs"})
    sqs, ec2 = faulty.client("sqs", attempts=1), faulty.client("ec2", attempts=1)
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
    ec2.create_vpc(CidrBlock="10.6.0.0/16")
    with pytest.raises(ClientError) as raised:
        sqs.create_queue(QueueName="filtered")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert [(s.action, s.fault) for s in faulty.faults.log.snapshot()] == [
        ("ListQueues", None), ("CreateVpc", None), ("CreateQueue", Fault.THROTTLE)]

    faulty.faults.configure(Rates(throttle=1.0), actions={"DescribeVpcs"})
    assert ec2.describe_subnets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError):
        ec2.describe_vpcs()


def test_the_emulators_control_api_is_never_faulted(faulty):
    faulty.faults.configure(Rates(drop=1.0))
    faulty.server.reset()
    faulty.server.configure({"lambda": {"use_docker": False}})
    assert faulty.faults.log.snapshot() == []


def test_rates_are_checked():
    with pytest.raises(ValueError):
        Rates(throttle=0.7, drop=0.4)
    with pytest.raises(ValueError):
        Rates(error_500=-0.1)
    rates = Rates(throttle=0.1, error_500=0.1, lost_reply=0.1)
    assert [rates.pick(d) for d in (0.05, 0.15, 0.25, 0.35)] == [Fault.THROTTLE, Fault.ERROR_500,
                                                                 Fault.LOST_REPLY, None]


def test_latency_is_seeded_and_logged(faulty):
    faulty.latency.configure(seconds=0.005, jitter=0.01, seed=5)
    sts = faulty.client("sts")
    for _ in range(3):
        sts.get_caller_identity()
    first = list(faulty.latency.delays)
    faulty.latency.configure(seconds=0.005, jitter=0.01, seed=5)
    for _ in range(3):
        sts.get_caller_identity()
    assert faulty.latency.delays == first
    assert len(first) == 3 and all(0.005 <= d <= 0.015 for d in first) and len(set(first)) == 3


def test_rate_limits_throttle_per_action_in_the_protocols_form(faulty):
    faulty.limits.configure({"sqs:ListQueues": 0.001, "ec2:*": 0.001}, burst=2)
    sqs, ec2 = faulty.client("sqs", attempts=1), faulty.client("ec2", attempts=1)
    sqs.list_queues()
    sqs.list_queues()
    with pytest.raises(ClientError) as raised:
        sqs.list_queues()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    sqs.create_queue(QueueName="not-limited")
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    ec2.describe_subnets()                    # its own bucket
    with pytest.raises(ClientError) as raised:
        ec2.describe_vpcs()
    assert raised.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert dict(faulty.limits.throttled) == {"sqs:ListQueues": 1, "ec2:DescribeVpcs": 1}


def test_rate_limits_count_a_call_when_it_reached_the_machine():
    """Calls that arrived a second apart are within 1 a second, however late the emulator's
    threads got to them; a stamp from before the bucket's last look counts as that look."""
    limits = RateLimit({"sqs:ListQueues": 1.0}).around(lambda environ, start_response: [b"ok"])
    request = AwsRequest(service="sqs", action="ListQueues", region="eu-north-1", mutating=False, protocol="json",
                         account="testing", content_type="application/x-amz-json-1.0", body=b"{}")

    def call(**environ):
        return limits.handle(request, environ, lambda status, headers: None)

    now = time.monotonic()
    assert call(**{RECEIVED: now - 2.0}) == [b"ok"]
    assert call(**{RECEIVED: now - 1.0}) == [b"ok"]             # a second later, seen just now
    assert call(**{RECEIVED: now - 1.5}) != [b"ok"]             # out of order: no token back in time
    assert call() == [b"ok"]                                    # unstamped: now, a second after the last…
    assert call() != [b"ok"]                                    # …and at once after that
    assert dict(limits.throttled) == {"sqs:ListQueues": 2}


# ------------------------------------------------------------------ repeated calls answered as AWS does

def test_a_repeated_auto_scaling_group_is_already_there(faulty):
    autoscaling = faulty.client("autoscaling", attempts=3)
    ec2 = faulty.client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={"ImageId": AMI})
    group = dict(AutoScalingGroupName="group", MinSize=1, MaxSize=1, AvailabilityZones=["eu-north-1a"],
                 LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]})
    faulty.faults.force(Fault.LOST_REPLY, action="CreateAutoScalingGroup")
    with pytest.raises(ClientError) as raised:           # the retry meets the group the first call made
        autoscaling.create_auto_scaling_group(**group)
    assert raised.value.response["Error"]["Code"] == "AlreadyExists"
    assert errors.is_already_exists(raised.value)
    assert faulty.log.count("CreateAutoScalingGroup") == 1 and len(running(ec2)) == 1

    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="group", ForceDelete=True)
    autoscaling.create_auto_scaling_group(**group)        # gone, so it may be made again


def test_a_repeated_lambda_permission_is_a_conflict(faulty):
    functions = faulty.client("lambda")
    role = faulty.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = functions.create_function(FunctionName="fn", Runtime="python3.12", Role=role, Handler="h.main",
                                    Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    permission = dict(StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    functions.add_permission(FunctionName=arn, **permission)
    with pytest.raises(ClientError) as raised:
        functions.add_permission(FunctionName="fn", **permission)
    assert raised.value.response["Error"]["Code"] == "ResourceConflictException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    functions.remove_permission(FunctionName="fn", StatementId="s3")
    functions.add_permission(FunctionName="fn", **permission)


def test_a_repeated_metric_filter_is_still_one_filter(faulty):
    logs = faulty.client("logs", attempts=3)
    logs.create_log_group(logGroupName="app")
    metric = {"metricName": "Errors", "metricNamespace": "app", "metricValue": "1"}
    faulty.faults.force(Fault.LOST_REPLY, action="PutMetricFilter")
    logs.put_metric_filter(logGroupName="app", filterName="errors", filterPattern="ERROR",
                           metricTransformations=[metric])
    assert faulty.repeats.answered["PutMetricFilter"] == 1
    filters = logs.describe_metric_filters(logGroupName="app")["metricFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in filters] == [("errors", "ERROR")]


def test_latency_says_how_much_later_than_its_latency_the_emulator_answered():
    def moto_taking(seconds):
        def app(environ, start_response):
            time.sleep(seconds)
            start_response("200 OK", [])
            return [b"answer"]
        return app

    latency = Latency(seconds=0.03)
    answers = []
    for took in (0.0, 0.08):
        latency.around(moto_taking(took))
        answers.append(latency.handle(None, {}, lambda status, headers: None))

    assert answers == [[b"answer"], [b"answer"]]
    on_time, late = latency.answered_late()
    assert on_time == 0.0 and 0.045 <= late < 0.5
    assert latency.answered_late() == []                # each lateness is said once
