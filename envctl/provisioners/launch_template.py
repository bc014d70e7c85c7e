"""EC2 launch template of an application: what its auto scaling group launches.

Never replaced: every change is a new version, made with the full launch data (moto does not
inherit from SourceVersion, MOTO-NOTES §10, and a full version is easier to read anyway) and
made the default. Props describe the latest version. The output `latest_version` is what
the group refers to, so a new version shows in the plan as an update of the group; instances
already running keep their version until they are replaced (no instance refresh is started).

The image reference (AMI id or `ssm:<parameter>`) is kept in the template's `envctl:image`
tag, as for instances. Instances and volumes launched from the template get the node's tags
through the version's TagSpecifications.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from envctl.model.diff import AttrChange, plain
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.provisioners._image import IMAGE_TAG, resolve_image, root_device_name, split_image_tag
from envctl.provisioners.base import NotOurs, Observed, Props, Provisioner, Value, tag_dict, tag_list


class LaunchTemplateProps(Props):
    """The launch data of the latest version; None = not set in the template (AWS's default applies)."""

    image: str                                   # ami-… or ssm:<parameter>, as the spec says it
    instance_type: str | None = None
    security_group_ids: tuple[Value, ...] = ()
    iam_instance_profile: Value | None = None    # instance profile ARN
    key_name: str | None = None
    user_data: str | None = None                 # plain text (the template holds it base64-encoded)
    volume_gb: int | None = None
    volume_type: str | None = None
    volume_encrypted: bool = False
    http_tokens: Literal["optional", "required"] | None = None


class LaunchTemplate(Provisioner[LaunchTemplateProps]):
    kind = "launch_template"
    services = ("ec2", "ssm")
    props = LaunchTemplateProps
    set_fields = frozenset({"security_group_ids"})
    uses = frozenset({"security_group", "instance_profile"})
    # Outputs an update changes (a planner may treat them as unknown until the update ran).
    volatile_outputs = frozenset({"latest_version"})

    def discover(self, ctx) -> Iterable[Observed[LaunchTemplateProps]]:
        # moto leaves launch templates out of the Tagging API (MOTO-NOTES §1): EC2's tag filters work.
        ec2 = ctx.client("ec2")
        templates = list(_ec2.describe(ec2, "describe_launch_templates", "LaunchTemplates",
                                       Filters=ctx.scope_filters()))
        tags = _tags(ec2, [t["LaunchTemplateId"] for t in templates])
        ours = [template for template in ({**t, "Tags": tags.get(t["LaunchTemplateId"], [])} for t in templates)
                if _ec2.in_scope(ctx, self.kind, template["Tags"])]
        yield from filter(None, ctx.map(lambda template: _observe(ec2, template), ours))

    def read(self, ctx, id: str) -> Observed[LaunchTemplateProps] | None:
        # Two calls: the latest version (its number and launch data, and the template's name)
        # and the tags. DescribeLaunchTemplates would add nothing but stale tags (see _tags).
        ec2 = ctx.client("ec2")
        version = _ec2.describe_one(ec2, "describe_launch_template_versions", "LaunchTemplateVersions",
                                    LaunchTemplateId=id, Versions=["$Latest"])
        if version is None:
            return None
        template = {"LaunchTemplateId": id, "LaunchTemplateName": version["LaunchTemplateName"],
                    "LatestVersionNumber": version["VersionNumber"], "Tags": _tags(ec2, [id]).get(id, [])}
        return _observe(ec2, template, version)

    def find(self, ctx, node: Node) -> Observed[LaunchTemplateProps] | None:
        ec2 = ctx.client("ec2")
        template = _by_name(ec2, node.physical_name)
        return _observe(ec2, template) if template is not None else None

    def create(self, ctx, node: Node) -> str:
        p: LaunchTemplateProps = node.props
        from envctl.aws import errors

        ec2 = ctx.client("ec2")
        name = node.physical_name
        tags = tag_list({**node.tags, IMAGE_TAG: p.image})
        # Create first: a taken name is refused (InvalidLaunchTemplateName.AlreadyExistsException),
        # never overwritten, so the look-up is made only then: ours from before is adopted.
        try:
            template = ec2.create_launch_template(
                LaunchTemplateName=name, ClientToken=ctx.client_token(node.address, _salt(p)),
                LaunchTemplateData=_launch_data(ctx, ec2, p, node),
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}])["LaunchTemplate"]
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = _by_name(ec2, name)
            if existing is None:
                raise
            if ctx.is_ours(tag_dict(existing.get("Tags"))):
                return existing["LaunchTemplateId"]
            raise NotOurs(node.address, f"launch template {name}") from None
        return template["LaunchTemplateId"]

    def update(self, ctx, observed: Observed[LaunchTemplateProps], node: Node, changes: list[AttrChange]) -> None:
        want: LaunchTemplateProps = node.props
        changed = {c.path for c in changes}
        ec2 = ctx.client("ec2")
        if changed - {"tags"}:
            version = ec2.create_launch_template_version(
                LaunchTemplateId=observed.id, LaunchTemplateData=_launch_data(ctx, ec2, want, node),
                VersionDescription="envctl")["LaunchTemplateVersion"]["VersionNumber"]
            ec2.modify_launch_template(LaunchTemplateId=observed.id, DefaultVersion=str(version))
        if "image" in changed:
            ec2.create_tags(Resources=[observed.id], Tags=[{"Key": IMAGE_TAG, "Value": want.image}])
        if "tags" in changed:
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[LaunchTemplateProps], tags: Mapping[str, str]) -> None:
        _ec2.set_user_tags(ctx.client("ec2"), observed.id, observed.tags, tags)

    def delete(self, ctx, observed: Observed[LaunchTemplateProps]) -> None:
        _ec2.ignore_not_found(ctx.client("ec2").delete_launch_template, LaunchTemplateId=observed.id)

    def outputs(self, observed: Observed[LaunchTemplateProps]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ private helpers

def _by_name(ec2, name: str) -> dict | None:
    return _with_tags(ec2, _ec2.describe_one(ec2, "describe_launch_templates", "LaunchTemplates",
                                             LaunchTemplateNames=[name]))


def _with_tags(ec2, template: dict | None) -> dict | None:
    if template is None:
        return None
    return {**template, "Tags": _tags(ec2, [template["LaunchTemplateId"]]).get(template["LaunchTemplateId"], [])}


def _tags(ec2, template_ids: list[str]) -> dict[str, list[dict]]:
    """Current tags by template id, from describe_tags: moto's describe_launch_templates keeps
    answering the tags the template was created with (create_tags/delete_tags do not show there)."""
    out: dict[str, list[dict]] = {}
    if template_ids:
        for t in _ec2.describe(ec2, "describe_tags", "Tags", Filters=[{"Name": "resource-id", "Values": template_ids}]):
            out.setdefault(t["ResourceId"], []).append({"Key": t["Key"], "Value": t["Value"]})
    return out


def _observe(ec2, template: dict, version: dict | None = None) -> Observed[LaunchTemplateProps] | None:
    """A template (with its current tags) and its latest version, read here when not given."""
    template_id = template["LaunchTemplateId"]
    latest = str(template["LatestVersionNumber"])
    if version is None:
        version = _ec2.describe_one(ec2, "describe_launch_template_versions", "LaunchTemplateVersions",
                                    LaunchTemplateId=template_id, Versions=[latest])
    if version is None:
        return None
    data = version.get("LaunchTemplateData", {})
    image, tags = split_image_tag(tag_dict(template.get("Tags")), fallback=data.get("ImageId", ""))
    ebs = next((m.get("Ebs", {}) for m in data.get("BlockDeviceMappings", []) if "Ebs" in m), {})
    user_data = data.get("UserData")
    props = LaunchTemplateProps(
        image=image,
        instance_type=data.get("InstanceType"),
        security_group_ids=tuple(sorted(data.get("SecurityGroupIds", []))),
        iam_instance_profile=(data.get("IamInstanceProfile") or {}).get("Arn"),
        key_name=data.get("KeyName"),
        user_data=base64.b64decode(user_data).decode("utf-8") if user_data else None,
        volume_gb=ebs.get("VolumeSize"),
        volume_type=ebs.get("VolumeType"),
        volume_encrypted=bool(ebs.get("Encrypted")),
        http_tokens=(data.get("MetadataOptions") or {}).get("HttpTokens"),
    )
    return Observed(address=_ec2.address_for("launch_template", tags, template_id), id=template_id, props=props,
                    tags=tags, outputs={"id": template_id, "name": template["LaunchTemplateName"],
                                        "latest_version": latest})


def _salt(p: LaunchTemplateProps) -> str:
    # The token changes with the props: re-creating a deleted template is a new request, not a replay.
    return json.dumps(plain(p), sort_keys=True, default=str)


def _launch_data(ctx, ec2, p: LaunchTemplateProps, node: Node) -> dict[str, Any]:
    """The full launch data of a version (never a delta: see the module's docstring)."""
    ami = resolve_image(ctx, p.image)
    data: dict[str, Any] = {"ImageId": ami}
    if p.instance_type:
        data["InstanceType"] = p.instance_type
    if p.security_group_ids:
        data["SecurityGroupIds"] = list(p.security_group_ids)
    if p.iam_instance_profile:
        data["IamInstanceProfile"] = {"Arn": p.iam_instance_profile}
    if p.key_name:
        data["KeyName"] = p.key_name
    if p.user_data:
        data["UserData"] = base64.b64encode(p.user_data.encode("utf-8")).decode("ascii")
    if p.http_tokens:
        data["MetadataOptions"] = {"HttpTokens": p.http_tokens, "HttpEndpoint": "enabled"}
    if p.volume_gb or p.volume_type or p.volume_encrypted:
        ebs: dict[str, Any] = {"DeleteOnTermination": True}
        if p.volume_gb:
            ebs["VolumeSize"] = p.volume_gb
        if p.volume_type:
            ebs["VolumeType"] = p.volume_type
        if p.volume_encrypted:
            ebs["Encrypted"] = True
        data["BlockDeviceMappings"] = [{"DeviceName": root_device_name(ec2, ami), "Ebs": ebs}]
    # What the instances and their volumes are tagged with at launch (the group adds its own tags too).
    launched = tag_list({**node.tags, _ec2.NAME: node.physical_name})
    data["TagSpecifications"] = [{"ResourceType": "instance", "Tags": launched},
                                 {"ResourceType": "volume", "Tags": launched}]
    return data
