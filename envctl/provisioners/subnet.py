"""Subnet: one per tier and zone."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner, Value


class SubnetProps(Props):
    vpc_id: Value
    cidr_block: str
    availability_zone: str
    map_public_ip_on_launch: bool = False


class Subnet(Provisioner[SubnetProps]):
    kind = "subnet"
    props = SubnetProps
    replace_on = frozenset({"vpc_id", "cidr_block", "availability_zone"})
