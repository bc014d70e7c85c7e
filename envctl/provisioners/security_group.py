"""Security group with its ingress and egress rules (sub-resources of the group)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner, Value


class Rule(Props):
    protocol: str                          # "tcp", "udp", "icmp", "-1" (all)
    from_port: int = -1
    to_port: int = -1
    cidr: str | None = None                # IPv4 CIDR …
    cidr_v6: str | None = None             # … or IPv6 CIDR …
    group_id: Value | None = None          # … or another group (or this one: "self")
    description: str | None = None


ALL_EGRESS = Rule(protocol="-1", cidr="0.0.0.0/0")


class SecurityGroupProps(Props):
    group_name: str
    description: str
    vpc_id: Value
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = (ALL_EGRESS,)


class SecurityGroup(Provisioner[SecurityGroupProps]):
    kind = "security_group"
    props = SecurityGroupProps
    replace_on = frozenset({"group_name", "description", "vpc_id"})
    set_fields = frozenset({"ingress", "egress"})
