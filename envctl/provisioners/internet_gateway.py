"""Internet gateway, attached to the VPC (the attachment is part of the gateway)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, Value, tag_dict


class InternetGatewayProps(Props):
    vpc_id: Value                          # "" when detached


class InternetGateway(Provisioner[InternetGatewayProps]):
    kind = "internet_gateway"
    services = ("ec2",)
    props = InternetGatewayProps
    uses = frozenset({"vpc"})

    def discover(self, ctx: Ctx) -> list[Observed[InternetGatewayProps]]:
        gateways = _ec2.describe(ctx.client("ec2"), "describe_internet_gateways", "InternetGateways",
                                 Filters=ctx.scope_filters())
        return [_observe(g) for g in gateways if _ec2.in_scope(ctx, self.kind, g.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[InternetGatewayProps] | None:
        gateway = _find_by_id(ctx.client("ec2"), id)
        return _observe(gateway) if gateway is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[InternetGatewayProps] | None:
        gateways = _ec2.describe(ctx.client("ec2"), "describe_internet_gateways", "InternetGateways",
                                 Filters=_ec2.ownership_filters(ctx, node))
        return next((_observe(g) for g in gateways if _ec2.is_node(ctx, node, g.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # No client token for CreateInternetGateway: a gateway tagged with this address is ours from before.
        ec2 = ctx.client("ec2")
        existing = self.find(ctx, node)
        if existing is not None:
            gateway_id, attached_to = existing.id, existing.props.vpc_id
        else:
            gateway = ec2.create_internet_gateway(
                TagSpecifications=_ec2.tag_specifications("internet-gateway", node))["InternetGateway"]
            gateway_id, attached_to = gateway["InternetGatewayId"], ""
        _attach(ec2, gateway_id, attached_to, node.props.vpc_id)
        return gateway_id

    def update(self, ctx: Ctx, observed: Observed[InternetGatewayProps], node: Node,
               changes: list[AttrChange]) -> None:
        _attach(ctx.client("ec2"), observed.id, observed.props.vpc_id, node.props.vpc_id)
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[InternetGatewayProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[InternetGatewayProps]) -> None:
        # A gateway is deleted detached. `observed` was read just before (the executor's re-read)
        # and says where it is attached; should a call fail (it was moved since, or a retry finds
        # it detached already), the gateway is read again and the delete goes by what it says now.
        ec2 = ctx.client("ec2")
        try:
            _detach_and_delete(ec2, observed.id, observed.props.vpc_id)
        except Exception:
            gateway = _find_by_id(ec2, observed.id)
            if gateway is None:
                return
            if _attached_vpc(gateway) == observed.props.vpc_id and observed.props.vpc_id:
                raise           # attached as observed: the failure is real (retried if it clears with time)
            _detach_and_delete(ec2, observed.id, _attached_vpc(gateway))

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[InternetGatewayProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"internet gateway {id}")

    def outputs(self, observed: Observed[InternetGatewayProps]) -> Mapping[str, str]:
        return {"id": observed.id}


def _find_by_id(ec2, gateway_id: str) -> dict | None:
    return _ec2.describe_one(ec2, "describe_internet_gateways", "InternetGateways", InternetGatewayIds=[gateway_id])


def _observe(gateway: dict) -> Observed[InternetGatewayProps]:
    tags = tag_dict(gateway.get("Tags"))
    gateway_id = gateway["InternetGatewayId"]
    props = InternetGatewayProps(vpc_id=_attached_vpc(gateway))
    return Observed(_ec2.address_for("internet_gateway", tags, gateway_id), gateway_id, props, tags)


def _attached_vpc(gateway: dict) -> str:
    # AWS reports an attached gateway's state as "available" ("attached" in some older answers).
    return next((a["VpcId"] for a in gateway.get("Attachments", [])
                 if a.get("State") not in ("detaching", "detached")), "")


def _detach_and_delete(ec2, gateway_id: str, attached_to: str) -> None:
    if attached_to:
        _ec2.ignore_not_found(ec2.detach_internet_gateway, InternetGatewayId=gateway_id, VpcId=attached_to)
    _ec2.ignore_not_found(ec2.delete_internet_gateway, InternetGatewayId=gateway_id)


def _attach(ec2, gateway_id: str, attached_to: str, vpc_id: str) -> None:
    """Move the gateway to `vpc_id`: a gateway attaches to one VPC at a time."""
    if attached_to == vpc_id:
        return
    if attached_to:
        _ec2.ignore_not_found(ec2.detach_internet_gateway, InternetGatewayId=gateway_id, VpcId=attached_to)
    ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
