"""Every resource kind envctl manages: an explicit table, no discovery magic.

The order is the order `envctl` lists kinds in; the dependency order comes from the graph.
"""
from __future__ import annotations

from envctl.provisioners import (alarm, autoscaling_group, bucket, db_instance, db_subnet_group, eip, function,
                                 instance, instance_profile, internet_gateway, launch_template, log_group,
                                 nat_gateway, queue, role, route_table, schedule, security_group, subnet, table,
                                 topic, vpc)
from envctl.provisioners.base import Provisioner, Props

REGISTRY: tuple[type[Provisioner], ...] = (
    vpc.Vpc,
    internet_gateway.InternetGateway,
    subnet.Subnet,
    eip.Eip,
    nat_gateway.NatGateway,
    route_table.RouteTable,
    security_group.SecurityGroup,
    role.Role,
    instance_profile.InstanceProfile,
    instance.Instance,
    launch_template.LaunchTemplate,
    autoscaling_group.AutoscalingGroup,
    db_subnet_group.DbSubnetGroup,
    db_instance.DbInstance,
    table.Table,
    queue.Queue,
    topic.Topic,
    bucket.Bucket,
    function.Function,
    log_group.LogGroup,
    alarm.Alarm,
    schedule.Schedule,
)

_BY_KIND = {p.kind: p for p in REGISTRY}
_BY_PROPS = {p.props: p for p in REGISTRY}
_INSTANCES: dict[str, Provisioner] = {}


def by_kind(kind: str) -> Provisioner:
    """The (stateless, shared) provisioner of a kind."""
    inst = _INSTANCES.get(kind)
    if inst is None:
        inst = _INSTANCES[kind] = _BY_KIND[kind]()
    return inst


def by_props(props: Props) -> Provisioner:
    return by_kind(_BY_PROPS[type(props)].kind)


def kinds() -> list[str]:
    return [p.kind for p in REGISTRY]
