"""The network kinds (vpc, internet gateway, subnets, EIP, NAT gateway, route tables, security
groups) through the lifecycle every kind goes through, against moto server:

create → read back with plain boto3 → discover + diff clean, read-only → drift by hand shows
exactly that field → update repairs it → deleted out of band is absent → delete leaves nothing
tagged, foreign resources untouched.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from envctl.aws.session import AwsOptions, AwsSession
from envctl.aws.waiters import WaitFailed
from envctl.model.address import Address
from envctl.model.graph import Graph
from envctl.plan.planner import delete_order, tag_change, wanted_tags
from envctl.provisioners import by_kind, nat_gateway
from envctl.provisioners._ec2 import wait_readable
from envctl.provisioners.base import Ctx, NotOurs, Observed
from envctl.sandbox.middleware import Latency, chain
from envctl.sandbox.server import EmulatedAws
from tests.conftest import REGION
from tests.provisioners.harness import (Arrivals, create_all, delete_all, discover, drift, graph_from_yaml,
                                        make_ctx, offline_client, outputs_of, resolved)

KINDS = ["vpc", "internet_gateway", "subnet", "eip", "nat_gateway", "route_table", "security_group"]

# The network of specs/base.yaml, plus a group that exercises self references, rule
# descriptions and an egress list of its own.
SPEC = """\
tags:
  CostCenter: "4711"
  Owner: platform-team
network:
  cidr: 10.20.0.0/16
  zones: 2
  nat: {nat}
  tiers:
    public:  {{prefix: 24, internet: true}}
    private: {{prefix: 20}}
    data:    {{prefix: 24}}
security_groups:
  bastion:
    ingress:
      - {{port: 22, from: 203.0.113.0/24}}
  app:
    ingress:
      - {{port: 8080, from: bastion}}
      - {{port: 22, from: bastion}}
  db:
    ingress:
      - {{port: 5432, from: app}}
  cache:
    ingress:
      - {{port: 6379, from: self, description: cluster peers}}
      - {{ports: 6380-6390, from: app}}
    egress:
      - {{port: 443, to: 0.0.0.0/0, description: https out}}
"""

SUBNETS = {                                  # the carving of 10.20.0.0/16, tier by tier, zone by zone
    "public-a": ("10.20.0.0/24", "eu-north-1a"),
    "public-b": ("10.20.1.0/24", "eu-north-1b"),
    "private-a": ("10.20.16.0/20", "eu-north-1a"),
    "private-b": ("10.20.32.0/20", "eu-north-1b"),
    "data-a": ("10.20.48.0/24", "eu-north-1a"),
    "data-b": ("10.20.49.0/24", "eu-north-1b"),
}


@dataclass
class Net:
    aws: object
    ctx: Ctx
    graph: Graph
    created: dict[Address, Observed]

    def id(self, kind: str, name: str) -> str:
        return self.created[Address(kind, name)].id


@pytest.fixture(scope="module")
def session(emulator) -> AwsSession:
    """harness.make_ctx's session, built once for the module: each new one costs about a second
    (botocore loads EC2's model again). moto's state is still fresh for every test."""
    with pytest.MonkeyPatch.context() as env:
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            env.delenv(var, raising=False)
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        session = AwsSession(AwsOptions(endpoint_url=emulator.endpoint, access_key="testing",
                                        secret_key="testing"), REGION)
        session.client("ec2")
    session.scope = ("acme", "qa")
    return session


@pytest.fixture
def ctx(aws, session) -> Ctx:
    session.forget_tagged()
    return Ctx(aws=session, project="acme", environment="qa")


@pytest.fixture
def net(aws, ctx, tmp_path) -> Net:
    graph = graph_from_yaml(tmp_path, SPEC.format(nat="single"))
    return Net(aws, ctx, graph, create_all(ctx, graph))


def repair(net: Net, found: dict[Address, Observed], address: Address) -> None:
    """What the executor does for an UPDATE: the kind's update for the props, update_tags for the tags."""
    outputs = outputs_of(found)
    node = resolved(net.graph[address], outputs)
    p = by_kind(address.kind)
    changes = list(p.diff(node.props, found[address]))
    if changes:
        p.update(net.ctx, found[address], node, changes)
    if tag_change(node, found[address].tags) is not None:
        p.update_tags(net.ctx, found[address], wanted_tags(node, found[address].tags))


def rules(permissions: list[dict]) -> set[tuple]:
    """Plain boto3 permissions → {(protocol, from, to, source, description)}, one per source."""
    out = set()
    for p in permissions:
        ports = (p.get("FromPort"), p.get("ToPort"))
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], *ports, r["CidrIp"], r.get("Description")))
        for r in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], *ports, r["GroupId"], r.get("Description")))
    return out


# ------------------------------------------------------------------ 1. create, read back

def test_create_builds_the_network_the_spec_describes(net):
    ec2 = net.aws.client("ec2")
    vpc_id = net.id("vpc", "main")

    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.20.0.0/16"
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]

    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(
        SubnetIds=[net.id("subnet", n) for n in SUBNETS])["Subnets"]}
    assert {n: (subnets[net.id("subnet", n)]["CidrBlock"], subnets[net.id("subnet", n)]["AvailabilityZone"])
            for n in SUBNETS} == SUBNETS
    assert {s["VpcId"] for s in subnets.values()} == {vpc_id}
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets.values())

    igw = ec2.describe_internet_gateways(InternetGatewayIds=[net.id("internet_gateway", "main")])
    assert igw["InternetGateways"][0]["Attachments"] == [{"State": "available", "VpcId": vpc_id}]

    eip = ec2.describe_addresses(AllocationIds=[net.id("eip", "nat-a")])["Addresses"][0]
    assert eip["Domain"] == "vpc"
    nat = ec2.describe_nat_gateways(NatGatewayIds=[net.id("nat_gateway", "nat-a")])["NatGateways"][0]
    assert nat["State"] == "available"
    assert nat["SubnetId"] == net.id("subnet", "public-a")
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == eip["AllocationId"]
    assert net.created[Address("nat_gateway", "nat-a")].outputs["public_ip"] == eip["PublicIp"]

    def table(name):
        t = ec2.describe_route_tables(RouteTableIds=[net.id("route_table", name)])["RouteTables"][0]
        routes = {(r["DestinationCidrBlock"], r.get("GatewayId") or r.get("NatGatewayId")) for r in t["Routes"]}
        return t["VpcId"], routes, {a["SubnetId"] for a in t["Associations"]}

    assert table("public") == (vpc_id, {("10.20.0.0/16", "local"), ("0.0.0.0/0", net.id("internet_gateway", "main"))},
                               {net.id("subnet", "public-a"), net.id("subnet", "public-b")})
    assert table("private") == (vpc_id, {("10.20.0.0/16", "local"), ("0.0.0.0/0", net.id("nat_gateway", "nat-a"))},
                                {net.id("subnet", n) for n in ("private-a", "private-b", "data-a", "data-b")})

    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(
        GroupIds=[net.id("security_group", n) for n in ("bastion", "app", "db", "cache")])["SecurityGroups"]}
    bastion, app, db, cache = (groups[net.id("security_group", n)] for n in ("bastion", "app", "db", "cache"))
    everywhere = {("-1", None, None, "0.0.0.0/0", None)}
    assert (bastion["GroupName"], bastion["Description"], bastion["VpcId"]) == ("acme-qa-bastion", "acme qa bastion",
                                                                               vpc_id)
    assert rules(bastion["IpPermissions"]) == {("tcp", 22, 22, "203.0.113.0/24", None)}
    assert rules(app["IpPermissions"]) == {("tcp", 8080, 8080, bastion["GroupId"], None),
                                           ("tcp", 22, 22, bastion["GroupId"], None)}
    assert rules(db["IpPermissions"]) == {("tcp", 5432, 5432, app["GroupId"], None)}
    assert rules(cache["IpPermissions"]) == {("tcp", 6379, 6379, cache["GroupId"], "cluster peers"),
                                             ("tcp", 6380, 6390, app["GroupId"], None)}
    assert [rules(g["IpPermissionsEgress"]) for g in (bastion, app, db)] == [everywhere] * 3
    assert rules(cache["IpPermissionsEgress"]) == {("tcp", 443, 443, "0.0.0.0/0", "https out")}

    ids = {o.id: a for a, o in net.created.items()}
    tags: dict[str, dict] = {}
    for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": list(ids)}])["Tags"]:
        tags.setdefault(t["ResourceId"], {})[t["Key"]] = t["Value"]
    assert set(tags) == set(ids)
    for resource_id, address in ids.items():
        assert tags[resource_id] == {"envctl:project": "acme", "envctl:environment": "qa",
                                     "envctl:resource": str(address), "CostCenter": "4711",
                                     "Owner": "platform-team", "Name": net.graph[address].physical_name}, address


def test_create_with_a_nat_gateway_per_zone(aws, ctx, tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC.format(nat="per_zone"))
    created = create_all(ctx, graph)
    ec2 = aws.client("ec2")

    def id_(kind, name):
        return created[Address(kind, name)].id

    for zone in "ab":
        nat = ec2.describe_nat_gateways(NatGatewayIds=[id_("nat_gateway", f"nat-{zone}")])["NatGateways"][0]
        assert nat["SubnetId"] == id_("subnet", f"public-{zone}")
        assert nat["NatGatewayAddresses"][0]["AllocationId"] == id_("eip", f"nat-{zone}")
        t = ec2.describe_route_tables(RouteTableIds=[id_("route_table", f"private-{zone}")])["RouteTables"][0]
        assert [r.get("NatGatewayId") for r in t["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"] == \
            [nat["NatGatewayId"]]
        assert {a["SubnetId"] for a in t["Associations"]} == {id_("subnet", f"private-{zone}"),
                                                              id_("subnet", f"data-{zone}")}
    assert drift(ctx, graph, KINDS)[1] == {}


# ------------------------------------------------------------------ 2. discover and diff: clean, read-only

def test_discover_finds_exactly_the_network_and_diff_is_clean_without_a_mutating_call(net):
    net.aws.log.clear()
    found, changes = drift(net.ctx, net.graph, KINDS)
    assert set(found) == set(net.graph.nodes)
    assert {a: o.id for a, o in found.items()} == {a: o.id for a, o in net.created.items()}
    assert changes == {}
    assert net.aws.log.mutating() == []
    # One describe per kind, whatever the number of resources (the VPC's DNS attributes excepted).
    assert net.aws.log.count("DescribeSubnets") == 1
    assert net.aws.log.count("DescribeSecurityGroups") == 1
    assert net.aws.log.count("DescribeRouteTables") == 1


# ------------------------------------------------------------------ 3 + 4. drift by hand, update repairs

def _dns_hostnames_off(ec2, net):
    ec2.modify_vpc_attribute(VpcId=net.id("vpc", "main"), EnableDnsHostnames={"Value": False})


def _rule_added(ec2, net):
    ec2.authorize_security_group_ingress(GroupId=net.id("security_group", "db"), IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])


def _rule_description_changed(ec2, net):
    group = net.id("security_group", "cache")
    rule = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
            "UserIdGroupPairs": [{"GroupId": group, "Description": "cluster peers"}]}
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])
    rule["UserIdGroupPairs"][0]["Description"] = "someone else's words"
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])


def _default_egress_revoked(ec2, net):
    ec2.revoke_security_group_egress(GroupId=net.id("security_group", "bastion"), IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def _route_deleted(ec2, net):
    ec2.delete_route(RouteTableId=net.id("route_table", "private"), DestinationCidrBlock="0.0.0.0/0")


def _route_added(ec2, net):
    ec2.create_route(RouteTableId=net.id("route_table", "public"), DestinationCidrBlock="192.0.2.0/24",
                     NatGatewayId=net.id("nat_gateway", "nat-a"))


def _subnet_disassociated(ec2, net):
    table = ec2.describe_route_tables(RouteTableIds=[net.id("route_table", "private")])["RouteTables"][0]
    association = next(a for a in table["Associations"] if a["SubnetId"] == net.id("subnet", "data-b"))
    ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])


def _tag_changed(ec2, net):
    ec2.create_tags(Resources=[net.id("subnet", "data-a")], Tags=[{"Key": "Owner", "Value": "someone-else"}])


def _tag_added(ec2, net):
    ec2.create_tags(Resources=[net.id("nat_gateway", "nat-a")], Tags=[{"Key": "Extra", "Value": "by hand"}])


def _renamed(ec2, net):
    ec2.create_tags(Resources=[net.id("security_group", "app")], Tags=[{"Key": "Name", "Value": "renamed"}])


def _public_ips_on(ec2, net):
    ec2.modify_subnet_attribute(SubnetId=net.id("subnet", "private-a"), MapPublicIpOnLaunch={"Value": True})


@pytest.mark.parametrize("change,address,fields", [
    (_dns_hostnames_off, "vpc/main", ["enable_dns_hostnames"]),
    (_rule_added, "security_group/db", ["ingress"]),
    (_rule_description_changed, "security_group/cache", ["ingress"]),
    (_default_egress_revoked, "security_group/bastion", ["egress"]),
    (_route_deleted, "route_table/private", ["routes"]),
    (_route_added, "route_table/public", ["routes"]),
    (_subnet_disassociated, "route_table/private", ["subnet_ids"]),
    (_tag_changed, "subnet/data-a", ["tags"]),
    (_tag_added, "nat_gateway/nat-a", ["tags"]),
    (_renamed, "security_group/app", ["tags"]),
    (_public_ips_on, "subnet/private-a", ["map_public_ip_on_launch"]),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_drift_shows_exactly_that_field_and_update_repairs_it(net, change, address, fields):
    change(net.aws.client("ec2"), net)
    found, changes = drift(net.ctx, net.graph, KINDS)
    assert changes == {Address.parse(address): fields}

    repair(net, found, Address.parse(address))
    found, changes = drift(net.ctx, net.graph, KINDS)
    assert changes == {}
    assert found[Address.parse(address)].id == net.created[Address.parse(address)].id     # repaired in place


def test_a_detached_internet_gateway_is_attached_again(aws, ctx, tmp_path):
    """Without NAT gateways: AWS refuses to detach a gateway while the VPC has mapped public IPs."""
    graph = graph_from_yaml(tmp_path, SPEC.format(nat="none"))
    net = Net(aws, ctx, graph, create_all(ctx, graph))
    ec2 = aws.client("ec2")
    gateway, vpc = net.id("internet_gateway", "main"), net.id("vpc", "main")
    ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    found, changes = drift(ctx, graph, KINDS)
    assert changes == {Address("internet_gateway", "main"): ["vpc_id"]}

    repair(net, found, Address("internet_gateway", "main"))
    assert drift(ctx, graph, KINDS)[1] == {}
    attachments = ec2.describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"][0]["Attachments"]
    assert attachments == [{"State": "available", "VpcId": vpc}]


def test_update_never_touches_envctl_tags(net):
    ec2 = net.aws.client("ec2")
    subnet = net.id("subnet", "data-a")
    ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Extra", "Value": "x"}])
    found = discover(net.ctx, KINDS)
    by_kind("subnet").update_tags(net.ctx, found[Address("subnet", "data-a")], {"Owner": "team-b"})
    tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"]}
    assert tags == {"envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": "subnet/data-a",
                    "Owner": "team-b", "Name": "acme-qa-data-a"}


def test_repairing_rules_from_a_stale_read_does_not_trip_on_a_rule_already_there(net):
    """EC2's describe lags: the read may miss a rule that is there. AWS refuses a batch holding
    one such rule (InvalidPermission.Duplicate) and adds none of it; the repair must still add
    the rest."""
    ec2 = net.aws.client("ec2")
    group, app = net.id("security_group", "app"), net.id("security_group", "bastion")
    rules = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": app}]}
             for port in (22, 8080)]
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rules)
    stale = discover(net.ctx, ["security_group"])[Address("security_group", "app")]   # lacks both
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rules[:1])        # one is back

    node = resolved(net.graph[Address("security_group", "app")], outputs_of(discover(net.ctx, KINDS)))
    by_kind("security_group").update(net.ctx, stale, node, [])

    live = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert sorted(p["FromPort"] for p in live) == [22, 8080]
    assert drift(net.ctx, net.graph, KINDS)[1] == {}


# ------------------------------------------------------------------ 5. deleted out of band

def test_deleted_by_hand_is_absent_and_create_brings_it_back(net):
    ec2 = net.aws.client("ec2")
    ec2.delete_nat_gateway(NatGatewayId=net.id("nat_gateway", "nat-a"))          # stays listed as `deleted`
    ec2.delete_security_group(GroupId=net.id("security_group", "db"))

    found, changes = drift(net.ctx, net.graph, KINDS)
    nat, db = Address("nat_gateway", "nat-a"), Address("security_group", "db")
    assert nat not in found and db not in found
    # the private table's route to the NAT gateway is unknown until a new one exists
    assert changes == {nat: None, db: None, Address("route_table", "private"): ["routes"]}
    assert by_kind("nat_gateway").read(net.ctx, net.id("nat_gateway", "nat-a")) is None

    outputs = outputs_of(found)
    new_id = by_kind("security_group").create(net.ctx, resolved(net.graph[db], outputs))
    assert new_id != net.id("security_group", "db")
    assert drift(net.ctx, net.graph, KINDS)[1] == {nat: None, Address("route_table", "private"): ["routes"]}


# ------------------------------------------------------------------ 6. delete: nothing tagged remains

def _tagged_leftovers(ec2, ctx: Ctx) -> dict[str, list]:
    f = ctx.scope_filters()
    return {
        "vpcs": ec2.describe_vpcs(Filters=f)["Vpcs"],
        "subnets": ec2.describe_subnets(Filters=f)["Subnets"],
        "gateways": ec2.describe_internet_gateways(Filters=f)["InternetGateways"],
        "addresses": ec2.describe_addresses(Filters=f)["Addresses"],
        "nat": [g for g in ec2.describe_nat_gateways(Filter=f)["NatGateways"] if g["State"] != "deleted"],
        "tables": ec2.describe_route_tables(Filters=f)["RouteTables"],
        "groups": ec2.describe_security_groups(Filters=f)["SecurityGroups"],
    }


def _foreign_vpcs(ec2) -> dict[str, str]:
    """An untagged VPC with a group, and the same project's prod VPC: neither is qa's."""
    foreign = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="acme-qa-db", Description="someone's", VpcId=foreign)
    prod_tags = [{"Key": "envctl:project", "Value": "acme"}, {"Key": "envctl:environment", "Value": "prod"},
                 {"Key": "envctl:resource", "Value": "vpc/main"}]
    prod = ec2.create_vpc(CidrBlock="10.10.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": prod_tags}])
    return {"foreign": foreign, "prod": prod["Vpc"]["VpcId"]}


def test_delete_all_leaves_nothing_tagged_and_foreign_vpcs_untouched(net):
    ec2 = net.aws.client("ec2")
    default_vpc = next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"])
    others = _foreign_vpcs(ec2)
    found = discover(net.ctx, KINDS)
    assert set(found) == set(net.graph.nodes)                 # the prod VPC is not qa's

    net.aws.log.clear()
    delete_all(net.ctx, found, net.graph)

    assert _tagged_leftovers(ec2, net.ctx) == {k: [] for k in _tagged_leftovers(ec2, net.ctx)}
    assert discover(net.ctx, KINDS) == {}
    left = {v["VpcId"]: v for v in ec2.describe_vpcs()["Vpcs"]}
    assert set(left) == {default_vpc, others["foreign"], others["prod"]}
    assert {t["Key"]: t["Value"] for t in left[others["prod"]]["Tags"]}["envctl:environment"] == "prod"
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["acme-qa-db"]}])["SecurityGroups"]

    # moto checks no dependencies on delete (MOTO-NOTES §3): the order AWS needs is asserted here.
    log = net.aws.log
    assert log.index("DeleteNatGateway") < log.index("ReleaseAddress")
    assert log.index("DeleteNatGateway") < log.index("DetachInternetGateway") < log.index("DeleteInternetGateway")
    # the NAT gateway was watched until `deleted` before its EIP went
    calls = [c.action for c in log.snapshot()]
    assert "DescribeNatGateways" in calls[calls.index("DeleteNatGateway"):calls.index("ReleaseAddress")]
    assert log.index("DisassociateRouteTable") < log.index("DeleteRouteTable") < log.index("DeleteSubnet")
    assert log.index("DeleteSubnet") < log.index("DeleteVpc")
    assert log.index("DeleteSecurityGroup") < log.index("DeleteVpc")
    # groups let go of their references to groups (app → bastion, db → app, cache → app and itself) first
    revokes = [c for c in log.snapshot() if c.action == "RevokeSecurityGroupIngress"]
    assert len(revokes) == 3 and all(c.status == 200 for c in revokes)


def test_deletes_go_by_the_read_made_just_before_them(net):
    # The executor reads each resource right before it deletes it: delete describes nothing again.
    found = discover(net.ctx, KINDS)
    table = max((a for a in found if a.kind == "route_table"), key=lambda a: len(found[a].props.subnet_ids))
    nat = next(a for a in found if a.kind == "nat_gateway")
    expected = [
        (table, ["DisassociateRouteTable"] * len(found[table].props.subnet_ids) + ["DeleteRouteTable"]),
        (Address("security_group", "db"), ["RevokeSecurityGroupIngress", "DeleteSecurityGroup"]),   # db → app
        (nat, ["DeleteNatGateway"]),
        (Address("internet_gateway", "main"), ["DetachInternetGateway", "DeleteInternetGateway"]),
    ]
    for address, calls in expected:
        net.aws.log.clear()
        by_kind(address.kind).delete(net.ctx, found[address])
        assert [c.action for c in net.aws.log.snapshot()] == calls, address
        assert all(c.status < 300 for c in net.aws.log.snapshot()), address
        assert by_kind(address.kind).read(net.ctx, found[address].id) is None, address


def test_a_gateway_detached_since_it_was_read_is_deleted_all_the_same(net):
    # What a retry meets when the detach went through but its reply was lost.
    found = discover(net.ctx, KINDS)
    gateway = found[Address("internet_gateway", "main")]
    nat = next(o for a, o in found.items() if a.kind == "nat_gateway")     # it holds a public address
    by_kind("nat_gateway").delete(net.ctx, nat)
    by_kind("nat_gateway").wait(net.ctx, nat.id, "gone")
    ec2 = net.aws.client("ec2")
    ec2.detach_internet_gateway(InternetGatewayId=gateway.id, VpcId=gateway.props.vpc_id)
    net.aws.log.clear()
    by_kind("internet_gateway").delete(net.ctx, gateway)
    assert [(c.action, c.status < 300) for c in net.aws.log.snapshot()] == [
        ("DetachInternetGateway", False), ("DescribeInternetGateways", True), ("DeleteInternetGateway", True)]
    assert by_kind("internet_gateway").read(net.ctx, gateway.id) is None


def test_destroy_without_a_spec_follows_the_kinds_uses(aws, ctx, tmp_path):
    """Destroy of an environment whose spec is gone: the order between kinds comes from each
    kind's `uses`. Groups that refer to each other are one kind: a group still referred to (and
    so its VPC) is refused with DependencyViolation, as on AWS, and retried, as the executor does."""
    from envctl.aws import errors

    create_all(ctx, graph_from_yaml(tmp_path, SPEC.format(nat="per_zone")))
    found = discover(ctx, KINDS)
    aws.log.clear()
    pending = delete_order(found, by_kind)
    for _ in range(len(KINDS)):
        refused = []
        for address in pending:
            p = by_kind(address.kind)
            try:
                p.delete(ctx, found[address])
            except Exception as e:
                if errors.error_code(e) != "DependencyViolation":
                    raise
                refused.append(address)
                continue
            p.wait(ctx, found[address].id, "gone")
        pending = refused
    assert pending == []

    assert _tagged_leftovers(aws.client("ec2"), ctx) == {k: [] for k in _tagged_leftovers(aws.client("ec2"), ctx)}
    calls = [c.action for c in aws.log.snapshot() if c.status == 200]
    last = {action: len(calls) - 1 - calls[::-1].index(action) for action in set(calls)}
    assert last["DeleteRouteTable"] < calls.index("DeleteNatGateway")
    assert last["DeleteNatGateway"] < calls.index("ReleaseAddress")
    assert last["DeleteNatGateway"] < calls.index("DetachInternetGateway")
    assert last["DeleteNatGateway"] < calls.index("DeleteSubnet")
    assert max(last["DeleteSubnet"], last["DeleteSecurityGroup"], last["DeleteInternetGateway"]) \
        < calls.index("DeleteVpc")


def test_delete_of_what_is_already_gone_succeeds(net):
    found = discover(net.ctx, KINDS)
    delete_all(net.ctx, found, net.graph)
    net.aws.log.clear()
    delete_all(net.ctx, found, net.graph)                      # everything is gone already: no error
    assert [c for c in net.aws.log.snapshot() if c.status >= 500] == []     # nor any retried server error


# ------------------------------------------------------------------ adopt, or refuse what is not ours

def test_create_again_adopts_what_carries_our_address(net):
    net.aws.log.clear()
    outputs = outputs_of(net.created)
    for node in net.graph:
        assert by_kind(node.kind).create(net.ctx, resolved(node, outputs)) == net.created[node.address].id
    # Subnets and security groups are created first: their taken CIDR or name is refused, changing
    # nothing, and the one found is adopted. The other kinds look first and make no call at all.
    refused = Counter(c.action for c in net.aws.log.mutating() if c.status == 400)
    assert [c for c in net.aws.log.mutating() if c.status != 400] == []
    kinds = Counter(node.kind for node in net.graph)
    assert refused == {"CreateSubnet": kinds["subnet"], "CreateSecurityGroup": kinds["security_group"]}
    assert len(net.aws.client("ec2").describe_vpcs(Filters=net.ctx.scope_filters())["Vpcs"]) == 1


def test_a_group_name_taken_by_an_untagged_group_is_not_ours(net):
    ec2 = net.aws.client("ec2")
    db = Address("security_group", "db")
    ec2.delete_security_group(GroupId=net.id("security_group", "db"))
    ec2.create_security_group(GroupName="acme-qa-db", Description="by hand", VpcId=net.id("vpc", "main"))
    outputs = outputs_of(net.created)

    with pytest.raises(NotOurs, match="security group acme-qa-db"):
        by_kind("security_group").create(net.ctx, resolved(net.graph[db], outputs))
    taken = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["acme-qa-db"]}])
    assert rules(taken["SecurityGroups"][0]["IpPermissions"]) == set()     # left as it was


def test_a_subnet_cidr_taken_by_an_untagged_subnet_is_not_ours(net):
    ec2 = net.aws.client("ec2")
    data_b = Address("subnet", "data-b")
    ec2.delete_subnet(SubnetId=net.id("subnet", "data-b"))
    ec2.create_subnet(VpcId=net.id("vpc", "main"), CidrBlock="10.20.49.0/24", AvailabilityZone="eu-north-1b")
    outputs = outputs_of(net.created)

    with pytest.raises(NotOurs, match="subnet 10.20.49.0/24"):
        by_kind("subnet").create(net.ctx, resolved(net.graph[data_b], outputs))


# ------------------------------------------------------------------ waits (moto's states are immediate)

def test_a_new_resource_is_read_until_listed():
    answers = [None, None, "the vpc"]
    assert wait_readable(lambda: answers.pop(0), what="VPC vpc-1", timeout=60, interval=0) == "the vpc"
    assert answers == []


class _Stubbed:
    """A Clients with one botocore-stubbed EC2 client: the states moto skips (MOTO-NOTES §7)."""

    region = REGION

    def __init__(self):
        from botocore.stub import Stubber

        self.ec2 = offline_client("ec2")
        self.stub = Stubber(self.ec2)

    def client(self, service):
        return self.ec2

    def expect(self, *states, **extra):
        for state in states:
            answer = {"NatGateways": [{"NatGatewayId": "nat-1", "State": state, "SubnetId": "subnet-1", **extra}]}
            self.stub.add_response("describe_nat_gateways", answer, {"NatGatewayIds": ["nat-1"]})


def test_nat_wait_ready_polls_pending_and_reports_aws_failure(monkeypatch):
    monkeypatch.setattr(nat_gateway, "POLL_INTERVAL", 0)
    aws = _Stubbed()
    aws.expect("pending", "pending")
    aws.expect("failed", FailureCode="InsufficientFreeAddressesInSubnet",
               FailureMessage="Subnet has insufficient free addresses to create this NAT gateway")
    with aws.stub, pytest.raises(WaitFailed, match="nat-1 is failed, expected available: "
                                                   "InsufficientFreeAddressesInSubnet: Subnet has insufficient"):
        by_kind("nat_gateway").wait(Ctx(aws=aws, project="acme", environment="qa"), "nat-1", "ready")
    aws.stub.assert_no_pending_responses()


def test_nat_wait_gone_lasts_until_deleted(monkeypatch):
    monkeypatch.setattr(nat_gateway, "POLL_INTERVAL", 0)
    aws = _Stubbed()
    aws.expect("deleting", "deleting", "deleted")
    with aws.stub:
        assert by_kind("nat_gateway").wait(Ctx(aws=aws, project="acme", environment="qa"), "nat-1", "gone") is None
    aws.stub.assert_no_pending_responses()


def test_a_route_tables_subnet_associations_are_made_and_removed_side_by_side(aws, tmp_path):
    """Each association is its own object: a table's subnets are associated (and let go before
    its delete) in one call's time, not one call after another."""
    arrivals, latency = Arrivals(), Latency()
    server = EmulatedAws(wrap=chain(arrivals, latency)).start()
    try:
        ctx = make_ctx(SimpleNamespace(endpoint=server.endpoint, region=aws.region))
        graph = graph_from_yaml(tmp_path, SPEC.format(nat="single"))
        create_all(ctx, graph)
        private = Address("route_table", "private")
        table = discover(ctx, ["route_table"])[private]
        ec2 = ctx.client("ec2")
        for association in ec2.describe_route_tables(RouteTableIds=[table.id])["RouteTables"][0]["Associations"]:
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        latency.configure(seconds=0.3)
        with ThreadPoolExecutor(8) as pool:
            pooled = dataclasses.replace(ctx, read_pool=pool)
            p = by_kind("route_table")
            node = resolved(graph[private], outputs_of(discover(ctx, KINDS)))
            arrivals.calls.clear()
            p.update(pooled, p.read(ctx, table.id), node, list(p.diff(node.props, p.read(ctx, table.id))))
            associated = arrivals.of("AssociateRouteTable")
            arrivals.calls.clear()
            p.delete(pooled, p.read(ctx, table.id))
            disassociated = arrivals.of("DisassociateRouteTable")
        gone = p.read(ctx, table.id)
    finally:
        server.stop()
    assert len(associated) == len(disassociated) == 4            # private-a, private-b, data-a, data-b
    assert max(associated) - min(associated) < 0.2              # one after another: 0.3 s apart
    assert max(disassociated) - min(disassociated) < 0.2
    assert gone is None


def test_a_vpcs_two_dns_attributes_are_read_side_by_side(aws, tmp_path):
    """One call each (the API reads one attribute a call): a VPC's read, and a create's
    read-back on the critical path, take one call's time for both, not two."""
    arrivals, latency = Arrivals(), Latency()
    server = EmulatedAws(wrap=chain(arrivals, latency)).start()
    try:
        ctx = make_ctx(SimpleNamespace(endpoint=server.endpoint, region=aws.region))
        graph = graph_from_yaml(tmp_path, SPEC.format(nat="single"))
        vpc_id = create_all(ctx, graph)[Address("vpc", "main")].id
        latency.configure(seconds=0.3)
        with ThreadPoolExecutor(4) as pool:
            arrivals.calls.clear()
            observed = by_kind("vpc").read(dataclasses.replace(ctx, read_pool=pool), vpc_id)
    finally:
        server.stop()
    reads = arrivals.of("DescribeVpcAttribute")
    assert len(reads) == 2 and max(reads) - min(reads) < 0.2      # one after another: 0.3 s apart
    assert (observed.props.enable_dns_support, observed.props.enable_dns_hostnames) == (True, True)
