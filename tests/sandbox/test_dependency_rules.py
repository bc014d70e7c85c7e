"""The emulator refuses, as AWS does, deletes that something still depends on.

Each test builds the situation with plain boto3, asserts the delete is refused with AWS's code
(HTTP 400, parsed by botocore from the protocol's own error format), then removes the
dependency and asserts the same delete succeeds. Rules moto enforces itself are tested too,
so that a moto upgrade that loses one is noticed.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

AMI = "ami-0123456789abcdef0"
OTHER_ACCOUNT = "111111111111"
OTHER_REGION = "us-east-1"


def refused(call, code: str, status: int = 400, **params) -> ClientError:
    """`call(**params)` fails with AWS's `code` and HTTP `status` (409 for IAM DeleteConflict, S3 BucketNotEmpty)."""
    with pytest.raises(ClientError) as e:
        call(**params)
    assert e.value.response["Error"]["Code"] == code, e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return e.value


def network(ec2, cidr: str = "10.0.0.0/16") -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
    return vpc, subnet


def instance(ec2, subnet: str, **extra) -> str:
    return ec2.run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
                             **extra)["Instances"][0]["InstanceId"]


def nat_gateway(ec2, subnet: str) -> tuple[str, str]:
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]["NatGatewayId"], allocation


def database(aws, subnets: list[str], security_groups: list[str] = (), name: str = "data",
             region: str | None = None) -> str:
    rds = aws.client("rds", region or aws.region)
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="data", SubnetIds=subnets)
    return rds.create_db_instance(DBInstanceIdentifier=f"{name}-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                                  AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="secret-password",
                                  DBSubnetGroupName=name,
                                  VpcSecurityGroupIds=list(security_groups))["DBInstance"]["DBInstanceIdentifier"]


def subnet_pair(ec2) -> tuple[str, list[str]]:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate(zones)]
    return vpc, subnets


def as_account(client, account: str):
    client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", account))
    return client


# ------------------------------------------------------------------ subnets

def test_subnet_with_an_instance(aws):
    ec2 = aws.client("ec2")
    _, subnet = network(ec2)
    server = instance(ec2, subnet)

    error = refused(ec2.delete_subnet, "DependencyViolation", SubnetId=subnet)
    assert error.response["Error"]["Message"] == f"The subnet '{subnet}' has dependencies and cannot be deleted."
    assert [(r.action, r.target, r.blockers) for r in aws.server.rules.refused] == [
        ("DeleteSubnet", subnet, (server,))]
    assert aws.log.snapshot()[-1].status == 400

    ec2.terminate_instances(InstanceIds=[server])
    ec2.delete_subnet(SubnetId=subnet)
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["Subnets"] == []


def test_subnet_with_a_nat_gateway(aws):
    ec2 = aws.client("ec2")
    _, subnet = network(ec2)
    nat, _ = nat_gateway(ec2, subnet)

    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=subnet)

    ec2.delete_nat_gateway(NatGatewayId=nat)
    ec2.delete_subnet(SubnetId=subnet)


def test_subnet_with_a_network_interface(aws):
    ec2 = aws.client("ec2")
    _, subnet = network(ec2)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]

    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=subnet)

    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_subnet(SubnetId=subnet)


def test_subnet_of_a_live_database(aws):
    ec2 = aws.client("ec2")
    _, subnets = subnet_pair(ec2)
    db = database(aws, subnets)

    for subnet in subnets:
        refused(ec2.delete_subnet, "DependencyViolation", SubnetId=subnet)

    aws.client("rds").delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)
    ec2.delete_subnet(SubnetId=subnets[0])


# ------------------------------------------------------------------ security groups

def test_security_group_of_an_instance(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    server = instance(ec2, subnet, SecurityGroupIds=[group])

    error = refused(ec2.delete_security_group, "DependencyViolation", GroupId=group)
    assert error.response["Error"]["Message"] == f"resource {group} has a dependent object"

    ec2.terminate_instances(InstanceIds=[server])
    ec2.delete_security_group(GroupId=group)


def test_security_group_of_a_network_interface(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[group])["NetworkInterface"]["NetworkInterfaceId"]

    refused(ec2.delete_security_group, "DependencyViolation", GroupId=group)

    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_security_group(GroupId=group)


def test_security_group_of_a_database(aws):
    ec2 = aws.client("ec2")
    vpc, subnets = subnet_pair(ec2)
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    db = database(aws, subnets, [group])

    refused(ec2.delete_security_group, "DependencyViolation", GroupId=group)

    aws.client("rds").delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)
    ec2.delete_security_group(GroupId=group)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_security_group_referenced_by_another_groups_rule(aws, direction):
    ec2 = aws.client("ec2")
    vpc, _ = network(ec2)
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app}]}]
    authorize = ec2.authorize_security_group_ingress if direction == "ingress" else ec2.authorize_security_group_egress
    revoke = ec2.revoke_security_group_ingress if direction == "ingress" else ec2.revoke_security_group_egress
    authorize(GroupId=db, IpPermissions=rule)

    refused(ec2.delete_security_group, "DependencyViolation", GroupId=app)
    assert aws.server.rules.refused[-1].blockers == (db,)

    revoke(GroupId=db, IpPermissions=rule)
    ec2.delete_security_group(GroupId=app)


def test_security_group_that_references_itself_or_is_in_a_launch_template(aws):
    ec2 = aws.client("ec2")
    vpc, _ = network(ec2)
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": group}]}])
    ec2.create_launch_template(LaunchTemplateName="app", LaunchTemplateData={
        "ImageId": AMI, "SecurityGroupIds": [group]})

    ec2.delete_security_group(GroupId=group)
    assert aws.server.rules.refused == []


# ------------------------------------------------------------------ internet gateways, VPCs, addresses

def attached_gateway(ec2, vpc: str) -> str:
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    return igw


def test_internet_gateway_while_a_nat_gateway_maps_a_public_address(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    igw = attached_gateway(ec2, vpc)
    nat, allocation = nat_gateway(ec2, subnet)

    error = refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=vpc)
    assert error.response["Error"]["Message"] == (
        f"Network {vpc} has some mapped public address(es). "
        "Please unmap those public address(es) before detaching the gateway.")
    refused(ec2.delete_internet_gateway, "DependencyViolation", InternetGatewayId=igw)   # attached (moto's rule)

    ec2.delete_nat_gateway(NatGatewayId=nat)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.release_address(AllocationId=allocation)


def test_internet_gateway_while_an_instance_has_a_public_ip(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    igw = attached_gateway(ec2, vpc)
    server = ec2.run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True}])["Instances"][0]
    assert server.get("PublicIpAddress")

    refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=vpc)

    ec2.terminate_instances(InstanceIds=[server["InstanceId"]])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)


def test_internet_gateway_while_an_elastic_ip_is_associated_to_an_instance(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    igw = attached_gateway(ec2, vpc)
    server = instance(ec2, subnet)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    association = ec2.associate_address(AllocationId=allocation, InstanceId=server)["AssociationId"]

    refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=vpc)

    ec2.disassociate_address(AssociationId=association)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)


def test_internet_gateway_of_a_vpc_without_public_addresses(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    other_vpc, other_subnet = network(ec2, "10.9.0.0/16")
    igw = attached_gateway(ec2, vpc)
    instance(ec2, subnet)                                              # private: no public address
    nat_gateway(ec2, other_subnet)                                     # maps an address in another VPC

    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    assert aws.server.rules.refused == []


def test_vpc_with_an_attached_gateway_security_groups_or_subnets(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    igw = attached_gateway(ec2, vpc)
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]

    error = refused(ec2.delete_vpc, "DependencyViolation", VpcId=vpc)
    assert error.response["Error"]["Message"] == f"The vpc '{vpc}' has dependencies and cannot be deleted."
    ec2.delete_subnet(SubnetId=subnet)
    refused(ec2.delete_vpc, "DependencyViolation", VpcId=vpc)
    assert aws.server.rules.refused[-1].blockers == (igw, group)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    refused(ec2.delete_vpc, "DependencyViolation", VpcId=vpc)
    ec2.delete_security_group(GroupId=group)

    ec2.delete_vpc(VpcId=vpc)                                          # the default group goes with it


def test_vpc_with_a_subnet_or_a_route_table_is_refused_by_moto_itself(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    refused(ec2.delete_vpc, "DependencyViolation", VpcId=vpc)
    ec2.delete_subnet(SubnetId=subnet)
    refused(ec2.delete_vpc, "DependencyViolation", VpcId=vpc)
    ec2.delete_route_table(RouteTableId=table)
    ec2.delete_vpc(VpcId=vpc)
    assert aws.server.rules.refused == []


def test_elastic_ip_of_a_nat_gateway(aws):
    ec2 = aws.client("ec2")
    _, subnet = network(ec2)
    nat, allocation = nat_gateway(ec2, subnet)

    error = refused(ec2.release_address, "AuthFailure", AllocationId=allocation)
    assert error.response["Error"]["Message"] == "You do not have permission to access the specified resource."

    ec2.delete_nat_gateway(NatGatewayId=nat)
    ec2.release_address(AllocationId=allocation)
    assert ec2.describe_addresses()["Addresses"] == []


def test_elastic_ip_of_an_instance(aws):
    ec2 = aws.client("ec2")
    _, subnet = network(ec2)
    allocation = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=allocation["AllocationId"],
                                        InstanceId=instance(ec2, subnet))["AssociationId"]

    error = refused(ec2.release_address, "InvalidIPAddress.InUse", AllocationId=allocation["AllocationId"])
    assert error.response["Error"]["Message"] == f"Address {allocation['PublicIp']} is in use."

    ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=allocation["AllocationId"])


def test_route_table_associated_or_main(aws):
    ec2 = aws.client("ec2")
    vpc, subnet = network(ec2)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    association = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]

    refused(ec2.delete_route_table, "DependencyViolation", RouteTableId=table)             # moto's rule
    error = refused(ec2.delete_route_table, "DependencyViolation", RouteTableId=main["RouteTableId"])
    assert error.response["Error"]["Message"] == (
        f"The routeTable '{main['RouteTableId']}' has dependencies and cannot be deleted.")

    ec2.disassociate_route_table(AssociationId=association)
    ec2.delete_route_table(RouteTableId=table)


# ------------------------------------------------------------------ RDS, Auto Scaling

def test_db_subnet_group_of_a_database(aws):
    _, subnets = subnet_pair(aws.client("ec2"))
    db = database(aws, subnets)
    rds = aws.client("rds")

    error = refused(rds.delete_db_subnet_group, "InvalidDBSubnetGroupStateFault", DBSubnetGroupName="data")
    assert error.response["Error"]["Message"] == (
        f"Cannot delete the subnet group 'data' because at least one database instance: {db} is still using it.")

    rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)
    rds.delete_db_subnet_group(DBSubnetGroupName="data")


def auto_scaling_group(aws, subnet: str, name: str = "web", desired: int = 2, autoscaling=None, ec2=None) -> None:
    ec2 = ec2 or aws.client("ec2")
    autoscaling = autoscaling or aws.client("autoscaling")
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=desired, MaxSize=4,
                                          DesiredCapacity=desired, VPCZoneIdentifier=subnet,
                                          LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"})


def test_auto_scaling_group_with_instances(aws):
    _, subnet = network(aws.client("ec2"))
    auto_scaling_group(aws, subnet)
    autoscaling = aws.client("autoscaling")

    error = refused(autoscaling.delete_auto_scaling_group, "ResourceInUse", AutoScalingGroupName="web")
    assert error.response["Error"]["Message"] == ("You cannot delete an AutoScalingGroup while there are instances "
                                                  "or pending Spot instance request(s) still in the group.")
    assert len(aws.server.rules.refused[-1].blockers) == 2

    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=0, DesiredCapacity=0)
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web")
    assert autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_auto_scaling_group_with_instances_and_force_delete(aws):
    _, subnet = network(aws.client("ec2"))
    auto_scaling_group(aws, subnet)
    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    assert aws.server.rules.refused == []


# ------------------------------------------------------------------ IAM and S3 (moto's own rules)

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]})


def test_role_with_policies_or_in_an_instance_profile(aws):
    iam = aws.client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="app", PolicyName="inline", PolicyDocument=POLICY)
    managed = iam.create_policy(PolicyName="managed", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=managed)
    iam.create_instance_profile(InstanceProfileName="app")
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")

    refused(iam.delete_role, "DeleteConflict", 409, RoleName="app")
    refused(iam.delete_instance_profile, "DeleteConflict", 409, InstanceProfileName="app")
    iam.remove_role_from_instance_profile(InstanceProfileName="app", RoleName="app")
    iam.delete_instance_profile(InstanceProfileName="app")
    refused(iam.delete_role, "DeleteConflict", 409, RoleName="app")
    iam.detach_role_policy(RoleName="app", PolicyArn=managed)
    refused(iam.delete_role, "DeleteConflict", 409, RoleName="app")
    iam.delete_role_policy(RoleName="app", PolicyName="inline")
    iam.delete_role(RoleName="app")


def test_bucket_with_objects_or_versions(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="uploads", CreateBucketConfiguration={"LocationConstraint": aws.region})
    s3.put_bucket_versioning(Bucket="uploads", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="uploads", Key="a.xml", Body=b"<a/>")["VersionId"]

    refused(s3.delete_bucket, "BucketNotEmpty", 409, Bucket="uploads")
    marker = s3.delete_object(Bucket="uploads", Key="a.xml")["VersionId"]      # only a delete marker shows
    refused(s3.delete_bucket, "BucketNotEmpty", 409, Bucket="uploads")              # ... the versions remain

    s3.delete_objects(Bucket="uploads", Delete={"Objects": [{"Key": "a.xml", "VersionId": version},
                                                            {"Key": "a.xml", "VersionId": marker}]})
    s3.delete_bucket(Bucket="uploads")


# ------------------------------------------------------------------ accounts and regions

def test_rules_look_in_the_callers_region(aws):
    """Same names in two regions: only the region of the call counts."""
    ec2_there = aws.client("ec2", OTHER_REGION)
    _, subnets_there = subnet_pair(ec2_there)
    db = database(aws, subnets_there, region=OTHER_REGION)             # "data" is in use in us-east-1 ...
    _, subnets_here = subnet_pair(aws.client("ec2"))
    aws.client("rds").create_db_subnet_group(DBSubnetGroupName="data", DBSubnetGroupDescription="data",
                                             SubnetIds=subnets_here)

    aws.client("rds").delete_db_subnet_group(DBSubnetGroupName="data")  # ... not here
    refused(aws.client("rds", OTHER_REGION).delete_db_subnet_group, "InvalidDBSubnetGroupStateFault",
            DBSubnetGroupName="data")
    assert aws.server.rules.refused[-1].region == OTHER_REGION
    assert aws.server.rules.refused[-1].blockers == (f"db:{db}",)


def test_rules_look_in_the_callers_account(aws):
    """An auto scaling group "web" with instances in another account does not hold ours."""
    ec2_other = as_account(aws.client("ec2"), OTHER_ACCOUNT)
    autoscaling_other = as_account(aws.client("autoscaling"), OTHER_ACCOUNT)
    _, subnet_other = network(ec2_other)
    auto_scaling_group(aws, subnet_other, autoscaling=autoscaling_other, ec2=ec2_other)
    _, subnet = network(aws.client("ec2"))
    auto_scaling_group(aws, subnet, desired=0)

    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="web")
    refused(autoscaling_other.delete_auto_scaling_group, "ResourceInUse", AutoScalingGroupName="web")
    assert aws.server.rules.refused[-1].account == OTHER_ACCOUNT


def test_rules_can_be_turned_off():
    from envctl.sandbox.server import EmulatedAws

    assert EmulatedAws(dependency_rules=False).rules is None
    assert EmulatedAws().rules is not None
