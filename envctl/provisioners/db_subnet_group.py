"""RDS DB subnet group: the subnets of a database's tier (at least two zones).

moto leaves DB subnet groups out of the Tagging API (MOTO-NOTES §1): discovery lists the
groups named `<project>-<environment>-…` and reads their tags. The description and the
subnets change in place (modify_db_subnet_group).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners.base import NotOurs, Observed, Props, Provisioner, Value, address_of, tag_dict, tag_list
from envctl.spec.names import physical_name


class DbSubnetGroupProps(Props):
    description: str
    subnet_ids: tuple[Value, ...]


class DbSubnetGroup(Provisioner[DbSubnetGroupProps]):
    kind = "db_subnet_group"
    services = ("rds",)
    props = DbSubnetGroupProps
    set_fields = frozenset({"subnet_ids"})
    uses = frozenset({"subnet"})

    def discover(self, ctx) -> Iterable[Observed[DbSubnetGroupProps]]:
        rds = ctx.client("rds")
        # RDS keeps subnet group names in lower case; ours all start with the environment's prefix.
        prefix = physical_name(ctx.project, ctx.environment, "").lower()
        groups = [group for page in rds.get_paginator("describe_db_subnet_groups").paginate()
                  for group in page["DBSubnetGroups"] if group["DBSubnetGroupName"].startswith(prefix)]
        for obs in ctx.map(lambda group: _observe(group, _tags(rds, group["DBSubnetGroupArn"])), groups):
            if obs is not None and ctx.is_ours(obs.tags) and obs.address.kind == self.kind:
                yield obs

    def read(self, ctx, id: str) -> Observed[DbSubnetGroupProps] | None:
        rds = ctx.client("rds")
        group = _find_by_name(rds, id)
        if group is None:
            return None
        return _observe(group, _tags(rds, group["DBSubnetGroupArn"]))

    def find(self, ctx, node: Node) -> Observed[DbSubnetGroupProps] | None:
        return self.read(ctx, node.physical_name.lower())

    def create(self, ctx, node: Node) -> str:
        from envctl.aws import errors

        p: DbSubnetGroupProps = node.props
        name = node.physical_name.lower()
        # Look first: moto's create_db_subnet_group silently replaces a group of the same name.
        existing = self.read(ctx, name)
        if existing is not None:
            if ctx.is_ours(existing.tags):
                return name
            raise NotOurs(node.address, f"DB subnet group {name}")
        try:
            ctx.client("rds").create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription=p.description,
                                                     SubnetIds=list(p.subnet_ids), Tags=tag_list(node.tags))
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = self.read(ctx, name)
            if existing is None or not ctx.is_ours(existing.tags):
                raise NotOurs(node.address, f"DB subnet group {name}") from None
        return name

    def update(self, ctx, observed: Observed[DbSubnetGroupProps], node: Node, changes: list[AttrChange]) -> None:
        p: DbSubnetGroupProps = node.props
        if any(c.path != "tags" for c in changes):
            ctx.client("rds").modify_db_subnet_group(DBSubnetGroupName=observed.id,
                                                     DBSubnetGroupDescription=p.description,
                                                     SubnetIds=list(p.subnet_ids))
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[DbSubnetGroupProps], tags: Mapping[str, str]) -> None:
        set_rds_tags(ctx.client("rds"), observed.outputs["arn"], observed.tags, tags)

    def delete(self, ctx, observed: Observed[DbSubnetGroupProps]) -> None:
        from envctl.aws import errors

        try:
            ctx.client("rds").delete_db_subnet_group(DBSubnetGroupName=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def outputs(self, observed: Observed[DbSubnetGroupProps]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ private helpers

def _find_by_name(rds, name: str) -> dict | None:
    from envctl.aws import errors

    try:
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    return groups[0] if groups else None


def _tags(rds, arn: str) -> dict[str, str]:
    return tag_dict(rds.list_tags_for_resource(ResourceName=arn).get("TagList"))


def _observe(group: dict, tags: Mapping[str, str]) -> Observed[DbSubnetGroupProps]:
    name = group["DBSubnetGroupName"]
    props = DbSubnetGroupProps(description=group.get("DBSubnetGroupDescription", ""),
                               subnet_ids=tuple(sorted(s["SubnetIdentifier"] for s in group.get("Subnets", []))))
    return Observed(address=address_of(tags) or Address("db_subnet_group", name), id=name, props=props,
                    tags=dict(tags), outputs={"name": name, "arn": group["DBSubnetGroupArn"]})


def set_rds_tags(rds, arn: str, current: Mapping[str, str], desired: Mapping[str, str]) -> None:
    """Make the user tags on an RDS resource equal those of `desired` (envctl's own stay)."""
    want, have = tagging.user_tags(desired), tagging.user_tags(current)
    to_set = {k: v for k, v in want.items() if have.get(k) != v}
    to_remove = sorted(k for k in have if k not in want)
    if to_set:
        rds.add_tags_to_resource(ResourceName=arn, Tags=tag_list(to_set))
    if to_remove:
        rds.remove_tags_from_resource(ResourceName=arn, TagKeys=to_remove)
