"""NAT gateway in a public subnet, with its EIP."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner, Timeouts, Value


class NatGatewayProps(Props):
    subnet_id: Value
    allocation_id: Value
    connectivity_type: str = "public"


class NatGateway(Provisioner[NatGatewayProps]):
    kind = "nat_gateway"
    props = NatGatewayProps
    replace_on = frozenset({"subnet_id", "allocation_id", "connectivity_type"})
    timeouts = Timeouts(create=600, update=600, delete=600)
