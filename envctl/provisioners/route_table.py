"""Route table with its routes and subnet associations (both sub-resources of the table).

Routes are keyed by destination, associations by subnet; both are reconciled as sets. The
VPC's `local` route and the main-table association are AWS's, never read nor touched.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners.base import Ctx, Observed, Props, Provisioner, Value, tag_dict


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
    services = ("ec2",)
    props = RouteTableProps
    replace_on = frozenset({"vpc_id"})
    set_fields = frozenset({"routes", "subnet_ids"})
    uses = frozenset({"vpc", "subnet", "internet_gateway", "nat_gateway"})

    def discover(self, ctx: Ctx) -> list[Observed[RouteTableProps]]:
        tables = _ec2.describe(ctx.client("ec2"), "describe_route_tables", "RouteTables",
                               Filters=ctx.scope_filters())
        return [_observe(t) for t in tables if _ec2.in_scope(ctx, self.kind, t.get("Tags"))]

    def read(self, ctx: Ctx, id: str) -> Observed[RouteTableProps] | None:
        table = _find_by_id(ctx.client("ec2"), id)
        return _observe(table) if table is not None else None

    def find(self, ctx: Ctx, node: Node) -> Observed[RouteTableProps] | None:
        tables = _ec2.describe(ctx.client("ec2"), "describe_route_tables", "RouteTables",
                               Filters=_ec2.ownership_filters(ctx, node))
        return next((_observe(t) for t in tables if _ec2.is_node(ctx, node, t.get("Tags"))), None)

    def create(self, ctx: Ctx, node: Node) -> str:
        # No client token for CreateRouteTable: a table tagged with this address is ours from before.
        ec2 = ctx.client("ec2")
        existing = self.find(ctx, node)
        if existing is not None:
            table = _find_by_id(ec2, existing.id) or {"RouteTableId": existing.id}
        else:
            table = ec2.create_route_table(
                VpcId=node.props.vpc_id, TagSpecifications=_ec2.tag_specifications("route-table", node))["RouteTable"]
        _reconcile_routes(ec2, table, node.props.routes)
        _reconcile_associations(ctx, ec2, table, node.props.subnet_ids)
        return table["RouteTableId"]

    def update(self, ctx: Ctx, observed: Observed[RouteTableProps], node: Node,
               changes: list[AttrChange]) -> None:
        # Read the table again for the association ids, which the props do not keep.
        ec2 = ctx.client("ec2")
        table = _find_by_id(ec2, observed.id) or {"RouteTableId": observed.id}
        _reconcile_routes(ec2, table, node.props.routes)
        _reconcile_associations(ctx, ec2, table, node.props.subnet_ids)
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, _ec2.tags_with_name(node))

    def update_tags(self, ctx: Ctx, observed: Observed[RouteTableProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx: Ctx, observed: Observed[RouteTableProps]) -> None:
        # A table with subnets associated cannot be deleted: let them go back to the main table first.
        # `observed` was read just before (the executor's re-read) and keeps the association ids;
        # should a call fail (a subnet associated since), the table is read again and emptied.
        ec2 = ctx.client("ec2")
        try:
            _disassociate_and_delete(ctx, ec2, observed.id, _kept_associations(observed))
        except Exception:
            table = _find_by_id(ec2, observed.id)
            if table is None:
                return
            _disassociate_and_delete(ctx, ec2, observed.id, _associations(table))

    def wait(self, ctx: Ctx, id: str, until: Literal["ready", "gone"]) -> Observed[RouteTableProps] | None:
        # Deletes are done when the call returns; a new resource may take a moment to be listed.
        if until == "gone":
            return None
        return _ec2.wait_readable(lambda: self.read(ctx, id), what=f"route table {id}")

    def outputs(self, observed: Observed[RouteTableProps]) -> Mapping[str, str]:
        return {"id": observed.id}


def _find_by_id(ec2, table_id: str) -> dict | None:
    return _ec2.describe_one(ec2, "describe_route_tables", "RouteTables", RouteTableIds=[table_id])


def _observe(table: dict) -> Observed[RouteTableProps]:
    tags = tag_dict(table.get("Tags"))
    associations = _associations(table)
    props = RouteTableProps(vpc_id=table["VpcId"],
                            routes=tuple(sorted(_routes(table).values(), key=lambda r: r.destination)),
                            subnet_ids=tuple(sorted(associations)))
    # The association ids go with the read, for delete (outputs() hands out only the id).
    kept = {ASSOCIATION + subnet: association for subnet, association in associations.items()}
    return Observed(_ec2.address_for("route_table", tags, table["RouteTableId"]), table["RouteTableId"], props, tags,
                    outputs=kept)


ASSOCIATION = "association:"        # Observed.outputs key prefix: association:<subnet id> → its association id


def _kept_associations(observed: Observed[RouteTableProps]) -> dict[str, str]:
    """{subnet id: association id} as `_observe` kept them."""
    return {key.removeprefix(ASSOCIATION): value for key, value in observed.outputs.items()
            if key.startswith(ASSOCIATION)}


def _disassociate_and_delete(ctx: Ctx, ec2, table_id: str, associations: Mapping[str, str]) -> None:
    _disassociate(ctx, ec2, [associations[s] for s in sorted(associations)])
    _ec2.ignore_not_found(ec2.delete_route_table, RouteTableId=table_id)


def _disassociate(ctx: Ctx, ec2, association_ids: list[str]) -> None:
    # Each association is its own object: side by side, as Terraform's separate association
    # resources are made and removed (a table of 4 subnets took 4 calls one after another).
    ctx.map(lambda a: _ec2.ignore_not_found(ec2.disassociate_route_table, AssociationId=a), association_ids)


def _routes(table: dict) -> dict[str, Route]:
    """{destination: route} of the routes envctl manages: IPv4, not `local`, not propagated from a VPN."""
    routes = {}
    for r in table.get("Routes", []):
        if "DestinationCidrBlock" not in r or r.get("GatewayId") == "local" \
                or r.get("Origin") == "EnableVgwRoutePropagation":
            continue
        # Any other target (peering, instance, transit gateway…) reads as a route with neither
        # of ours: a drift that update replaces or removes.
        routes[r["DestinationCidrBlock"]] = Route(destination=r["DestinationCidrBlock"],
                                                  gateway_id=r.get("GatewayId"),
                                                  nat_gateway_id=r.get("NatGatewayId"))
    return routes


def _associations(table: dict) -> dict[str, str]:
    """{subnet id: association id} of the table's explicit subnet associations."""
    return {a["SubnetId"]: a["RouteTableAssociationId"] for a in table.get("Associations", [])
            if a.get("SubnetId") and not a.get("Main")
            and a.get("AssociationState", {}).get("State", "associated") in ("associated", "associating")}


def _reconcile_routes(ec2, table: dict, desired: tuple[Route, ...]) -> None:
    table_id = table["RouteTableId"]
    current = _routes(table)
    wanted = {r.destination: r for r in desired}
    for destination in sorted(set(current) - set(wanted)):
        _ec2.ignore_not_found(ec2.delete_route, RouteTableId=table_id, DestinationCidrBlock=destination)
    for destination, route in sorted(wanted.items()):
        if destination not in current:
            ec2.create_route(RouteTableId=table_id, **_route_target(route))
        elif current[destination] != route:
            ec2.replace_route(RouteTableId=table_id, **_route_target(route))


def _route_target(route: Route) -> dict:
    target = {"DestinationCidrBlock": route.destination}
    if route.gateway_id:
        target["GatewayId"] = route.gateway_id
    if route.nat_gateway_id:
        target["NatGatewayId"] = route.nat_gateway_id
    return target


def _reconcile_associations(ctx: Ctx, ec2, table: dict, desired: tuple[str, ...]) -> None:
    from envctl.aws import errors

    table_id = table["RouteTableId"]
    current = _associations(table)
    _disassociate(ctx, ec2, [current[s] for s in sorted(set(current) - set(desired))])

    def associate(subnet_id: str) -> None:
        try:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            # The subnet is associated with another table: move it here (a subnet has one table).
            association = _association_of(ec2, subnet_id)
            if association is None:
                raise
            ec2.replace_route_table_association(AssociationId=association, RouteTableId=table_id)

    ctx.map(associate, sorted(set(desired) - set(current)))


def _association_of(ec2, subnet_id: str) -> str | None:
    tables = _ec2.describe(ec2, "describe_route_tables", "RouteTables",
                           Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    return next((a["RouteTableAssociationId"] for t in tables for a in t.get("Associations", [])
                 if a.get("SubnetId") == subnet_id), None)
