"""VPC, with DNS support and DNS hostnames on (instances and endpoints get resolvable names)."""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, tag_dict


class VpcProps(Props):
    cidr_block: str
    enable_dns_support: bool = True
    enable_dns_hostnames: bool = True


class Vpc(Provisioner[VpcProps]):
    kind = "vpc"
    services = ("ec2",)
    props = VpcProps
    replace_on = frozenset({"cidr_block"})

    def discover(self, ctx: Ctx) -> list[Observed[VpcProps]]:
        ec2 = ctx.client("ec2")
        vpcs = _ec2.describe(ec2, "describe_vpcs", "Vpcs", Filters=ctx.scope_filters())
        ours = [v for v in vpcs if _ec2.in_scope(ctx, self.kind, v.get("Tags"))]
        return [o for o in ctx.map(lambda vpc: _observe(ctx, ec2, vpc), ours) if o is not None]

    def read(self, ctx: Ctx, id: str) -> Observed[VpcProps] | None:
        ec2 = ctx.client("ec2")
        vpc = _find_by_id(ec2, id)
        return _observe(ctx, ec2, vpc) if vpc is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[VpcProps] | None:
        ec2 = ctx.client("ec2")
        vpcs = _ec2.describe(ec2, "describe_vpcs", "Vpcs", Filters=_ec2.ownership_filters(ctx, node))
        vpc = next((v for v in vpcs if _ec2.is_node(ctx, node, v.get("Tags"))), None)
        return _observe(ctx, ec2, vpc) if vpc is not None else None

    def create(self, ctx: Ctx, node: Node) -> str:
        # CreateVpc takes no client token: a VPC tagged with this address is the one we made before.
        ec2 = ctx.client("ec2")
        desired: VpcProps = node.props
        existing = self.find(ctx, node)
        if existing is not None:
            _set_dns(ec2, existing.id, desired, existing.props)
            return existing.id
        vpc = ec2.create_vpc(CidrBlock=desired.cidr_block,
                             TagSpecifications=_ec2.tag_specifications("vpc", node))["Vpc"]
        # A new VPC has DNS support on and DNS hostnames off.
        _set_dns(ec2, vpc["VpcId"], desired, VpcProps(cidr_block=desired.cidr_block, enable_dns_hostnames=False))
        return vpc["VpcId"]

    def update(self, ctx: Ctx, observed: Observed[VpcProps], node: Node, changes: list[AttrChange]) -> None:
        _set_dns(ctx.client("ec2"), observed.id, node.props, observed.props)
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[VpcProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[VpcProps]) -> None:
        _ec2.ignore_not_found(ctx.client("ec2").delete_vpc, VpcId=observed.id)

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[VpcProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"VPC {id}")

    def outputs(self, observed: Observed[VpcProps]) -> Mapping[str, str]:
        return {"id": observed.id, "cidr_block": observed.props.cidr_block}


def _find_by_id(ec2, vpc_id: str) -> dict | None:
    return _ec2.describe_one(ec2, "describe_vpcs", "Vpcs", VpcIds=[vpc_id])


def _observe(ctx: Ctx, ec2, vpc: dict) -> Observed[VpcProps] | None:
    vpc_id = vpc["VpcId"]
    # Side by side: each is its own read (on the create's read-back, one call on the critical path).
    support, hostnames = ctx.read_all([partial(_dns_attribute, ec2, vpc_id, "enableDnsSupport"),
                                       partial(_dns_attribute, ec2, vpc_id, "enableDnsHostnames")])
    if support is None or hostnames is None:        # deleted between the calls
        return None
    tags = tag_dict(vpc.get("Tags"))
    props = VpcProps(cidr_block=vpc["CidrBlock"], enable_dns_support=support, enable_dns_hostnames=hostnames)
    return Observed(_ec2.address_for("vpc", tags, vpc_id), vpc_id, props, tags)


def _dns_attribute(ec2, vpc_id: str, attribute: str) -> bool | None:
    # One attribute per call: the API has no batch form, so discover pays two calls per VPC.
    from envctl.aws import errors

    try:
        answer = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    key = attribute[0].upper() + attribute[1:]
    return bool(answer[key]["Value"])


def _set_dns(ec2, vpc_id: str, desired: VpcProps, current: VpcProps) -> None:
    """One attribute per call (AWS's rule). Hostnames need support: turn support on first, off last."""
    steps = [("EnableDnsSupport", desired.enable_dns_support, current.enable_dns_support),
             ("EnableDnsHostnames", desired.enable_dns_hostnames, current.enable_dns_hostnames)]
    if not desired.enable_dns_support:
        steps.reverse()
    for attribute, want, have in steps:
        if want != have:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": want}})
