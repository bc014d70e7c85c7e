"""instances: → EC2 instances; applications: → a launch template + an auto scaling group each.

Secure by default: IMDSv2 required, encrypted gp3 root volumes. An instance sits in the
first zone's subnet of its tier and gets a public IP when the tier is internet-facing
(unless `public_ip: false`); an application spreads over all its tier's subnets.
"""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.expand.network import VPC, subnet_refs
from envctl.model.address import Address
from envctl.provisioners.autoscaling_group import AutoscalingGroupProps
from envctl.provisioners.instance import InstanceProps
from envctl.provisioners.launch_template import LaunchTemplateProps

VOLUME_TYPE = "gp3"
IMDS_V2_ONLY = "required"


def expand_instances(x: Expansion) -> None:
    for name, inst in x.model.instances.items():
        internet = x.model.network.tiers[inst.tier].internet
        public_ip = internet if inst.public_ip is None else inst.public_ip
        x.add("instance", name, InstanceProps(
            image=inst.image,
            instance_type=inst.instance_type,
            subnet_id=subnet_refs(x, inst.tier)[0],
            security_group_ids=_groups(x, inst.security_groups),
            iam_instance_profile=x.ref("instance_profile", inst.role, "arn") if inst.role else None,
            associate_public_ip=public_ip,
            key_name=inst.key_name,
            user_data=inst.user_data,
            volume_gb=inst.volume_gb,
            volume_type=VOLUME_TYPE,
            volume_encrypted=True,
            http_tokens=IMDS_V2_ONLY,
        ), extra_deps=_gateway(x) if public_ip else ())


def expand_applications(x: Expansion) -> None:
    for name, app in x.model.applications.items():
        x.add("launch_template", name, LaunchTemplateProps(
            image=app.image,
            instance_type=app.instance_type,
            security_group_ids=_groups(x, app.security_groups),
            iam_instance_profile=x.ref("instance_profile", app.role, "arn") if app.role else None,
            user_data=app.user_data,
            volume_gb=app.volume_gb,
            volume_type=VOLUME_TYPE,
            volume_encrypted=True,
            http_tokens=IMDS_V2_ONLY,
        ))
        # The group names the template's latest version: a new version is an update of the group in the plan.
        x.add("autoscaling_group", name, AutoscalingGroupProps(
            launch_template_id=x.ref("launch_template", name, "id"),
            launch_template_version=x.ref("launch_template", name, "latest_version"),
            subnet_ids=subnet_refs(x, app.tier),
            min_size=app.capacity.min,
            max_size=app.capacity.max,
            desired_capacity=app.capacity.desired,
            health_check_grace_period=app.health_check_grace_s,
        ))


def _gateway(x: Expansion) -> list[Address]:
    """The internet gateway, for an instance with a public IP: AWS refuses to detach the gateway
    while an address is mapped in its VPC, so the instance is deleted before it (and created after
    it, when its user data can reach the internet)."""
    has_gateway = any(tier.internet for tier in x.model.network.tiers.values())
    return [x.ref("internet_gateway", VPC, "id").address] if has_gateway else []


def _groups(x: Expansion, names: list[str]) -> tuple:
    return tuple(x.ref("security_group", g, "id") for g in names)
