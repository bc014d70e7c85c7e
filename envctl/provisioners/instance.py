"""EC2 instance (the bastion): IMDSv2 only, encrypted gp3 root volume, in its tier's first subnet.

The image is the spec's reference (an AMI id or `ssm:<parameter>`), resolved at create time
and kept in the `envctl:image` tag: a newer AMI behind the parameter does not replace a
running instance. In place: security groups (on the primary network interface, which is what
the instance's groups are), the instance profile, the metadata options. Everything else
replaces the instance: image, subnet, user data and volume need a new one anyway, and a new
instance type would need a stop/start, which envctl does not do behind the plan's back.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from envctl.model.diff import AttrChange, plain
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners._image import IMAGE_TAG, resolve_image, root_device_name, split_image_tag
from envctl.aws.waiters import GONE, wait_for, wait_until
from envctl.provisioners.base import NotOurs, Observed, Props, Provisioner, Timeouts, Value, tag_dict, tag_list

LIVE_STATES = ("pending", "running", "stopping", "stopped")     # shutting-down and terminated are gone


class InstanceProps(Props):
    image: str                                   # ami-… or ssm:<parameter>, as the spec says it
    instance_type: str
    subnet_id: Value
    security_group_ids: tuple[Value, ...] = ()   # () = the VPC's default group (AWS's default)
    iam_instance_profile: Value | None = None    # instance profile ARN
    associate_public_ip: bool = False
    key_name: str | None = None
    user_data: str | None = None
    volume_gb: int = 8
    volume_type: str = "gp2"
    volume_encrypted: bool = False
    http_tokens: Literal["optional", "required"] = "optional"    # "required" = IMDSv2 only


class Instance(Provisioner[InstanceProps]):
    kind = "instance"
    services = ("ec2", "ssm")
    props = InstanceProps
    replace_on = frozenset({"image", "instance_type", "subnet_id", "associate_public_ip", "key_name", "user_data",
                            "volume_gb", "volume_type", "volume_encrypted"})
    set_fields = frozenset({"security_group_ids"})
    timeouts = Timeouts(create=600, update=600, delete=1200)
    # internet_gateway: AWS will not detach the gateway while an instance's public IP is mapped.
    uses = frozenset({"subnet", "security_group", "instance_profile", "internet_gateway"})
    poll_interval: float = 5.0

    def discover(self, ctx) -> Iterable[Observed[InstanceProps]]:
        ec2 = ctx.client("ec2")
        # Auto scaling groups' instances carry this environment's tags too: keep only instance/… addresses.
        found = [i for i in _instances(ec2, ctx.scope_filters()) if _ec2.in_scope(ctx, self.kind, i.get("Tags"))]
        volumes = _root_volumes(ec2, found)
        return [_observe(ec2, i, volumes) for i in found]

    def read(self, ctx, id: str) -> Observed[InstanceProps] | None:
        ec2 = ctx.client("ec2")
        inst = _find_by_id(ec2, id)
        if inst is None or inst["State"]["Name"] not in LIVE_STATES:
            return None
        return _observe(ec2, inst, _root_volumes(ec2, [inst]))

    def find(self, ctx, node: Node) -> Observed[InstanceProps] | None:
        ec2 = ctx.client("ec2")
        inst = next((i for i in _instances(ec2, _ec2.ownership_filters(ctx, node))
                     if _ec2.is_node(ctx, node, i.get("Tags"))), None)
        return _observe(ec2, inst, _root_volumes(ec2, [inst])) if inst is not None else None

    def create(self, ctx, node: Node) -> str:
        p: InstanceProps = node.props
        ec2 = ctx.client("ec2")
        # One look-up for both: ours from before (tagged with this address, adopted) and a live
        # instance of the same Name that is not ours (EC2 names are only tags, but two live
        # instances of one name would be a trap: refused). A tag-value filter matches either.
        candidates = _instances(ec2, [{"Name": "tag-value", "Values": [str(node.address), node.physical_name]}])
        ours = next((i for i in candidates if _ec2.is_node(ctx, node, i.get("Tags"))), None)
        if ours is not None:
            return ours["InstanceId"]
        clash = [i for i in candidates if tag_dict(i.get("Tags")).get(_ec2.NAME) == node.physical_name
                 and not ctx.is_ours(tag_dict(i.get("Tags")))]
        if clash:
            raise NotOurs(node.address, f"EC2 instance {node.physical_name} ({clash[0]['InstanceId']})")
        ami = resolve_image(ctx, p.image)
        tags = tag_list({**node.tags, _ec2.NAME: node.physical_name, IMAGE_TAG: p.image})
        interface: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": p.subnet_id, "DeleteOnTermination": True,
                                     "AssociatePublicIpAddress": p.associate_public_ip}
        if p.security_group_ids:
            interface["Groups"] = list(p.security_group_ids)
        params: dict[str, Any] = dict(
            ImageId=ami, InstanceType=p.instance_type, MinCount=1, MaxCount=1,
            NetworkInterfaces=[interface],
            MetadataOptions={"HttpTokens": p.http_tokens, "HttpEndpoint": "enabled"},
            BlockDeviceMappings=[{"DeviceName": root_device_name(ec2, ami), "Ebs": _ebs(p)}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}])
        if p.iam_instance_profile:
            params["IamInstanceProfile"] = {"Arn": p.iam_instance_profile}
        if p.key_name:
            params["KeyName"] = p.key_name
        if p.user_data:
            params["UserData"] = p.user_data          # boto3 base64-encodes RunInstances' UserData
        # The token covers a retried call; it changes with the props, so a replacement is a new launch.
        # AWS answers a token it has seen with that (maybe terminated) instance: then take the next one.
        salt = json.dumps(plain(p), sort_keys=True, default=str)
        for generation in range(3):
            params["ClientToken"] = ctx.client_token(node.address, f"{salt}#{generation}")
            inst = ec2.run_instances(**params)["Instances"][0]
            if inst["State"]["Name"] in LIVE_STATES:
                return inst["InstanceId"]
        raise RuntimeError(f"EC2 answered run_instances for {node.address} with terminated instances only")

    def update(self, ctx, observed: Observed[InstanceProps], node: Node, changes: list[AttrChange]) -> None:
        want: InstanceProps = node.props
        changed = {c.path for c in changes}
        ec2 = ctx.client("ec2")
        if "security_group_ids" in changed:
            inst = _find_by_id(ec2, observed.id)
            eni = _primary_interface(inst)
            groups = list(want.security_group_ids) or [_default_group(ec2, eni["VpcId"])]
            # The instance's groups are its primary interface's (modify_instance_attribute Groups= does
            # the same on AWS; moto adds to the interface's groups there instead of replacing them).
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=groups)
        if "iam_instance_profile" in changed:
            _set_instance_profile(ec2, observed.id, want.iam_instance_profile)
        if "http_tokens" in changed:
            ec2.modify_instance_metadata_options(InstanceId=observed.id, HttpTokens=want.http_tokens,
                                                 HttpEndpoint="enabled")
        if "tags" in changed:
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[InstanceProps], tags: Mapping[str, str]) -> None:
        ec2 = ctx.client("ec2")
        inst = _find_by_id(ec2, observed.id)
        volume = _root_volume_id(inst) if inst else None
        for resource in [observed.id] + ([volume] if volume else []):
            _ec2.set_user_tags(ec2, resource, observed.tags, tags)

    def delete(self, ctx, observed: Observed[InstanceProps]) -> None:
        _ec2.ignore_not_found(ctx.client("ec2").terminate_instances, InstanceIds=[observed.id])

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[InstanceProps] | None:
        ec2 = ctx.client("ec2")
        if until == "ready":
            # Just launched, the id may not be visible yet (eventual consistency): gone is pending.
            inst = wait_for(lambda: _find_by_id(ec2, id), _state_of, pending={"pending", GONE}, target={"running"},
                            timeout=self.timeouts.create, interval=self.poll_interval, describe=f"EC2 instance {id}")
            return _observe(ec2, inst, _root_volumes(ec2, [inst]))
        # read() treats shutting-down as gone, but the subnet and groups are free only once terminated.
        wait_until(lambda: _state(ec2, id), pending={"shutting-down", "stopping", "stopped", "running", "pending"},
                   target={"terminated", GONE}, timeout=self.timeouts.delete, interval=self.poll_interval,
                   describe=f"EC2 instance {id}")
        return None

    def outputs(self, observed: Observed[InstanceProps]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ private helpers

def _instances(ec2, filters: list[dict]) -> list[dict]:
    filters = filters + [{"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    return [i for r in _ec2.describe(ec2, "describe_instances", "Reservations", Filters=filters)
            for i in r["Instances"]]


def _find_by_id(ec2, instance_id: str) -> dict | None:
    reservation = _ec2.describe_one(ec2, "describe_instances", "Reservations", InstanceIds=[instance_id])
    return reservation["Instances"][0] if reservation and reservation.get("Instances") else None


def _state(ec2, instance_id: str) -> tuple[str, str | None] | None:
    inst = _find_by_id(ec2, instance_id)
    return None if inst is None else _state_of(inst)


def _state_of(inst: dict) -> tuple[str, str | None]:
    return inst["State"]["Name"], (inst.get("StateReason") or {}).get("Message")


def _primary_interface(inst: dict) -> dict:
    return next(n for n in inst.get("NetworkInterfaces", []) if n.get("Attachment", {}).get("DeviceIndex", 0) == 0)


def _root_volume_id(inst: dict) -> str | None:
    root = inst.get("RootDeviceName")
    return next((m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", [])
                 if m.get("DeviceName") == root and "Ebs" in m), None)


def _root_volumes(ec2, instances: list[dict]) -> dict[str, dict]:
    """Root volumes by id, in one call for all the instances."""
    ids = [v for v in map(_root_volume_id, instances) if v]
    if not ids:
        return {}
    return {v["VolumeId"]: v for v in _ec2.describe(ec2, "describe_volumes", "Volumes", VolumeIds=ids)}


def _user_data(ec2, instance_id: str) -> str | None:
    answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    value = (answer.get("UserData") or {}).get("Value")
    return base64.b64decode(value).decode("utf-8") if value else None


def _observe(ec2, inst: dict, volumes: Mapping[str, dict]) -> Observed[InstanceProps]:
    instance_id = inst["InstanceId"]
    image, tags = split_image_tag(tag_dict(inst.get("Tags")), fallback=inst["ImageId"])
    volume = volumes.get(_root_volume_id(inst) or "", {})
    groups = _primary_interface(inst).get("Groups", []) if inst.get("NetworkInterfaces") else inst.get(
        "SecurityGroups", [])
    if [g.get("GroupName") for g in groups] == ["default"]:
        groups = []                           # the VPC's default group is what () means
    props = InstanceProps(
        image=image,
        instance_type=inst["InstanceType"],
        subnet_id=inst.get("SubnetId", ""),
        security_group_ids=tuple(sorted(g["GroupId"] for g in groups)),
        iam_instance_profile=(inst.get("IamInstanceProfile") or {}).get("Arn"),
        associate_public_ip=bool(inst.get("PublicIpAddress")),
        key_name=inst.get("KeyName"),
        user_data=_user_data(ec2, instance_id),
        volume_gb=volume.get("Size", 0),
        volume_type=volume.get("VolumeType", ""),
        volume_encrypted=bool(volume.get("Encrypted")),
        http_tokens=(inst.get("MetadataOptions") or {}).get("HttpTokens", "optional"),
    )
    state = inst["State"]["Name"]
    return Observed(
        address=_ec2.address_for("instance", tags, instance_id), id=instance_id, props=props, tags=tags,
        status="ready" if state == "running" else state,
        outputs={"id": instance_id, "private_ip": inst.get("PrivateIpAddress") or "",
                 "public_ip": inst.get("PublicIpAddress") or "",
                 "availability_zone": inst.get("Placement", {}).get("AvailabilityZone", "")})


def _ebs(p: InstanceProps) -> dict:
    ebs: dict[str, Any] = {"VolumeSize": p.volume_gb, "VolumeType": p.volume_type, "DeleteOnTermination": True}
    if p.volume_encrypted:
        ebs["Encrypted"] = True               # with the account's default EBS key
    return ebs


def _default_group(ec2, vpc_id: str) -> str:
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                   {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return groups[0]["GroupId"]


def _set_instance_profile(ec2, instance_id: str, arn: str | None) -> None:
    associations = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [instance_id]},
        {"Name": "state", "Values": ["associating", "associated"]}])["IamInstanceProfileAssociations"]
    current = associations[0] if associations else None
    if arn is None:
        if current:
            ec2.disassociate_iam_instance_profile(AssociationId=current["AssociationId"])
    elif current:
        ec2.replace_iam_instance_profile_association(AssociationId=current["AssociationId"],
                                                     IamInstanceProfile={"Arn": arn})
    else:
        ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Arn": arn})
