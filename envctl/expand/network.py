"""network: → vpc, internet gateway, subnets, EIPs + NAT gateways, route tables;
security_groups: → security groups with their rules."""
from __future__ import annotations

import ipaddress

from envctl.expand.base import Expansion
from envctl.provisioners.eip import EipProps
from envctl.provisioners.internet_gateway import InternetGatewayProps
from envctl.provisioners.nat_gateway import NatGatewayProps
from envctl.provisioners.route_table import Route, RouteTableProps
from envctl.provisioners.security_group import ALL_EGRESS, Rule, SecurityGroupProps
from envctl.provisioners.subnet import SubnetProps
from envctl.provisioners.vpc import VpcProps
from envctl.spec import network as carving
from envctl.spec.models import IngressRule

VPC = "main"


def subnet_name(tier: str, zone: int) -> str:
    return f"{tier}-{carving.ZONE_LETTERS[zone]}"


def subnet_refs(x: Expansion, tier: str, attr: str = "id") -> tuple:
    """The ids of a tier's subnets, one per zone."""
    return tuple(x.ref("subnet", subnet_name(tier, z), attr) for z in range(x.model.network.zones))


def expand_network(x: Expansion) -> None:
    net = x.model.network
    if net is None:
        return
    vpc_id = x.ref("vpc", VPC, "id")
    x.add("vpc", VPC, VpcProps(cidr_block=net.cidr), physical_name=x.physical("vpc"))
    zones = carving.zone_names(x.model.region, net.zones)
    cidrs = carving.carve(net.cidr, net.zones, net.tiers)
    public = [t for t, tier in net.tiers.items() if tier.internet]
    if public:
        x.add("internet_gateway", VPC, InternetGatewayProps(vpc_id=vpc_id), physical_name=x.physical("igw"))
    for tier_name, tier in net.tiers.items():
        for z, zone in enumerate(zones):
            name = subnet_name(tier_name, z)
            x.add("subnet", name, SubnetProps(vpc_id=vpc_id, cidr_block=cidrs[(tier_name, z)], availability_zone=zone))

    # NAT gateways live in the first internet tier's subnets: one (zone a) or one per zone.
    nat_zones = {"none": [], "single": [0], "per_zone": list(range(net.zones))}[net.nat]
    for z in nat_zones:
        name = f"nat-{carving.ZONE_LETTERS[z]}"
        x.add("eip", name, EipProps())
        x.add("nat_gateway", name, NatGatewayProps(subnet_id=x.ref("subnet", subnet_name(public[0], z), "id"),
                                                   allocation_id=x.ref("eip", name, "id")),
              extra_deps=[x.ref("internet_gateway", VPC, "id").address])

    if public:
        x.add("route_table", "public", RouteTableProps(
            vpc_id=vpc_id,
            routes=(Route(destination="0.0.0.0/0", gateway_id=x.ref("internet_gateway", VPC, "id")),),
            subnet_ids=tuple(s for t in public for s in subnet_refs(x, t))))
    private = [t for t, tier in net.tiers.items() if not tier.internet and tier.nat and nat_zones]
    isolated = [t for t, tier in net.tiers.items() if not tier.internet and t not in private]
    if private and net.nat == "single":
        x.add("route_table", "private", _nat_table(x, private, zones=range(net.zones), nat_zone=0))
    elif private:
        for z in range(net.zones):
            x.add("route_table", f"private-{carving.ZONE_LETTERS[z]}", _nat_table(x, private, zones=[z], nat_zone=z))
    if isolated:
        x.add("route_table", "isolated", RouteTableProps(
            vpc_id=vpc_id, subnet_ids=tuple(x.ref("subnet", subnet_name(t, z), "id")
                                            for t in isolated for z in range(net.zones))))


def _nat_table(x: Expansion, tiers: list[str], zones, nat_zone: int) -> RouteTableProps:
    nat = x.ref("nat_gateway", f"nat-{carving.ZONE_LETTERS[nat_zone]}", "id")
    return RouteTableProps(vpc_id=x.ref("vpc", VPC, "id"),
                           routes=(Route(destination="0.0.0.0/0", nat_gateway_id=nat),),
                           subnet_ids=tuple(x.ref("subnet", subnet_name(t, z), "id") for t in tiers for z in zones))


def expand_security_groups(x: Expansion) -> None:
    if x.model.network is None:
        return
    for name, group in x.model.security_groups.items():
        ingress = tuple(_rule(x, r, r.source) for r in group.ingress)
        egress = (ALL_EGRESS,) if group.egress is None else tuple(_rule(x, r, r.target) for r in group.egress)
        x.add("security_group", name, SecurityGroupProps(
            group_name=x.physical(name),
            description=group.description or f"{x.project} {x.environment} {name}",
            vpc_id=x.ref("vpc", VPC, "id"), ingress=ingress, egress=egress))


def _rule(x: Expansion, rule, other: str) -> Rule:
    protocol = "-1" if rule.protocol == "all" else rule.protocol
    lo, hi = rule.port_range
    common = dict(protocol=protocol, from_port=lo, to_port=hi, description=rule.description)
    if other == "self":
        return Rule(group_id="self", **common)
    try:
        net = ipaddress.ip_network(other)
    except ValueError:
        return Rule(group_id=x.ref("security_group", other, "id"), **common)
    return Rule(cidr_v6=str(net), **common) if net.version == 6 else Rule(cidr=str(net), **common)
