"""Subnet: one per tier and zone."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, NotOurs, Observed, Props, Provisioner, Value, tag_dict


class SubnetProps(Props):
    vpc_id: Value
    cidr_block: str
    availability_zone: str
    map_public_ip_on_launch: bool = False


class Subnet(Provisioner[SubnetProps]):
    kind = "subnet"
    services = ("ec2",)
    props = SubnetProps
    replace_on = frozenset({"vpc_id", "cidr_block", "availability_zone"})
    uses = frozenset({"vpc"})

    def discover(self, ctx: Ctx) -> list[Observed[SubnetProps]]:
        subnets = _ec2.describe(ctx.client("ec2"), "describe_subnets", "Subnets", Filters=ctx.scope_filters())
        return [_observe(s) for s in subnets if _ec2.in_scope(ctx, self.kind, s.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[SubnetProps] | None:
        subnet = _ec2.describe_one(ctx.client("ec2"), "describe_subnets", "Subnets", SubnetIds=[id])
        return _observe(subnet) if subnet is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[SubnetProps] | None:
        subnets = _ec2.describe(ctx.client("ec2"), "describe_subnets", "Subnets",
                                Filters=_ec2.ownership_filters(ctx, node))
        return next((_observe(s) for s in subnets if _ec2.is_node(ctx, node, s.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # No client token for CreateSubnet, but a CIDR taken in the VPC is refused
        # (InvalidSubnet.Conflict), never made twice: create first, and look only then, adopting
        # the subnet of that CIDR if it is ours from before.
        from envctl.aws import errors

        ec2 = ctx.client("ec2")
        desired: SubnetProps = node.props
        try:
            subnet = ec2.create_subnet(VpcId=desired.vpc_id, CidrBlock=desired.cidr_block,
                                       AvailabilityZone=desired.availability_zone,
                                       TagSpecifications=_ec2.tag_specifications("subnet", node))["Subnet"]
            # A new subnet maps no public IPs on launch.
            subnet_id, current = subnet["SubnetId"], desired.model_copy(update={"map_public_ip_on_launch": False})
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            # The CIDR is taken in this VPC: adopt the subnet only if it is this environment's.
            taken = _by_cidr(ec2, desired.vpc_id, desired.cidr_block)
            if taken is None or not ctx.is_ours(taken.tags):
                raise NotOurs(node.address, f"subnet {desired.cidr_block} in {desired.vpc_id}") from None
            subnet_id, current = taken.id, taken.props
        _set_public_ip(ec2, subnet_id, desired, current)
        return subnet_id

    def update(self, ctx: Ctx, observed: Observed[SubnetProps], node: Node, changes: list[AttrChange]) -> None:
        _set_public_ip(ctx.client("ec2"), observed.id, node.props, observed.props)
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[SubnetProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[SubnetProps]) -> None:
        _ec2.ignore_not_found(ctx.client("ec2").delete_subnet, SubnetId=observed.id)

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[SubnetProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"subnet {id}")

    def outputs(self, observed: Observed[SubnetProps]) -> Mapping[str, str]:
        return {"id": observed.id, "availability_zone": observed.props.availability_zone,
                "cidr_block": observed.props.cidr_block}


def _observe(subnet: dict) -> Observed[SubnetProps]:
    tags = tag_dict(subnet.get("Tags"))
    props = SubnetProps(vpc_id=subnet["VpcId"], cidr_block=subnet["CidrBlock"],
                        availability_zone=subnet["AvailabilityZone"],
                        map_public_ip_on_launch=bool(subnet.get("MapPublicIpOnLaunch", False)))
    return Observed(_ec2.address_for("subnet", tags, subnet["SubnetId"]), subnet["SubnetId"], props, tags)


def _by_cidr(ec2, vpc_id: str, cidr_block: str) -> Observed[SubnetProps] | None:
    subnets = _ec2.describe(ec2, "describe_subnets", "Subnets",
                            Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                     {"Name": "cidr-block", "Values": [cidr_block]}])
    return next((_observe(s) for s in subnets), None)


def _set_public_ip(ec2, subnet_id: str, desired: SubnetProps, current: SubnetProps) -> None:
    if desired.map_public_ip_on_launch != current.map_public_ip_on_launch:
        ec2.modify_subnet_attribute(SubnetId=subnet_id,
                                    MapPublicIpOnLaunch={"Value": desired.map_public_ip_on_launch})
