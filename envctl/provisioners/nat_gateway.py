"""NAT gateway in a public subnet, with its EIP.

A NAT gateway takes minutes to become available and minutes to go: `wait` follows both.
While it is `deleting` it still holds its EIP and a public IP in the VPC, so the gone-wait
lasts until `deleted`; only then can the EIP be released and the internet gateway detached.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.aws.waiters import GONE, wait_for, wait_until
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, Timeouts, Value, tag_dict

ENDED = ("deleted", "failed")       # gone: a failed NAT gateway never existed as far as routing goes
POLL_INTERVAL = 2.0                 # first poll interval of the waits (it grows to 15 s)


class NatGatewayProps(Props):
    subnet_id: Value
    allocation_id: Value
    connectivity_type: str = "public"


class NatGateway(Provisioner[NatGatewayProps]):
    kind = "nat_gateway"
    services = ("ec2",)
    props = NatGatewayProps
    replace_on = frozenset({"subnet_id", "allocation_id", "connectivity_type"})
    timeouts = Timeouts(create=600, update=600, delete=600)
    uses = frozenset({"subnet", "eip", "internet_gateway"})

    def discover(self, ctx: Ctx) -> list[Observed[NatGatewayProps]]:
        gateways = _ec2.describe(ctx.client("ec2"), "describe_nat_gateways", "NatGateways",
                                 Filter=ctx.scope_filters())
        return [_observe(g) for g in gateways
                if g["State"] not in ENDED and _ec2.in_scope(ctx, self.kind, g.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[NatGatewayProps] | None:
        gateway = _find_by_id(ctx.client("ec2"), id)
        return _observe(gateway) if gateway is not None and gateway["State"] not in ENDED else None

    def find(self, ctx: Ctx, node: Node) -> Observed[NatGatewayProps] | None:
        gateways = _ec2.describe(ctx.client("ec2"), "describe_nat_gateways", "NatGateways",
                                 Filter=_ec2.ownership_filters(ctx, node))
        return next((_observe(g) for g in gateways
                     if g["State"] not in ENDED and _ec2.is_node(ctx, node, g.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # The client token makes a retried create the same create on AWS; the look-up first also
        # covers emulators that ignore tokens and a gateway made by an earlier, interrupted run.
        existing = self.find(ctx, node)
        if existing is not None:
            return existing.id
        desired: NatGatewayProps = node.props
        gateway = ctx.client("ec2").create_nat_gateway(
            SubnetId=desired.subnet_id, AllocationId=desired.allocation_id,
            ConnectivityType=desired.connectivity_type, ClientToken=ctx.client_token(node.address),
            TagSpecifications=_ec2.tag_specifications("natgateway", node))["NatGateway"]
        return gateway["NatGatewayId"]

    def update(self, ctx: Ctx, observed: Observed[NatGatewayProps], node: Node,
               changes: list[AttrChange]) -> None:
        # Every property forces a replacement: only tags change in place.
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[NatGatewayProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[NatGatewayProps]) -> None:
        # `observed` was read just before (the executor's re-read): no describe first. A delete
        # that fails is looked into: a gateway already deleting (a retry after a lost reply) is done.
        if observed.status == "deleting":
            return
        ec2 = ctx.client("ec2")
        try:
            _ec2.ignore_not_found(ec2.delete_nat_gateway, NatGatewayId=observed.id)
        except Exception:
            gateway = _find_by_id(ec2, observed.id)
            if gateway is None or gateway["State"] in ENDED + ("deleting",):
                return
            raise

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[NatGatewayProps] | None:
        ec2 = ctx.client("ec2")
        if until == "ready":
            # Right after create, AWS may not list the gateway yet: not there is still pending.
            gateway = wait_for(lambda: _find_by_id(ec2, id), _status_of, pending={"pending", GONE},
                               target={"available"}, timeout=self.timeouts.create, interval=POLL_INTERVAL,
                               describe=f"NAT gateway {id}")
            return _observe(gateway)
        # Until `deleted`: a deleting gateway still holds its EIP and a public IP in the VPC.
        wait_until(lambda: _status(ec2, id, ended=ENDED), pending={"deleting", "available", "pending"},
                   target={GONE}, timeout=self.timeouts.delete, interval=POLL_INTERVAL,
                   describe=f"NAT gateway {id}")
        return None

    def outputs(self, observed: Observed[NatGatewayProps]) -> Mapping[str, str]:
        return {"id": observed.id, "public_ip": observed.outputs.get("public_ip", "")}


def _find_by_id(ec2, gateway_id: str) -> dict | None:
    gateway = _ec2.describe_one(ec2, "describe_nat_gateways", "NatGateways", NatGatewayIds=[gateway_id])
    # A filtered answer may hold another id (TF's findNATGatewayByID checks too).
    return gateway if gateway is not None and gateway["NatGatewayId"] == gateway_id else None


def _observe(gateway: dict) -> Observed[NatGatewayProps]:
    tags = tag_dict(gateway.get("Tags"))
    address = next(iter(gateway.get("NatGatewayAddresses", [])), {})
    props = NatGatewayProps(subnet_id=gateway["SubnetId"], allocation_id=address.get("AllocationId", ""),
                            connectivity_type=gateway.get("ConnectivityType", "public"))
    return Observed(_ec2.address_for("nat_gateway", tags, gateway["NatGatewayId"]), gateway["NatGatewayId"],
                    props, tags, status=gateway["State"], outputs={"public_ip": address.get("PublicIp", "")})


def _status(ec2, gateway_id: str, ended: tuple[str, ...] = ()) -> tuple[str, str | None] | None:
    """(state, AWS's failure reason) of the gateway; None when it is not there (or in an `ended` state)."""
    gateway = _find_by_id(ec2, gateway_id)
    if gateway is None or gateway["State"] in ended:
        return None
    return _status_of(gateway)


def _status_of(gateway: dict) -> tuple[str, str | None]:
    """(state, AWS's failure reason) of a DescribeNatGateways answer."""
    reason = ": ".join(p for p in (gateway.get("FailureCode"), gateway.get("FailureMessage")) if p)
    return gateway["State"], reason or None
