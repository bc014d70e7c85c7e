"""Security group with its ingress and egress rules (sub-resources of the group).

AWS groups rules by (protocol, ports) with many sources; envctl reads them as one `Rule` per
source, so that a rule added or removed by hand is exactly one element of the set.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, NotOurs, Observed, Props, Provisioner, Value, tag_dict


class Rule(Props):
    protocol: str                          # "tcp", "udp", "icmp", "-1" (all)
    from_port: int = -1
    to_port: int = -1
    cidr: str | None = None                # IPv4 CIDR …
    cidr_v6: str | None = None             # … or IPv6 CIDR …
    group_id: Value | None = None          # … or another group (or this one: "self")
    description: str | None = None


ALL_EGRESS = Rule(protocol="-1", cidr="0.0.0.0/0")   # what AWS gives every new group


class SecurityGroupProps(Props):
    group_name: str
    description: str
    vpc_id: Value
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = (ALL_EGRESS,)


class SecurityGroup(Provisioner[SecurityGroupProps]):
    kind = "security_group"
    services = ("ec2",)
    props = SecurityGroupProps
    replace_on = frozenset({"group_name", "description", "vpc_id"})
    set_fields = frozenset({"ingress", "egress"})
    uses = frozenset({"vpc"})

    def discover(self, ctx: Ctx) -> list[Observed[SecurityGroupProps]]:
        groups = _ec2.describe(ctx.client("ec2"), "describe_security_groups", "SecurityGroups",
                               Filters=ctx.scope_filters())
        return [_observe(g) for g in groups if _ec2.in_scope(ctx, self.kind, g.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[SecurityGroupProps] | None:
        group = _find_by_id(ctx.client("ec2"), id)
        return _observe(group) if group is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[SecurityGroupProps] | None:
        groups = _ec2.describe(ctx.client("ec2"), "describe_security_groups", "SecurityGroups",
                               Filters=_ec2.ownership_filters(ctx, node))
        return next((_observe(g) for g in groups if _ec2.is_node(ctx, node, g.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # Create first: a group name taken in the VPC is refused (InvalidGroup.Duplicate), never
        # overwritten, so the look-up is made only then (_create_group): ours from before is adopted.
        ec2 = ctx.client("ec2")
        group_id, current = _create_group(ctx, ec2, node)
        _reconcile_rules(ec2, group_id, current, node.props)
        return group_id

    def update(self, ctx: Ctx, observed: Observed[SecurityGroupProps], node: Node,
               changes: list[AttrChange]) -> None:
        _reconcile_rules(ctx.client("ec2"), observed.id, observed.props, node.props)
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[SecurityGroupProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[SecurityGroupProps]) -> None:
        # Drop this group's references to other groups first: groups that refer to each other
        # (or to themselves) could otherwise never be deleted. References *to* this group from
        # others clear as those are deleted (DependencyViolation is retried as eventual).
        # `observed` was read just before (the executor's re-read) and holds the rules; should a
        # call fail, the group is read again and, if its references changed since, dropped again.
        ec2 = ctx.client("ec2")
        try:
            _drop_references_and_delete(ec2, observed.id, observed.props)
        except Exception:
            group = _find_by_id(ec2, observed.id)
            if group is None:
                return
            now = _observe(group).props
            if _references(now) == _references(observed.props):
                raise           # nothing new to drop: the failure is real (retried if it clears with time)
            _drop_references_and_delete(ec2, observed.id, now)

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[SecurityGroupProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"security group {id}")

    def outputs(self, observed: Observed[SecurityGroupProps]) -> Mapping[str, str]:
        return {"id": observed.id, "name": observed.props.group_name}


def _find_by_id(ec2, group_id: str) -> dict | None:
    return _ec2.describe_one(ec2, "describe_security_groups", "SecurityGroups", GroupIds=[group_id])


def _create_group(ctx: Ctx, ec2, node: Node) -> tuple[str, SecurityGroupProps]:
    """Create the group; return its id and its rules as they are now."""
    from envctl.aws import errors

    desired: SecurityGroupProps = node.props
    try:
        group_id = ec2.create_security_group(
            GroupName=desired.group_name, Description=desired.description, VpcId=desired.vpc_id,
            TagSpecifications=_ec2.tag_specifications("security-group", node))["GroupId"]
    except Exception as e:
        if not errors.is_already_exists(e):
            raise
        # The name is taken in this VPC: adopt the group only if it is this environment's.
        taken = _by_name(ec2, desired.vpc_id, desired.group_name)
        if taken is None or not ctx.is_ours(taken.tags):
            raise NotOurs(node.address, f"security group {desired.group_name} in {desired.vpc_id}") from None
        return taken.id, taken.props
    # A new group allows all egress and no ingress.
    return group_id, desired.model_copy(update={"ingress": (), "egress": (ALL_EGRESS,)})


def _by_name(ec2, vpc_id: str, group_name: str) -> Observed[SecurityGroupProps] | None:
    groups = _ec2.describe(ec2, "describe_security_groups", "SecurityGroups",
                           Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                    {"Name": "group-name", "Values": [group_name]}])
    return next((_observe(g) for g in groups), None)


def _observe(group: dict) -> Observed[SecurityGroupProps]:
    tags = tag_dict(group.get("Tags"))
    group_id = group["GroupId"]
    props = SecurityGroupProps(group_name=group["GroupName"], description=group.get("Description", ""),
                               vpc_id=group.get("VpcId", ""),
                               ingress=_rules(group.get("IpPermissions", []), group_id),
                               egress=_rules(group.get("IpPermissionsEgress", []), group_id))
    return Observed(_ec2.address_for("security_group", tags, group_id), group_id, props, tags)


_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1"}


def _rules(permissions: list[dict], group_id: str) -> tuple[Rule, ...]:
    """AWS's grouped permissions → one Rule per source, sorted; a reference to the group itself is "self"."""
    rules = []
    for p in permissions:
        protocol = _PROTOCOL_NAMES.get(str(p["IpProtocol"]), str(p["IpProtocol"]))
        ports = {} if protocol == "-1" else {"from_port": p.get("FromPort", -1), "to_port": p.get("ToPort", -1)}
        for r in p.get("IpRanges", []):
            rules.append(Rule(protocol=protocol, cidr=r["CidrIp"], description=r.get("Description") or None, **ports))
        for r in p.get("Ipv6Ranges", []):
            rules.append(Rule(protocol=protocol, cidr_v6=r["CidrIpv6"], description=r.get("Description") or None,
                              **ports))
        for r in p.get("UserIdGroupPairs", []):
            other = "self" if r["GroupId"] == group_id else r["GroupId"]
            rules.append(Rule(protocol=protocol, group_id=other, description=r.get("Description") or None, **ports))
    return tuple(sorted(rules, key=_rule_key))


def _rule_key(rule: Rule) -> tuple:
    return (rule.protocol, rule.from_port, rule.to_port, rule.cidr or "", rule.cidr_v6 or "",
            str(rule.group_id or ""), rule.description or "")


def _reconcile_rules(ec2, group_id: str, current: SecurityGroupProps, desired: SecurityGroupProps) -> None:
    """Revoke what is no longer wanted, then authorize what is missing (in that order, so that a
    rule whose description changed is revoked before it is authorized again)."""
    for direction, have, want in (("ingress", current.ingress, desired.ingress),
                                  ("egress", current.egress, desired.egress)):
        revoke = sorted(set(have) - set(want), key=_rule_key)
        authorize = sorted(set(want) - set(have), key=_rule_key)
        if revoke:
            getattr(ec2, f"revoke_security_group_{direction}")(
                GroupId=group_id, IpPermissions=[_permission(r, group_id) for r in revoke])
        if authorize:
            _authorize(getattr(ec2, f"authorize_security_group_{direction}"), group_id, authorize)


def _authorize(call, group_id: str, rules: list[Rule]) -> None:
    """Authorize `rules`, a rule already there being done.

    The rules read may be older than AWS's (EC2's describe is eventually consistent; a retried
    call's first attempt may have got through): then AWS refuses the whole batch with
    InvalidPermission.Duplicate, and adds none of it. So, once refused, each rule goes alone.
    """
    from envctl.aws import errors

    try:
        call(GroupId=group_id, IpPermissions=[_permission(r, group_id) for r in rules])
        return
    except Exception as e:
        if errors.error_code(e) != "InvalidPermission.Duplicate":
            raise
    for rule in rules:
        try:
            call(GroupId=group_id, IpPermissions=[_permission(rule, group_id)])
        except Exception as e:
            if errors.error_code(e) != "InvalidPermission.Duplicate":
                raise


def _permission(rule: Rule, group_id: str) -> dict:
    """One Rule → one IpPermission with a single source."""
    permission: dict = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    described = {"Description": rule.description} if rule.description else {}
    if rule.cidr:
        permission["IpRanges"] = [{"CidrIp": rule.cidr, **described}]
    elif rule.cidr_v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr_v6, **described}]
    elif rule.group_id:
        permission["UserIdGroupPairs"] = [{"GroupId": group_id if rule.group_id == "self" else rule.group_id,
                                           **described}]
    return permission


def _references(props: SecurityGroupProps) -> dict[str, list[Rule]]:
    """The rules that name a group (another, or this one): {direction: rules}."""
    return {"ingress": [r for r in props.ingress if r.group_id], "egress": [r for r in props.egress if r.group_id]}


def _drop_references_and_delete(ec2, group_id: str, props: SecurityGroupProps) -> None:
    """Revoke the group's rules that name groups, then delete it (descriptions are sent as read:
    moto matches them)."""
    for direction, rules in _references(props).items():
        if rules:
            _ec2.ignore_not_found(getattr(ec2, f"revoke_security_group_{direction}"), GroupId=group_id,
                                  IpPermissions=[_permission(r, group_id) for r in rules])
    _ec2.ignore_not_found(ec2.delete_security_group, GroupId=group_id)
