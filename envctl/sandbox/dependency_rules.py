"""AWS's deletion-dependency rules, which moto lacks, enforced in front of the emulator.

moto lets deletes succeed that AWS refuses (MOTO-NOTES §3), so a teardown in the wrong order
passes in the tests and fails on AWS. `DependencyRules` looks at each delete before moto does,
checks moto's state (the server runs in this process) and, when something still depends on
the resource, answers as AWS does: the same code and message, HTTP 400, in the protocol's
error format. It is one layer of `EmulatedAws` (on by default).

The rules, each as AWS states it:

    ec2 DeleteSubnet             DependencyViolation   live instances, NAT gateways, network interfaces,
                                                       DB instances whose subnet group holds the subnet
    ec2 DeleteSecurityGroup      DependencyViolation   used by a live instance, a network interface or a
                                                       DB instance; referenced by another group's rule
    ec2 DetachInternetGateway    DependencyViolation   the VPC still has mapped public addresses
                                                       (instances' public IPs, EIPs of instances/NAT gateways)
    ec2 DeleteVpc                DependencyViolation   an attached internet gateway, non-default security groups
    ec2 ReleaseAddress           AuthFailure           associated to a NAT gateway (that is not deleted)
                                 InvalidIPAddress.InUse  associated to an instance or network interface
    ec2 DeleteRouteTable         DependencyViolation   the VPC's main route table
    rds DeleteDBSubnetGroup      InvalidDBSubnetGroupStateFault   used by a DB instance or cluster
    autoscaling DeleteAutoScalingGroup  ResourceInUse  instances in the group and no ForceDelete

A DB instance's network interface sits in one subnet of its group, chosen by AWS; since a client
cannot know which, every subnet of the group counts as in use while the instance lives.

moto already refuses, with AWS's codes (tests/sandbox/test_dependency_rules.py keeps it so):
a VPC with subnets or non-main route tables, deleting an attached internet gateway, a route
table with subnet associations, a role with policies or in an instance profile, an instance
profile holding a role, and a non-empty bucket.

moto leaves traces AWS would not (a deleted NAT gateway keeps its network interface and EIP
association; a terminated instance keeps its interfaces), so the rules ask whether the owner is
still alive rather than whether an interface exists. Every rule is on a query-protocol service
(EC2, RDS, Auto Scaling), so the parameters are read from the form body (and put back for moto).
Rules see only the account and region of the call: moto keeps one backend per account and region.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl
from uuid import uuid4

from envctl.sandbox.server import ReplayBody, describe_request

_GONE_INSTANCE = frozenset({"terminated"})            # "shutting-down" still holds its interfaces
_GONE_NAT = frozenset({"deleted", "failed"})          # "deleting" still holds its interface and EIP
_GONE_DB = frozenset({"deleted"})
_RDS_ARN_TYPE = {"instance": "db:", "cluster": "cluster:"}    # blockers named as in RDS ARNs


@dataclass(frozen=True)
class Refusal:
    """AWS's answer to a delete that something still depends on."""

    code: str
    message: str
    target: str                       # the resource the delete was for
    blockers: tuple[str, ...]         # what still depends on it (AWS does not say; kept for the log)


@dataclass(frozen=True)
class Refused:
    """One delete the rules refused, for tests and reports."""

    service: str
    action: str
    account: str
    region: str
    target: str
    code: str
    blockers: tuple[str, ...]


@dataclass(frozen=True)
class _Request:
    account: str
    region: str
    params: dict[str, str]


class DependencyRules:
    """WSGI middleware: refuses deletes that AWS would refuse, forwards everything else."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self.refused: list[Refused] = []

    def clear(self) -> None:
        with self._lock:
            self.refused.clear()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        service, action, region, _ = describe_request(environ)
        rule = _RULES.get((service, action))
        if rule is None:
            return self.app(environ, start_response)
        request = _Request(_account(environ), region, _form_params(environ))
        refusal = rule(request)
        if refusal is None:
            return self.app(environ, start_response)
        with self._lock:
            self.refused.append(Refused(service, action, request.account, region, refusal.target, refusal.code,
                                        refusal.blockers))
        return _error(service, refusal, start_response)


# ------------------------------------------------------------------ EC2

def _delete_subnet(request: _Request) -> Refusal | None:
    ec2 = _ec2(request)
    subnet_id = request.params.get("SubnetId", "")
    if not any(subnet_id in subnets for subnets in list(ec2.subnets.values())):
        return None
    blockers = [i.id for i in _live_instances(ec2) if any(n.subnet.id == subnet_id for n in _nics(i))]
    blockers += [n.id for n in list(ec2.nat_gateways.values())
                 if n.subnet_id == subnet_id and n.state not in _GONE_NAT]
    blockers += [e.id for e in _standalone_enis(ec2) if e.subnet.id == subnet_id]
    blockers += ["db:" + db.db_instance_identifier for db in _live_databases(request)
                 if subnet_id in _db_subnet_ids(db)]
    return _dependency_violation(subnet_id, f"The subnet '{subnet_id}' has dependencies and cannot be deleted.",
                                 blockers)


def _delete_security_group(request: _Request) -> Refusal | None:
    ec2 = _ec2(request)
    group_id = request.params.get("GroupId") or ""
    if not group_id and request.params.get("GroupName"):
        group = ec2.get_security_group_from_name(request.params["GroupName"])
        group_id = group.id if group else ""
    if not group_id or ec2.get_security_group_from_id(group_id) is None:
        return None
    blockers = [i.id for i in _live_instances(ec2)
                if group_id in {g.id for g in i.security_groups} | {g.id for n in _nics(i) for g in n.group_set}]
    blockers += [e.id for e in _standalone_enis(ec2) if group_id in {g.id for g in e.group_set}]
    blockers += ["db:" + db.db_instance_identifier for db in _live_databases(request)
                 if group_id in (db.vpc_security_group_ids or [])]
    blockers += [g.id for g in _security_groups(ec2)
                 if g.id != group_id and any(r.source_group.get("GroupId") == group_id
                                             for r in list(g.ingress_rules) + list(g.egress_rules))]
    return _dependency_violation(group_id, f"resource {group_id} has a dependent object", blockers)


def _detach_internet_gateway(request: _Request) -> Refusal | None:
    ec2 = _ec2(request)
    igw = ec2.internet_gateways.get(request.params.get("InternetGatewayId", ""))
    vpc_id = request.params.get("VpcId", "")
    if igw is None or igw.vpc is None or igw.vpc.id != vpc_id:
        return None                                        # moto answers Gateway.NotAttached itself
    mapped = {n.public_ip: i.id for i in _live_instances(ec2) for n in _nics(i)
              if n.public_ip and n.subnet.vpc_id == vpc_id}
    for eip in list(ec2.addresses):
        owner = _association_owner(ec2, eip)
        if owner is not None and _eip_vpc(eip) == vpc_id:
            mapped[eip.public_ip] = owner
    blockers = [f"{owner} ({ip})" for ip, owner in mapped.items()]
    return _dependency_violation(igw.id, f"Network {vpc_id} has some mapped public address(es). Please unmap "
                                 "those public address(es) before detaching the gateway.", blockers)


def _delete_vpc(request: _Request) -> Refusal | None:
    ec2 = _ec2(request)
    vpc_id = request.params.get("VpcId", "")
    if vpc_id not in ec2.vpcs:
        return None
    blockers = [igw.id for igw in list(ec2.internet_gateways.values()) if igw.vpc is not None and igw.vpc.id == vpc_id]
    blockers += [g.id for g in list(ec2.groups.get(vpc_id, {}).values()) if not g.is_default]
    return _dependency_violation(vpc_id, f"The vpc '{vpc_id}' has dependencies and cannot be deleted.", blockers)


def _release_address(request: _Request) -> Refusal | None:
    ec2 = _ec2(request)
    allocation_id, public_ip = request.params.get("AllocationId"), request.params.get("PublicIp")
    eip = next((a for a in list(ec2.addresses)
                if (allocation_id and a.allocation_id == allocation_id) or (public_ip and a.public_ip == public_ip)),
               None)
    owner = _association_owner(ec2, eip) if eip is not None else None
    if owner is None:
        return None
    if owner.startswith("nat-"):     # the NAT gateway owns the association: AWS says it is not yours
        return Refusal("AuthFailure", "You do not have permission to access the specified resource.",
                       eip.allocation_id, (owner,))
    return Refusal("InvalidIPAddress.InUse", f"Address {eip.public_ip} is in use.", eip.allocation_id, (owner,))


def _delete_route_table(request: _Request) -> Refusal | None:
    table = _ec2(request).route_tables.get(request.params.get("RouteTableId", ""))
    if table is None or table.main_association_id is None:
        return None                                        # subnet associations: moto refuses itself
    return _dependency_violation(table.id, f"The routeTable '{table.id}' has dependencies and cannot be deleted.",
                                 [f"main route table of {table.vpc_id}"])


# ------------------------------------------------------------------ RDS, Auto Scaling

def _delete_db_subnet_group(request: _Request) -> Refusal | None:
    name = request.params.get("DBSubnetGroupName", "").lower()
    users = [("instance", db.db_instance_identifier) for db in _live_databases(request)
             if getattr(getattr(db, "db_subnet_group", None), "name", "").lower() == name]
    users += [("cluster", c.db_cluster_identifier) for c in list(_rds(request).clusters.values())
              if (c.db_subnet_group_name or "").lower() == name and c.status not in _GONE_DB]
    if not users:
        return None
    kind, first = users[0]
    return Refusal("InvalidDBSubnetGroupStateFault",
                   f"Cannot delete the subnet group '{name}' because at least one database {kind}: {first} "
                   "is still using it.", name, tuple(_RDS_ARN_TYPE[k] + i for k, i in users))


def _delete_auto_scaling_group(request: _Request) -> Refusal | None:
    from moto.autoscaling.models import autoscaling_backends

    if request.params.get("ForceDelete", "").lower() == "true":
        return None
    group = autoscaling_backends[request.account][request.region].autoscaling_groups.get(
        request.params.get("AutoScalingGroupName", ""))
    instances = [s.instance.id for s in list(group.instance_states)] if group is not None else []
    if not instances:
        return None
    return Refusal("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending "
                   "Spot instance request(s) still in the group.", group.name, tuple(instances))


_RULES: dict[tuple[str, str], Callable[[_Request], Refusal | None]] = {
    ("ec2", "DeleteSubnet"): _delete_subnet,
    ("ec2", "DeleteSecurityGroup"): _delete_security_group,
    ("ec2", "DetachInternetGateway"): _detach_internet_gateway,
    ("ec2", "DeleteVpc"): _delete_vpc,
    ("ec2", "ReleaseAddress"): _release_address,
    ("ec2", "DeleteRouteTable"): _delete_route_table,
    ("rds", "DeleteDBSubnetGroup"): _delete_db_subnet_group,
    ("autoscaling", "DeleteAutoScalingGroup"): _delete_auto_scaling_group,
}


# ------------------------------------------------------------------ moto's state

def _ec2(request: _Request):
    from moto.ec2.models import ec2_backends

    return ec2_backends[request.account][request.region]


def _rds(request: _Request):
    from moto.rds.models import rds_backends

    return rds_backends[request.account][request.region]


def _live_instances(ec2) -> Iterator:
    return (i for i in ec2.all_instances() if i._state.name not in _GONE_INSTANCE)


def _nics(instance) -> list:
    return list(instance.nics.values())


def _nat_by_eni(ec2) -> dict[str, object]:
    return {n._eni.id: n for n in list(ec2.nat_gateways.values())}


def _standalone_enis(ec2) -> list:
    """Interfaces created on their own (not an instance's, not a NAT gateway's)."""
    nat_enis = _nat_by_eni(ec2)
    return [e for e in list(ec2.enis.values()) if e.instance is None and e.id not in nat_enis]


def _association_owner(ec2, eip) -> str | None:
    """Who an EIP is mapped to while that owner lives: a NAT gateway, an instance or an interface id."""
    if eip.eni is not None:
        nat = _nat_by_eni(ec2).get(eip.eni.id)
        if nat is not None:
            return nat.id if nat.state not in _GONE_NAT else None
        instance = eip.eni.instance
        if instance is not None:
            return instance.id if instance._state.name not in _GONE_INSTANCE else None
        return eip.eni.id if eip.eni.id in ec2.enis else None
    if eip.instance is not None and eip.instance._state.name not in _GONE_INSTANCE:
        return eip.instance.id
    return None


def _eip_vpc(eip) -> str | None:
    if eip.eni is not None:
        return eip.eni.subnet.vpc_id
    return eip.instance.vpc_id if eip.instance is not None else None


def _security_groups(ec2) -> list:
    return [g for groups in list(ec2.groups.values()) for g in list(groups.values())]


def _live_databases(request: _Request) -> list:
    return [db for db in list(_rds(request).databases.values()) if db.status not in _GONE_DB]


def _db_subnet_ids(db) -> set[str]:
    group = getattr(db, "db_subnet_group", None)         # set only when the instance names a group
    return {s["SubnetIdentifier"] for s in group.subnets} if group is not None else set()


def _dependency_violation(target: str, message: str, blockers: list[str]) -> Refusal | None:
    return Refusal("DependencyViolation", message, target, tuple(blockers)) if blockers else None


# ------------------------------------------------------------------ the request and the answer

def _account(environ) -> str:
    """The account moto will act in, found the way moto finds it."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    auth = environ.get("HTTP_AUTHORIZATION", "")
    start = auth.find("Credential=")
    from moto.iam.models import get_account_id_from       # moto's default account for unknown keys

    return get_account_id_from(auth[start + len("Credential="):].split("/", 1)[0] if start >= 0 else "")


def _form_params(environ) -> dict[str, str]:
    """The parameters of a query-protocol call (EC2, RDS, Auto Scaling): query string and form body.
    The body is put back, so that moto reads it again."""
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = ReplayBody(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _error(service: str, refusal: Refusal, start_response) -> list[bytes]:
    """HTTP 400 in the service's XML error format (EC2's own; the query protocol's for the others)."""
    request_id = str(uuid4())
    message = refusal.message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{refusal.code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{refusal.code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    data = body.encode()
    start_response("400 Bad Request", [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id),
                                       ("Content-Length", str(len(data)))])
    return [data]
