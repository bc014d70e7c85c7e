"""IAM instance profile: how an EC2 instance takes on a role. One per role assumed by ec2.

It shares the role's name and path. Tags are read from get_instance_profile: moto answers
list_instance_profile_tags with HTTP 500 (MOTO-NOTES §9), and get_instance_profile has them
on AWS too.

Discovery lists the profiles under the environment's path and reads each one: IAM documents
no listing that carries an instance profile's tags (ListInstanceProfiles says it leaves them
out; GetAccountAuthorizationDetails does not say), and the tags say whose a profile is.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from envctl.model.address import Address
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners.base import NotOurs, Observed, Props, Provisioner, Value, address_of, tag_dict, tag_list, tag_changes


class InstanceProfileProps(Props):
    path: str = "/"
    role_name: Value | None = None      # a profile holds at most one role


class InstanceProfile(Provisioner[InstanceProfileProps]):
    kind = "instance_profile"
    services = ("iam",)
    props = InstanceProfileProps
    replace_on = frozenset({"path"})
    uses = frozenset({"role"})

    def discover(self, ctx) -> Iterable[Observed[InstanceProfileProps]]:
        from envctl.provisioners.role import role_path

        iam = ctx.client("iam")
        paginator = iam.get_paginator("list_instance_profiles")
        names = [profile["InstanceProfileName"]
                 for page in paginator.paginate(PathPrefix=role_path(ctx.project, ctx.environment))
                 for profile in page["InstanceProfiles"]]
        # list_instance_profiles carries no tags on AWS: read each one.
        for obs in ctx.map(lambda name: self.read(ctx, name), names):
            if obs is not None and ctx.is_ours(obs.tags) and obs.address.kind == self.kind:
                yield obs

    def read(self, ctx, id: str) -> Observed[InstanceProfileProps] | None:
        profile = _get_profile(ctx.client("iam"), id)
        if profile is None:
            return None
        tags = tag_dict(profile.get("Tags"))
        roles = profile.get("Roles") or []
        props = InstanceProfileProps(path=profile["Path"], role_name=roles[0]["RoleName"] if roles else None)
        return Observed(address=address_of(tags) or Address(self.kind, id), id=id, props=props, tags=tags,
                        outputs={"arn": profile["Arn"], "name": profile["InstanceProfileName"]})

    def find(self, ctx, node: Node) -> Observed[InstanceProfileProps] | None:
        return self.read(ctx, node.physical_name)

    def create(self, ctx, node: Node) -> str:
        from envctl.aws import errors

        p: InstanceProfileProps = node.props
        iam = ctx.client("iam")
        name = node.physical_name
        try:
            iam.create_instance_profile(InstanceProfileName=name, Path=p.path, Tags=tag_list(node.tags))
            current = None
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = self.read(ctx, name)
            if existing is None or not ctx.is_ours(existing.tags):
                raise NotOurs(node.address, f"IAM instance profile {name}") from None
            current = existing.props.role_name
        if p.role_name and current != p.role_name:
            _set_role(iam, name, current, p.role_name)
        return name

    def update(self, ctx, observed: Observed[InstanceProfileProps], node: Node, changes: list[AttrChange]) -> None:
        changed = {c.path for c in changes}
        iam = ctx.client("iam")
        if "role_name" in changed:
            _set_role(iam, observed.id, observed.props.role_name, node.props.role_name)
        if "tags" in changed:
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[InstanceProfileProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        iam = ctx.client("iam")
        if to_set:
            iam.tag_instance_profile(InstanceProfileName=observed.id, Tags=tag_list(to_set))
        if to_remove:
            iam.untag_instance_profile(InstanceProfileName=observed.id, TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[InstanceProfileProps]) -> None:
        # IAM refuses to delete a profile that still holds a role (DeleteConflict). `observed` was
        # read just before (the executor's re-read) and names its role; should the delete still be
        # refused (another role put in since), the profile is read again and emptied.
        iam = ctx.client("iam")
        try:
            _empty_and_delete(iam, observed.id, [observed.props.role_name] if observed.props.role_name else [])
        except Exception:
            profile = _get_profile(iam, observed.id)
            if profile is None:
                return
            _empty_and_delete(iam, observed.id, [role["RoleName"] for role in profile.get("Roles") or []])

    def outputs(self, observed: Observed[InstanceProfileProps]) -> Mapping[str, str]:
        return observed.outputs


def _empty_and_delete(iam, profile: str, roles: list[str]) -> None:
    for role in roles:
        _ignore_not_found(iam.remove_role_from_instance_profile, InstanceProfileName=profile, RoleName=role)
    _ignore_not_found(iam.delete_instance_profile, InstanceProfileName=profile)


def _get_profile(iam, name: str) -> dict | None:
    from envctl.aws import errors

    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise


def _set_role(iam, profile: str, current: str | None, wanted: str | None) -> None:
    if current:
        _ignore_not_found(iam.remove_role_from_instance_profile, InstanceProfileName=profile, RoleName=current)
    if wanted:
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=wanted)


def _ignore_not_found(call, **kwargs) -> None:
    from envctl.aws import errors

    try:
        call(**kwargs)
    except Exception as e:
        if not errors.is_not_found(e):
            raise
