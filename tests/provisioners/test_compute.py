"""EC2 instances, launch templates and auto scaling groups: expansion, then the lifecycle
against moto server:

create → read back with plain boto3 → discover + diff clean, read-only → drift by hand shows
exactly that field → update repairs it → deleted out of band is absent → delete leaves nothing
tagged, foreign resources untouched; adoption and NotOurs; the bounded wait on its own.
"""
from __future__ import annotations

import base64

import pytest
from botocore.stub import Stubber

from envctl.model.address import Address
from envctl.model.graph import Ref
from envctl.provisioners import by_kind
from envctl.provisioners.base import Ctx, NotOurs
from tests.provisioners.harness import (StubClients, changes_of, create_all, delete_all, discover, drift,
                                        graph_from_yaml, kinds_of, make_ctx, offline_client, outputs_of, repair,
                                        resolved, tags_of)

PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
OWN_PARAMETER = "/acme/images/bastion"          # ours: AWS's public parameters cannot be overwritten
OWNERSHIP = {"envctl:project": "acme", "envctl:environment": "qa", "Owner": "platform-team"}

SPEC = """\
tags:
  Owner: platform-team
network:
  cidr: 10.40.0.0/16
  zones: 2
  nat: none
  tiers:
    public:  {{prefix: 24, internet: true}}
    private: {{prefix: 24}}
security_groups:
  bastion:
    ingress:
      - {{port: 22, from: 203.0.113.0/24}}
  app:
    ingress:
      - {{port: 8080, from: bastion}}
roles:
  app: {{assumed_by: ec2}}
instances:
  bastion:
    image: ssm:{own_parameter}
    instance_type: t3.micro
    tier: public
    security_groups: [bastion]
    volume_gb: 12
    user_data: |
      #!/bin/bash
      echo hello
  worker:
    image: {ami}
    instance_type: t3.small
    tier: private
    role: app
applications:
  orders:
    image: ssm:{parameter}
    instance_type: t3.small
    tier: private
    security_groups: [app]
    role: app
    capacity: {{min: 1, desired: 2, max: 3}}
    health_check_grace_s: 120
    user_data: |
      #!/bin/bash
      docker run orders:{version}
"""


def spec(aws, version: str = "1.0") -> str:
    ssm = aws.client("ssm")
    ami = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    ssm.put_parameter(Name=OWN_PARAMETER, Value=ami, Type="String", Overwrite=True)
    return SPEC.format(parameter=PARAMETER, own_parameter=OWN_PARAMETER, ami=ami, version=version)


def live_instances(ec2, filters) -> list[dict]:
    filters = filters + [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    return [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]


ENV_FILTERS = [{"Name": "tag:envctl:project", "Values": ["acme"]}, {"Name": "tag:envctl:environment", "Values": ["qa"]}]


@pytest.fixture
def env(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, spec(aws))
    ctx = make_ctx(aws)
    created = create_all(ctx, graph)
    return ctx, graph, created


def id_of(created, kind, name) -> str:
    return created[Address(kind, name)].id


# ------------------------------------------------------------------ expansion (pure)

def test_instances_and_applications_expand_secure_by_default(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, spec(aws))
    bastion = graph[Address("instance", "bastion")].props
    assert (bastion.http_tokens, bastion.volume_encrypted, bastion.volume_type) == ("required", True, "gp3")
    assert bastion.subnet_id == Ref(Address("subnet", "public-a"), "id")       # the first zone of its tier
    assert bastion.associate_public_ip is True                                  # an internet tier
    assert bastion.iam_instance_profile is None
    worker = graph[Address("instance", "worker")].props
    assert worker.associate_public_ip is False
    assert worker.iam_instance_profile == Ref(Address("instance_profile", "app"), "arn")
    assert worker.security_group_ids == ()

    template = graph[Address("launch_template", "orders")].props
    assert (template.http_tokens, template.volume_encrypted, template.volume_type) == ("required", True, "gp3")
    group = graph[Address("autoscaling_group", "orders")]
    assert group.physical_name == "acme-qa-orders"
    assert group.props.launch_template_version == Ref(Address("launch_template", "orders"), "latest_version")
    assert group.props.subnet_ids == (Ref(Address("subnet", "private-a"), "id"),
                                      Ref(Address("subnet", "private-b"), "id"))
    assert (group.props.min_size, group.props.desired_capacity, group.props.max_size) == (1, 2, 3)
    assert group.props.health_check_grace_period == 120


def test_public_ip_false_keeps_an_instance_in_an_internet_tier_private(aws, tmp_path):
    private = spec(aws).replace("    volume_gb: 12\n", "    volume_gb: 12\n    public_ip: false\n")
    graph = graph_from_yaml(tmp_path, private)
    assert graph[Address("instance", "bastion")].props.associate_public_ip is False


# ------------------------------------------------------------------ 1. create, read back

def test_create_launches_instances_as_the_spec_says(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    ami = aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    bastion_id = id_of(created, "instance", "bastion")
    bastion = ec2.describe_instances(InstanceIds=[bastion_id])["Reservations"][0]["Instances"][0]
    assert bastion["State"]["Name"] == "running"
    assert (bastion["ImageId"], bastion["InstanceType"]) == (ami, "t3.micro")
    assert bastion["SubnetId"] == id_of(created, "subnet", "public-a")
    assert [g["GroupId"] for g in bastion["NetworkInterfaces"][0]["Groups"]] == [
        id_of(created, "security_group", "bastion")]
    assert bastion["PublicIpAddress"]
    assert bastion["MetadataOptions"]["HttpTokens"] == "required"
    assert bastion.get("IamInstanceProfile") is None
    assert tags_of(bastion["Tags"]) == {**OWNERSHIP, "envctl:resource": "instance/bastion", "Name": "acme-qa-bastion",
                                        "envctl:image": f"ssm:{OWN_PARAMETER}"}
    user_data = ec2.describe_instance_attribute(InstanceId=bastion_id, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == "#!/bin/bash\necho hello\n"
    root = bastion["BlockDeviceMappings"][0]
    assert root["DeviceName"] == bastion["RootDeviceName"] and root["Ebs"]["DeleteOnTermination"]
    volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (12, "gp3", True)
    assert tags_of(volume["Tags"]) == tags_of(bastion["Tags"])
    assert created[Address("instance", "bastion")].outputs == {
        "id": bastion_id, "private_ip": bastion["PrivateIpAddress"], "public_ip": bastion["PublicIpAddress"],
        "availability_zone": "eu-north-1a"}

    worker = ec2.describe_instances(InstanceIds=[id_of(created, "instance", "worker")])["Reservations"][0][
        "Instances"][0]
    assert worker["SubnetId"] == id_of(created, "subnet", "private-a")
    assert worker.get("PublicIpAddress") is None
    assert created[Address("instance", "worker")].outputs["public_ip"] == ""
    assert worker["IamInstanceProfile"]["Arn"] == created[Address("instance_profile", "app")].outputs["arn"]
    assert [g["GroupName"] for g in worker["NetworkInterfaces"][0]["Groups"]] == ["default"]
    assert tags_of(worker["Tags"])["envctl:image"] == ami


def test_create_makes_a_launch_template_and_a_group_over_the_tier(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    ami = aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    template_id = id_of(created, "launch_template", "orders")
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert template["LaunchTemplateName"] == "acme-qa-orders"
    assert (template["LatestVersionNumber"], template["DefaultVersionNumber"]) == (1, 1)
    assert tags_of(template["Tags"]) == {**OWNERSHIP, "envctl:resource": "launch_template/orders",
                                         "envctl:image": f"ssm:{PARAMETER}"}
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"][0][
        "LaunchTemplateData"]
    assert (data["ImageId"], data["InstanceType"]) == (ami, "t3.small")
    assert data["SecurityGroupIds"] == [id_of(created, "security_group", "app")]
    assert data["IamInstanceProfile"] == {"Arn": created[Address("instance_profile", "app")].outputs["arn"]}
    assert base64.b64decode(data["UserData"]).decode() == "#!/bin/bash\ndocker run orders:1.0\n"
    # IMDSv2 is asserted on the template: moto does not apply it to the group's instances (MOTO-NOTES §10).
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 8, "VolumeType": "gp3", "Encrypted": True,
                                                     "DeleteOnTermination": True}
    launched = {s["ResourceType"]: tags_of(s["Tags"]) for s in data["TagSpecifications"]}
    assert launched["instance"] == launched["volume"] == {
        **OWNERSHIP, "envctl:resource": "launch_template/orders", "Name": "acme-qa-orders"}
    assert created[Address("launch_template", "orders")].outputs == {
        "id": template_id, "name": "acme-qa-orders", "latest_version": "1"}

    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["acme-qa-orders"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["LaunchTemplateId"] == template_id and group["LaunchTemplate"]["Version"] == "1"
    assert set(group["VPCZoneIdentifier"].split(",")) == {id_of(created, "subnet", "private-a"),
                                                          id_of(created, "subnet", "private-b")}
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (1, 2, 3)
    assert (group["HealthCheckType"], group["HealthCheckGracePeriod"]) == ("EC2", 120)
    assert {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]} == {
        k: (v, True) for k, v in {**OWNERSHIP, "envctl:resource": "autoscaling_group/orders",
                                  "Name": "acme-qa-orders"}.items()}
    members = [i["InstanceId"] for i in group["Instances"]]
    assert len(members) == 2
    for inst in ec2.describe_instances(InstanceIds=members)["Reservations"][0]["Instances"]:
        assert tags_of(inst["Tags"]).items() >= {"envctl:project": "acme", "envctl:environment": "qa"}.items()
    assert created[Address("autoscaling_group", "orders")].outputs == {
        "name": "acme-qa-orders", "arn": group["AutoScalingGroupARN"]}


# ------------------------------------------------------------------ 2. discover and diff: clean, read-only

def test_discover_finds_exactly_ours_and_diff_is_clean_without_a_mutating_call(env, aws):
    ctx, graph, created = env
    aws.log.clear()
    found, changes = drift(ctx, graph)
    assert changes == {}
    assert aws.log.mutating() == []
    # The group's instances carry the environment's tags too, but they are not instance/… resources.
    assert {a: o.id for a, o in found.items() if a.kind in ("instance", "launch_template", "autoscaling_group")} == {
        a: o.id for a, o in created.items() if a.kind in ("instance", "launch_template", "autoscaling_group")}
    assert aws.log.count("DescribeLaunchTemplates") == 1
    assert aws.log.count("DescribeAutoScalingGroups") == 1


def test_a_newer_ami_behind_the_parameter_does_not_replace_the_instance(env, aws):
    ctx, graph, created = env
    aws.client("ssm").put_parameter(Name=OWN_PARAMETER, Value="ami-0123456789abcdef0", Type="String", Overwrite=True)
    found, changes = drift(ctx, graph)
    assert changes == {}
    assert found[Address("instance", "bastion")].props.image == f"ssm:{OWN_PARAMETER}"


# ------------------------------------------------------------------ 3 + 4. drift by hand, update repairs

def _groups_changed(ec2, created):
    inst = ec2.describe_instances(InstanceIds=[id_of(created, "instance", "bastion")])["Reservations"][0][
        "Instances"][0]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=inst["NetworkInterfaces"][0]["NetworkInterfaceId"],
                                           Groups=[id_of(created, "security_group", "app")])


def _imds_v1_allowed(ec2, created):
    ec2.modify_instance_metadata_options(InstanceId=id_of(created, "instance", "bastion"), HttpTokens="optional")


def _profile_removed(ec2, created):
    association = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [id_of(created, "instance", "worker")]}])["IamInstanceProfileAssociations"][0]
    ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])


def _instance_tag_changed(ec2, created):
    ec2.create_tags(Resources=[id_of(created, "instance", "bastion")], Tags=[{"Key": "Owner", "Value": "someone"}])


def _template_tag_added(ec2, created):
    ec2.create_tags(Resources=[id_of(created, "launch_template", "orders")], Tags=[{"Key": "Extra", "Value": "x"}])


@pytest.mark.parametrize("change, address, fields", [
    (_groups_changed, Address("instance", "bastion"), ["security_group_ids"]),
    (_imds_v1_allowed, Address("instance", "bastion"), ["http_tokens"]),
    (_profile_removed, Address("instance", "worker"), ["iam_instance_profile"]),
    (_instance_tag_changed, Address("instance", "bastion"), ["tags"]),
    (_template_tag_added, Address("launch_template", "orders"), ["tags"]),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_instance_drift_shows_exactly_that_field_and_update_repairs_it(env, aws, change, address, fields):
    ctx, graph, created = env
    change(aws.client("ec2"), created)
    found, changes = drift(ctx, graph)
    assert changes == {address: fields}
    assert not any(c.forces_replace for c in changes_of(graph, found, address)[1])
    repair(ctx, graph, found, address)
    assert drift(ctx, graph)[1] == {}


def test_a_repaired_tag_is_repaired_on_the_root_volume_too(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    _instance_tag_changed(ec2, created)
    inst = ec2.describe_instances(InstanceIds=[id_of(created, "instance", "bastion")])["Reservations"][0][
        "Instances"][0]
    volume_id = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    ec2.create_tags(Resources=[volume_id], Tags=[{"Key": "Owner", "Value": "someone"}])
    found, _ = drift(ctx, graph)
    repair(ctx, graph, found, Address("instance", "bastion"))
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert tags_of(volume["Tags"])["Owner"] == "platform-team"


def test_a_new_instance_type_by_hand_is_a_replacement(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    worker = id_of(created, "instance", "worker")
    ec2.stop_instances(InstanceIds=[worker])
    ec2.modify_instance_attribute(InstanceId=worker, InstanceType={"Value": "t3.large"})
    ec2.start_instances(InstanceIds=[worker])
    found, changes = drift(ctx, graph)
    assert changes == {Address("instance", "worker"): ["instance_type"]}
    [change] = changes_of(graph, found, Address("instance", "worker"))[1]
    assert (change.before, change.after, change.forces_replace) == ("t3.large", "t3.small", True)


@pytest.mark.parametrize("field, value", [("max_size", 5), ("desired_capacity", 1), ("health_check_grace_period", 0)])
def test_group_settings_changed_by_hand_show_and_are_repaired(env, aws, field, value):
    ctx, graph, created = env
    parameter = {"max_size": "MaxSize", "desired_capacity": "DesiredCapacity",
                 "health_check_grace_period": "HealthCheckGracePeriod"}[field]
    aws.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="acme-qa-orders", **{parameter: value})
    found, changes = drift(ctx, graph)
    assert changes == {Address("autoscaling_group", "orders"): [field]}
    repair(ctx, graph, found, Address("autoscaling_group", "orders"))
    assert drift(ctx, graph)[1] == {}
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["acme-qa-orders"])[
        "AutoScalingGroups"][0]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"], group["HealthCheckGracePeriod"]) == (
        1, 2, 3, 120)


def test_a_group_tag_removed_by_hand_is_restored_with_propagation(env, aws):
    ctx, graph, created = env
    autoscaling = aws.client("autoscaling")
    autoscaling.delete_tags(Tags=[{"ResourceId": "acme-qa-orders", "ResourceType": "auto-scaling-group",
                                   "Key": "Owner"}])
    found, changes = drift(ctx, graph)
    assert changes == {Address("autoscaling_group", "orders"): ["tags"]}
    repair(ctx, graph, found, Address("autoscaling_group", "orders"))
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["acme-qa-orders"])["AutoScalingGroups"][0]
    assert {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}["Owner"] == ("platform-team", True)


def test_a_template_version_made_by_hand_shows_on_template_and_group_and_is_repaired(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    template_id = id_of(created, "launch_template", "orders")
    ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={
        "ImageId": aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"], "InstanceType": "t3.large"})
    found, changes = drift(ctx, graph)
    # The template's latest version is what the group should run: a new one moves the group too.
    assert set(changes[Address("launch_template", "orders")]) >= {"instance_type", "http_tokens", "volume_encrypted"}
    assert changes[Address("autoscaling_group", "orders")] == ["launch_template_version"]
    repair(ctx, graph, found, Address("launch_template", "orders"))
    found, changes = drift(ctx, graph)
    assert changes == {Address("autoscaling_group", "orders"): ["launch_template_version"]}
    repair(ctx, graph, found, Address("autoscaling_group", "orders"))
    assert drift(ctx, graph)[1] == {}
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["acme-qa-orders"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "3"


def test_a_spec_change_makes_a_full_new_default_version_and_the_group_follows(env, aws, tmp_path):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    graph = graph_from_yaml(tmp_path, spec(aws, version="2.0"))
    found, changes = drift(ctx, graph)
    assert changes == {Address("launch_template", "orders"): ["user_data"]}
    node, template_changes = changes_of(graph, found, Address("launch_template", "orders"))
    assert not any(c.forces_replace for c in template_changes)
    repair(ctx, graph, found, Address("launch_template", "orders"))

    template_id = id_of(created, "launch_template", "orders")
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert (template["LatestVersionNumber"], template["DefaultVersionNumber"]) == (2, 2)
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["2"])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]
    # A full version, not a delta (moto would not inherit from a source version anyway, MOTO-NOTES §10).
    assert base64.b64decode(data["UserData"]).decode() == "#!/bin/bash\ndocker run orders:2.0\n"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert data["SecurityGroupIds"] == [id_of(created, "security_group", "app")]

    found, changes = drift(ctx, graph)
    assert changes == {Address("autoscaling_group", "orders"): ["launch_template_version"]}
    _, [change] = changes_of(graph, found, Address("autoscaling_group", "orders"))
    assert (change.before, change.after) == ("1", "2")
    repair(ctx, graph, found, Address("autoscaling_group", "orders"))
    assert drift(ctx, graph)[1] == {}


def test_the_plan_shows_a_new_version_as_an_update_of_the_group_and_create_applies_both(env, aws, tmp_path):
    from envctl.engine.executor import execute
    from envctl.model.graph import Unknown
    from envctl.plan.changes import Action
    from envctl.plan.planner import plan

    ctx, graph, created = env
    graph = graph_from_yaml(tmp_path, spec(aws, version="2.0"))
    found = discover(ctx, kinds_of(graph))
    the_plan = plan(graph, found)
    actions = {c.address: c for c in the_plan.changes if c.action is not Action.NOOP}
    assert {a: c.action for a, c in actions.items()} == {Address("launch_template", "orders"): Action.UPDATE,
                                                        Address("autoscaling_group", "orders"): Action.UPDATE}
    [version] = actions[Address("autoscaling_group", "orders")].changes
    assert (version.path, version.before, version.after) == (
        "launch_template_version", "1", Unknown(Ref(Address("launch_template", "orders"), "latest_version")))
    aws.log.clear()
    result = execute(the_plan, graph, found, ctx)
    assert result.ok, result
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["acme-qa-orders"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    # Running instances are not replaced: no instance refresh, no termination. (moto reports the
    # group's new version on its old instances too, so their version cannot be asserted here.)
    assert aws.log.count("StartInstanceRefresh") == aws.log.count("TerminateInstances") == 0
    assert drift(ctx, graph)[1] == {}


def test_an_image_reference_change_is_a_new_version_and_replaces_an_instance(env, aws, tmp_path):
    ctx, graph, created = env
    ami = aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    graph = graph_from_yaml(tmp_path, spec(aws).replace(f"ssm:{PARAMETER}", ami).replace(f"ssm:{OWN_PARAMETER}", ami))
    found, changes = drift(ctx, graph)
    assert changes == {Address("instance", "bastion"): ["image"], Address("launch_template", "orders"): ["image"]}
    assert [c.forces_replace for c in changes_of(graph, found, Address("instance", "bastion"))[1]] == [True]
    repair(ctx, graph, found, Address("launch_template", "orders"))
    # describe_tags, not describe_launch_templates: moto's keeps the tags of the template's creation.
    tags = aws.client("ec2").describe_tags(Filters=[
        {"Name": "resource-id", "Values": [id_of(created, "launch_template", "orders")]}])["Tags"]
    assert tags_of(tags)["envctl:image"] == ami
    assert drift(ctx, graph)[1] == {Address("instance", "bastion"): ["image"],
                                    Address("autoscaling_group", "orders"): ["launch_template_version"]}


# ------------------------------------------------------------------ 5. deleted out of band

def test_resources_deleted_out_of_band_are_absent(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    bastion = id_of(created, "instance", "bastion")
    ec2.terminate_instances(InstanceIds=[bastion])
    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="acme-qa-orders", ForceDelete=True)
    ec2.delete_launch_template(LaunchTemplateId=id_of(created, "launch_template", "orders"))
    found, changes = drift(ctx, graph)
    gone = [Address("instance", "bastion"), Address("launch_template", "orders"),
            Address("autoscaling_group", "orders")]
    assert {a: changes.get(a, "present") for a in gone} == {a: None for a in gone}
    assert not any(a in found for a in gone)
    assert by_kind("instance").read(ctx, bastion) is None


# ------------------------------------------------------------------ 6. delete everything, foreign untouched

def test_delete_all_leaves_nothing_tagged_and_foreign_resources_untouched(env, aws):
    ctx, graph, created = env
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    ami = aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    foreign = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                SubnetId=default_subnet["SubnetId"], TagSpecifications=[{
                                    "ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "acme-qa-bastion"}]}])
    foreign_id = foreign["Instances"][0]["InstanceId"]
    ec2.create_launch_template(LaunchTemplateName="acme-qa-orders-copy", LaunchTemplateData={"ImageId": ami})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="acme-qa-orders-copy", MinSize=0, MaxSize=1,
                                          LaunchTemplate={"LaunchTemplateName": "acme-qa-orders-copy"},
                                          VPCZoneIdentifier=default_subnet["SubnetId"])

    found = discover(ctx, kinds_of(graph))
    group_members = [i["InstanceId"] for i in autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["acme-qa-orders"])["AutoScalingGroups"][0]["Instances"]]
    aws.log.clear()
    delete_all(ctx, found, graph)

    assert live_instances(ec2, ENV_FILTERS) == []
    assert [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=group_members)["Reservations"]
            for i in r["Instances"]] == ["terminated", "terminated"]
    assert ec2.describe_launch_templates(Filters=ENV_FILTERS)["LaunchTemplates"] == []
    assert autoscaling.describe_auto_scaling_groups(Filters=[
        {"Name": "tag:envctl:environment", "Values": ["qa"]}])["AutoScalingGroups"] == []
    assert drift(ctx, graph)[0] == {}
    # moto does not refuse to delete a subnet with instances or a template in use (MOTO-NOTES §3):
    # the order is asserted on the request log instead.
    calls = [c.action for c in aws.log.snapshot() if c.mutating]
    assert calls.index("DeleteAutoScalingGroup") < calls.index("DeleteLaunchTemplate")
    assert calls.index("UpdateAutoScalingGroup") < calls.index("DeleteAutoScalingGroup")
    assert max(i for i, c in enumerate(calls) if c == "TerminateInstances") < calls.index("DeleteSubnet")
    assert calls.index("DeleteInstanceProfile") < calls.index("DeleteRole")

    assert ec2.describe_instances(InstanceIds=[foreign_id])["Reservations"][0]["Instances"][0]["State"]["Name"] == \
        "running"
    assert [t["LaunchTemplateName"] for t in ec2.describe_launch_templates(
        LaunchTemplateNames=["acme-qa-orders-copy"])["LaunchTemplates"]] == ["acme-qa-orders-copy"]
    assert len(autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["acme-qa-orders-copy"])["AutoScalingGroups"]) == 1


def test_delete_of_missing_compute_resources_succeeds(env, aws):
    ctx, graph, created = env
    for address in (Address("autoscaling_group", "orders"), Address("launch_template", "orders"),
                    Address("instance", "bastion")):
        p = by_kind(address.kind)
        for _ in range(2):
            p.delete(ctx, created[address])
            p.wait(ctx, created[address].id, "gone")
        assert p.read(ctx, created[address].id) is None


def test_reads_after_create_and_deletes_make_each_call_once(env, aws):
    # A wait's last describe is the read's; a launch template is read without DescribeLaunchTemplates
    # (the latest version names it); a group's delete goes by the read made just before it.
    ctx, graph, created = env
    reads = ((Address("instance", "bastion"), "ready", ["DescribeInstances", "DescribeVolumes",
                                                        "DescribeInstanceAttribute"]),
             (Address("launch_template", "orders"), "ready", ["DescribeLaunchTemplateVersions", "DescribeTags"]),
             (Address("autoscaling_group", "orders"), "ready", ["DescribeAutoScalingGroups"]))
    for address, until, calls in reads:
        aws.log.clear()
        observed = by_kind(address.kind).wait(ctx, created[address].id, until)
        assert [c.action for c in aws.log.snapshot()] == calls, address
        assert observed == created[address], address

    group = Address("autoscaling_group", "orders")
    aws.log.clear()
    by_kind(group.kind).delete(ctx, created[group])
    assert [c.action for c in aws.log.snapshot()] == ["UpdateAutoScalingGroup", "DeleteAutoScalingGroup"]
    by_kind(group.kind).delete(ctx, created[group])                  # a retry: the group is going or gone
    by_kind(group.kind).wait(ctx, created[group].id, "gone")
    assert by_kind(group.kind).read(ctx, created[group].id) is None


# ------------------------------------------------------------------ adoption and foreign names

def test_create_adopts_our_existing_resources_without_a_duplicate(env, aws):
    ctx, graph, created = env
    outputs = outputs_of(created)
    aws.log.clear()
    for address in (Address("instance", "bastion"), Address("launch_template", "orders"),
                    Address("autoscaling_group", "orders")):
        assert by_kind(address.kind).create(ctx, resolved(graph[address], outputs)) == created[address].id
    # No create call that went through: create_auto_scaling_group (which moto would let replace
    # the group) is not even tried; create_launch_template is, and refused for the taken name.
    assert [(c.action, c.status) for c in aws.log.mutating()] == [("CreateLaunchTemplate", 400)]
    bastions = live_instances(aws.client("ec2"), [{"Name": "tag:envctl:resource", "Values": ["instance/bastion"]}])
    assert len(bastions) == 1


def test_create_refuses_names_taken_by_someone_else(aws, tmp_path):
    graph = graph_from_yaml(tmp_path, spec(aws))
    ctx = make_ctx(aws)
    ec2 = aws.client("ec2")
    ami = aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "Name", "Value": "acme-qa-bastion"}]}])
    ec2.create_launch_template(LaunchTemplateName="acme-qa-orders", LaunchTemplateData={"ImageId": ami})
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="acme-qa-orders", MinSize=0, MaxSize=1, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateName": "acme-qa-orders"})
    fake = {Address("subnet", n): {"id": subnet} for n in ("public-a", "private-a", "private-b")}
    fake |= {Address("security_group", n): {"id": "sg-12345678"} for n in ("bastion", "app")}
    fake |= {Address("instance_profile", "app"): {"arn": "arn:aws:iam::123456789012:instance-profile/x"},
             Address("launch_template", "orders"): {"id": "lt-1", "latest_version": "1"}}
    aws.log.clear()
    for address, what in ((Address("instance", "bastion"), "EC2 instance acme-qa-bastion"),
                          (Address("launch_template", "orders"), "launch template acme-qa-orders"),
                          (Address("autoscaling_group", "orders"), "auto scaling group acme-qa-orders")):
        with pytest.raises(NotOurs, match=what):
            by_kind(address.kind).create(ctx, resolved(graph[address], fake))
    assert [(c.action, c.status) for c in aws.log.mutating()] == [("CreateLaunchTemplate", 400)]


# ------------------------------------------------------------------ waits, with botocore's Stubber

def _reservation(state: str, reason: str | None = None) -> dict:
    instance = {"InstanceId": "i-0123456789abcdef0", "State": {"Name": state}}
    if reason:
        instance["StateReason"] = {"Code": reason, "Message": reason}
    return {"Reservations": [{"Instances": [instance]}]}


@pytest.fixture
def stubbed(monkeypatch):
    # moto's instances are running at once and terminated at once (MOTO-NOTES §7): the states
    # in between are scripted here, on a real botocore client.
    ec2 = offline_client("ec2")
    monkeypatch.setattr(type(by_kind("instance")), "poll_interval", 0.0)
    return Ctx(aws=StubClients({"ec2": ec2}), project="acme", environment="qa"), ec2


def test_gone_waits_through_shutting_down_until_terminated(stubbed):
    ctx, ec2 = stubbed
    with Stubber(ec2) as stub:
        for state in ("running", "shutting-down", "shutting-down", "terminated"):
            stub.add_response("describe_instances", _reservation(state))
        assert by_kind("instance").wait(ctx, "i-0123456789abcdef0", "gone") is None
        stub.assert_no_pending_responses()


def test_ready_waits_for_a_launch_to_be_visible_and_running(stubbed):
    ctx, ec2 = stubbed
    running = _reservation("running")
    running["Reservations"][0]["Instances"][0].update({
        "ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro", "SubnetId": "subnet-1",
        "RootDeviceName": "/dev/xvda", "PrivateIpAddress": "10.0.0.5", "Placement": {"AvailabilityZone": "eu-north-1a"},
        "MetadataOptions": {"HttpTokens": "required"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1"}}],
        "NetworkInterfaces": [{"Attachment": {"DeviceIndex": 0}, "Groups": [{"GroupId": "sg-1", "GroupName": "x"}]}],
        "Tags": [{"Key": "envctl:image", "Value": "ssm:/acme/ami"}]})
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound")   # not visible yet
        stub.add_response("describe_instances", _reservation("pending"))
        stub.add_response("describe_instances", running)                           # read on from it
        stub.add_response("describe_volumes", {"Volumes": [
            {"VolumeId": "vol-1", "Size": 8, "VolumeType": "gp3", "Encrypted": True}]})
        stub.add_response("describe_instance_attribute", {"InstanceId": "i-0123456789abcdef0", "UserData": {}})
        observed = by_kind("instance").wait(ctx, "i-0123456789abcdef0", "ready")
        stub.assert_no_pending_responses()
    assert (observed.status, observed.props.image, observed.props.security_group_ids) == (
        "ready", "ssm:/acme/ami", ("sg-1",))


def test_ready_fails_with_aws_reason_when_the_launch_ends_terminated(stubbed):
    ctx, ec2 = stubbed
    with Stubber(ec2) as stub:
        stub.add_response("describe_instances", _reservation("pending"))
        stub.add_response("describe_instances", _reservation("terminated", "Server.InsufficientInstanceCapacity"))
        with pytest.raises(RuntimeError, match="EC2 instance i-0123456789abcdef0 is terminated, expected running: "
                                               "Server.InsufficientInstanceCapacity"):
            by_kind("instance").wait(ctx, "i-0123456789abcdef0", "ready")
