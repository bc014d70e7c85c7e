"""Route table with its routes and subnet associations (both sub-resources of the table)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner, Value


class Route(Props):
    destination: str                      # IPv4 CIDR
    gateway_id: Value | None = None       # internet gateway
    nat_gateway_id: Value | None = None


class RouteTableProps(Props):
    vpc_id: Value
    routes: tuple[Route, ...] = ()        # the VPC's `local` route is implicit and not listed
    subnet_ids: tuple[Value, ...] = ()    # associations


class RouteTable(Provisioner[RouteTableProps]):
    kind = "route_table"
    props = RouteTableProps
    replace_on = frozenset({"vpc_id"})
    set_fields = frozenset({"routes", "subnet_ids"})
