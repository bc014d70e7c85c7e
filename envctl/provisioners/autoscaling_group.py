"""Auto scaling group of an application: its launch template's version over its tier's subnets.

Everything changes in place (update_auto_scaling_group). A new launch template version
applies to instances launched from then on; running ones keep theirs (no instance refresh).
Tags carry PropagateAtLaunch, so the instances are tagged as this environment's too.

Auto Scaling is not in the Resource Groups Tagging API: discovery filters groups by tag.
create_auto_scaling_group silently replaces an existing group in moto (MOTO-NOTES §6), so
create always describes first. Delete scales to zero, deletes with ForceDelete and waits
until the group and its instances are gone (moto leaves a force-deleted group's instances
running; scaling to zero first terminates them there and on AWS alike).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from envctl.model import tags as tagging
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners import _ec2
from envctl.aws.waiters import GONE, wait_for, wait_until
from envctl.provisioners.base import NotOurs, Observed, Props, Provisioner, Timeouts, Value, tag_dict

GROUP_TAG = "aws:autoscaling:groupName"      # AWS tags every instance of a group with its name
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


class AutoscalingGroupProps(Props):
    launch_template_id: Value
    launch_template_version: Value = "$Default"
    subnet_ids: tuple[Value, ...]                # VPCZoneIdentifier
    min_size: int
    max_size: int
    desired_capacity: int
    health_check_type: Literal["EC2", "ELB"] = "EC2"
    health_check_grace_period: int = 0


class AutoscalingGroup(Provisioner[AutoscalingGroupProps]):
    kind = "autoscaling_group"
    services = ("autoscaling", "ec2")
    props = AutoscalingGroupProps
    set_fields = frozenset({"subnet_ids"})
    timeouts = Timeouts(create=900, update=900, delete=1200)
    # internet_gateway: AWS will not detach the gateway while an instance's public IP is mapped.
    uses = frozenset({"launch_template", "subnet", "internet_gateway"})
    poll_interval: float = 10.0

    def discover(self, ctx) -> Iterable[Observed[AutoscalingGroupProps]]:
        filters = [{"Name": f"tag:{tagging.PROJECT}", "Values": [ctx.project]},
                   {"Name": f"tag:{tagging.ENVIRONMENT}", "Values": [ctx.environment]}]
        for group in _groups(ctx.client("autoscaling"), Filters=filters):
            if _ec2.in_scope(ctx, self.kind, group.get("Tags")) and not _deleting(group):
                yield _observe(group)

    def read(self, ctx, id: str) -> Observed[AutoscalingGroupProps] | None:
        group = _find_by_name(ctx.client("autoscaling"), id)
        return _observe(group) if group is not None and not _deleting(group) else None

    def find(self, ctx, node: Node) -> Observed[AutoscalingGroupProps] | None:
        return self.read(ctx, node.physical_name)

    def create(self, ctx, node: Node) -> str:
        p: AutoscalingGroupProps = node.props
        autoscaling = ctx.client("autoscaling")
        name = node.physical_name
        existing = _find_by_name(autoscaling, name)
        if existing is not None:
            if ctx.is_ours(_tags(existing)):
                return name
            raise NotOurs(node.address, f"auto scaling group {name}")
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, **_settings(p),
            Tags=_group_tags(name, {**node.tags, _ec2.NAME: node.physical_name}))
        return name

    def update(self, ctx, observed: Observed[AutoscalingGroupProps], node: Node,
               changes: list[AttrChange]) -> None:
        if any(c.path != "tags" for c in changes):
            ctx.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=observed.id,
                                                                **_settings(node.props))
        if any(c.path == "tags" for c in changes):
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[AutoscalingGroupProps], tags: Mapping[str, str]) -> None:
        want, have = tagging.user_tags(tags), tagging.user_tags(observed.tags)
        to_set = {k: v for k, v in want.items() if have.get(k) != v}
        to_remove = {k: v for k, v in have.items() if k not in want and k != _ec2.NAME}
        autoscaling = ctx.client("autoscaling")
        if to_set:
            autoscaling.create_or_update_tags(Tags=_group_tags(observed.id, to_set))
        if to_remove:
            autoscaling.delete_tags(Tags=_group_tags(observed.id, to_remove))

    def delete(self, ctx, observed: Observed[AutoscalingGroupProps]) -> None:
        # `observed` was read just before (the executor's re-read): no describe first. A call that
        # fails is looked into: a group gone or being deleted (a retry after a lost reply) is done.
        autoscaling = ctx.client("autoscaling")
        try:
            if observed.props.min_size or observed.props.desired_capacity:
                autoscaling.update_auto_scaling_group(AutoScalingGroupName=observed.id, MinSize=0,
                                                      DesiredCapacity=0)
            autoscaling.delete_auto_scaling_group(AutoScalingGroupName=observed.id, ForceDelete=True)
        except Exception:
            group = _find_by_name(autoscaling, observed.id)
            if group is None or _deleting(group):
                return
            raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[AutoscalingGroupProps] | None:
        autoscaling = ctx.client("autoscaling")
        if until == "ready":
            group = wait_for(lambda: _find_by_name(autoscaling, id), _capacity_of, pending={"launching", GONE},
                             target={"ready"}, timeout=self.timeouts.create, interval=self.poll_interval,
                             describe=f"auto scaling group {id}")
            return None if _deleting(group) else _observe(group)
        ec2 = ctx.client("ec2")
        wait_until(lambda: _teardown(autoscaling, ec2, id), pending={"deleting", "terminating instances"},
                   target={GONE}, timeout=self.timeouts.delete, interval=self.poll_interval,
                   describe=f"auto scaling group {id}")
        return None

    def outputs(self, observed: Observed[AutoscalingGroupProps]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ private helpers

def _groups(autoscaling, **kwargs) -> list[dict]:
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    return [g for page in paginator.paginate(**kwargs) for g in page["AutoScalingGroups"]]


def _find_by_name(autoscaling, name: str) -> dict | None:
    # An unknown name is an empty answer, not an error.
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


def _deleting(group: dict) -> bool:
    return group.get("Status") == "Delete in progress"


def _tags(group: dict) -> dict[str, str]:
    return tag_dict(group.get("Tags"))


def _observe(group: dict) -> Observed[AutoscalingGroupProps]:
    name = group["AutoScalingGroupName"]
    template = group.get("LaunchTemplate") or {}
    tags = _tags(group)
    props = AutoscalingGroupProps(
        launch_template_id=template.get("LaunchTemplateId", ""),
        launch_template_version=template.get("Version", ""),
        subnet_ids=tuple(sorted(s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s)),
        min_size=group["MinSize"],
        max_size=group["MaxSize"],
        desired_capacity=group["DesiredCapacity"],
        health_check_type=group.get("HealthCheckType", "EC2"),
        health_check_grace_period=group.get("HealthCheckGracePeriod", 0),
    )
    in_service = sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
    return Observed(address=_ec2.address_for("autoscaling_group", tags, name), id=name, props=props, tags=tags,
                    status="ready" if in_service >= group["MinSize"] else "launching",
                    outputs={"name": name, "arn": group["AutoScalingGroupARN"]})


def _settings(p: AutoscalingGroupProps) -> dict[str, Any]:
    """The group's settings as create/update_auto_scaling_group take them."""
    return dict(LaunchTemplate={"LaunchTemplateId": p.launch_template_id, "Version": p.launch_template_version},
                VPCZoneIdentifier=",".join(p.subnet_ids), MinSize=p.min_size, MaxSize=p.max_size,
                DesiredCapacity=p.desired_capacity, HealthCheckType=p.health_check_type,
                HealthCheckGracePeriod=p.health_check_grace_period)


def _group_tags(name: str, tags: Mapping[str, str]) -> list[dict]:
    return [{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v,
             "PropagateAtLaunch": True} for k, v in sorted(tags.items())]


def _capacity_of(group: dict) -> tuple[str, str | None]:
    """Ready once min_size instances are in service."""
    in_service = sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
    if in_service >= group["MinSize"]:
        return "ready", None
    return "launching", f"{in_service} of at least {group['MinSize']} instances in service"


def _teardown(autoscaling, ec2, name: str) -> tuple[str, str | None] | None:
    """Gone once the group is and none of its instances is left (their subnets are free then)."""
    group = _find_by_name(autoscaling, name)
    if group is not None:
        return "deleting", group.get("Status")
    left = [i for r in _ec2.describe(ec2, "describe_instances", "Reservations",
                                     Filters=[{"Name": f"tag:{GROUP_TAG}", "Values": [name]},
                                              {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}])
            for i in r["Instances"]]
    return ("terminating instances", f"{len(left)} left") if left else None
