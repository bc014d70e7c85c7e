"""Elastic IP for a NAT gateway."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, tag_dict


class EipProps(Props):
    domain: str = "vpc"


class Eip(Provisioner[EipProps]):
    kind = "eip"
    services = ("ec2",)
    props = EipProps
    replace_on = frozenset({"domain"})

    def discover(self, ctx: Ctx) -> list[Observed[EipProps]]:
        # DescribeAddresses has no paginator: one call answers for the whole region.
        addresses = ctx.client("ec2").describe_addresses(Filters=ctx.scope_filters())["Addresses"]
        return [_observe(a) for a in addresses if _ec2.in_scope(ctx, self.kind, a.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[EipProps] | None:
        address = _ec2.describe_one(ctx.client("ec2"), "describe_addresses", "Addresses", AllocationIds=[id])
        return _observe(address) if address is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[EipProps] | None:
        addresses = ctx.client("ec2").describe_addresses(Filters=_ec2.ownership_filters(ctx, node))["Addresses"]
        return next((_observe(a) for a in addresses if _ec2.is_node(ctx, node, a.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # AllocateAddress takes no client token: an address tagged with this address is ours from before.
        existing = self.find(ctx, node)
        if existing is not None:
            return existing.id
        allocated = ctx.client("ec2").allocate_address(
            Domain=node.props.domain, TagSpecifications=_ec2.tag_specifications("elastic-ip", node))
        return allocated["AllocationId"]

    def update(self, ctx: Ctx, observed: Observed[EipProps], node: Node, changes: list[AttrChange]) -> None:
        # The domain is the only property and it forces a replacement: only tags change in place.
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[EipProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[EipProps]) -> None:
        # Deleted after its NAT gateway is gone (nat_gateway uses eip); a NAT that has just gone may
        # hold the address a little longer: InvalidIPAddress.InUse is retried as an eventual error.
        _ec2.ignore_not_found(ctx.client("ec2").release_address, AllocationId=observed.id)

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[EipProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"Elastic IP {id}")

    def outputs(self, observed: Observed[EipProps]) -> Mapping[str, str]:
        return {"id": observed.id, "public_ip": observed.outputs.get("public_ip", "")}


def _observe(address: dict) -> Observed[EipProps]:
    tags = tag_dict(address.get("Tags"))
    allocation_id = address["AllocationId"]
    return Observed(_ec2.address_for("eip", tags, allocation_id), allocation_id,
                    EipProps(domain=address.get("Domain", "vpc")), tags,
                    outputs={"public_ip": address.get("PublicIp", "")})
