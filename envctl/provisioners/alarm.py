"""CloudWatch metric alarm: on a log metric filter's metric or on a service metric.

The id is the alarm's name. `put_metric_alarm` is an upsert that replaces every setting
it is not given, so create looks the name up first (it would silently take over a
foreign alarm), and update sends the whole alarm again.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envctl.aws import errors
from envctl.model.address import Address
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners.base import (Ctx, NotOurs, Observed, Props, Provisioner, Timeouts, Value, address_of,
                                      tag_changes, tag_list, with_live_tags)


class Dimension(Props):
    name: str
    value: Value


class AlarmProps(Props):
    namespace: str
    metric_name: str
    statistic: str | None                         # Sum, Average, Minimum, Maximum, SampleCount
    period: int                                   # seconds
    evaluation_periods: int
    threshold: float
    comparison_operator: str                      # GreaterThanOrEqualToThreshold, …
    dimensions: tuple[Dimension, ...] = ()
    treat_missing_data: str = "missing"
    alarm_description: str | None = None
    alarm_actions: tuple[Value, ...] = ()         # topic ARNs notified on ALARM
    # Settings envctl does not set; read so that a hand-made change shows in diff (the next
    # update, a full put, resets them).
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    datapoints_to_alarm: int | None = None
    unit: str | None = None
    actions_enabled: bool = True


class Alarm(Provisioner[AlarmProps]):
    kind = "alarm"
    services = ("cloudwatch",)
    props = AlarmProps
    set_fields = frozenset({"dimensions", "alarm_actions", "ok_actions", "insufficient_data_actions"})
    timeouts = Timeouts(create=60, update=60, delete=60)
    uses = frozenset({"topic", "db_instance", "queue", "table", "function", "autoscaling_group", "instance"})
    tag_scan = "cloudwatch"
    delete_batch = 10           # DeleteAlarms takes 100 names; AWS answers it 3 times a second (see delete_many)

    def discover(self, ctx: Ctx) -> Iterable[Observed[AlarmProps]]:
        # The Tagging API covers alarms (on AWS and moto): one scan for their names and tags,
        # then one describe_alarms per 100 alarms.
        tagged = {}
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            address = address_of(tags)
            if ":alarm:" in arn and ctx.is_ours(tags) and address is not None and address.kind == self.kind:
                tagged[arn.split(":alarm:", 1)[1]] = (address, tags)
        names = sorted(tagged)
        cloudwatch = ctx.client("cloudwatch")
        for i in range(0, len(names), 100):
            for alarm in cloudwatch.describe_alarms(AlarmNames=names[i:i + 100],
                                                    AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
                address, tags = tagged[alarm["AlarmName"]]
                yield _observed(alarm, tags, address)

    def read(self, ctx: Ctx, id: str) -> Observed[AlarmProps] | None:
        cloudwatch = ctx.client("cloudwatch")
        alarm = _find_alarm(cloudwatch, id)
        if alarm is None:
            return None
        try:
            tags = _tags(cloudwatch, alarm["AlarmArn"])
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        return _observed(alarm, tags, address_of(tags) or Address(self.kind, id))

    def read_for_delete(self, ctx: Ctx, observed: Observed[AlarmProps]) -> Observed[AlarmProps] | None:
        # A delete needs the name alone: the tags are what is checked (DescribeAlarms would be 9 a second more).
        return with_live_tags(observed, lambda: _tags(ctx.client("cloudwatch"), observed.outputs["arn"]))

    def find(self, ctx: Ctx, node: Node) -> Observed[AlarmProps] | None:
        return self.read(ctx, node.physical_name)

    def create(self, ctx: Ctx, node: Node) -> str:
        existing = self.read(ctx, node.physical_name)
        if existing is not None:
            return self._adopt(ctx, node, existing)
        ctx.client("cloudwatch").put_metric_alarm(**_alarm_params(node.physical_name, node.props),
                                                  Tags=tag_list(node.tags))
        return node.physical_name

    def update(self, ctx: Ctx, observed: Observed[AlarmProps], node: Node, changes: list[AttrChange]) -> None:
        # No Tags here: AWS ignores them on an existing alarm (and moto would merge them in).
        ctx.client("cloudwatch").put_metric_alarm(**_alarm_params(observed.id, node.props))

    def update_tags(self, ctx: Ctx, observed: Observed[AlarmProps], tags: Mapping[str, str]) -> None:
        cloudwatch = ctx.client("cloudwatch")
        arn = observed.outputs["arn"]
        to_set, to_remove = tag_changes(observed.tags, tags)
        if to_set:
            cloudwatch.tag_resource(ResourceARN=arn, Tags=tag_list(to_set))
        if to_remove:
            cloudwatch.untag_resource(ResourceARN=arn, TagKeys=to_remove)

    def delete(self, ctx: Ctx, observed: Observed[AlarmProps]) -> None:
        self.delete_many(ctx, [observed])

    def delete_many(self, ctx: Ctx, observed: Sequence[Observed[AlarmProps]]) -> None:
        """Up to `delete_batch` alarms a call. AWS takes 100 names and answers 3 calls a second;
        10 keep the deletes ahead of the alarms' own tag checks (10 a second), and what waits for
        an alarm (its log group, its topic) waits for 9 others, not for 99."""
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[o.id for o in observed])   # a missing alarm is no error

    def outputs(self, observed: Observed[AlarmProps]) -> Mapping[str, str]:
        return observed.outputs

    # ------------------------------------------------------------------ helpers

    def _adopt(self, ctx: Ctx, node: Node, existing: Observed[AlarmProps]) -> str:
        """The name is taken: ours (same address) → bring it to the spec; anything else → NotOurs."""
        if not ctx.is_ours(existing.tags) or existing.address != node.address:
            raise NotOurs(node.address, f"CloudWatch alarm {node.physical_name}")
        changes = self.diff(node.props, existing)
        if changes:
            self.update(ctx, existing, node, changes)
        return existing.id


def _alarm_params(name: str, p: AlarmProps) -> dict[str, Any]:
    """The complete put_metric_alarm request for `p` (the call replaces what it is not given)."""
    params: dict[str, Any] = {
        "AlarmName": name, "Namespace": p.namespace, "MetricName": p.metric_name, "Period": p.period,
        "EvaluationPeriods": p.evaluation_periods, "Threshold": p.threshold,
        "ComparisonOperator": p.comparison_operator, "TreatMissingData": p.treat_missing_data,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in p.dimensions],
        "AlarmActions": list(p.alarm_actions), "OKActions": list(p.ok_actions),
        "InsufficientDataActions": list(p.insufficient_data_actions), "ActionsEnabled": p.actions_enabled,
    }
    optional = {"Statistic": p.statistic, "AlarmDescription": p.alarm_description,
                "DatapointsToAlarm": p.datapoints_to_alarm, "Unit": p.unit}
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def _observed(alarm: dict, tags: Mapping[str, str], address: Address) -> Observed[AlarmProps]:
    props = AlarmProps(
        namespace=alarm.get("Namespace", ""), metric_name=alarm.get("MetricName", ""),
        statistic=alarm.get("Statistic"), period=alarm.get("Period", 0),
        evaluation_periods=alarm["EvaluationPeriods"], threshold=float(alarm.get("Threshold", 0.0)),
        comparison_operator=alarm["ComparisonOperator"],
        dimensions=tuple(sorted((Dimension(name=d["Name"], value=d["Value"]) for d in alarm.get("Dimensions", [])),
                                key=lambda d: (d.name, d.value))),
        treat_missing_data=alarm.get("TreatMissingData", "missing"),
        alarm_description=alarm.get("AlarmDescription"),
        alarm_actions=tuple(sorted(alarm.get("AlarmActions", []))),
        ok_actions=tuple(sorted(alarm.get("OKActions", []))),
        insufficient_data_actions=tuple(sorted(alarm.get("InsufficientDataActions", []))),
        datapoints_to_alarm=alarm.get("DatapointsToAlarm"), unit=alarm.get("Unit"),
        actions_enabled=alarm.get("ActionsEnabled", True))
    return Observed(address=address, id=alarm["AlarmName"], props=props, tags=dict(tags),
                    outputs={"name": alarm["AlarmName"], "arn": alarm["AlarmArn"]})


def _find_alarm(cloudwatch: Any, name: str) -> dict | None:
    alarms = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return alarms[0] if alarms else None


def _tags(cloudwatch: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cloudwatch.list_tags_for_resource(ResourceARN=arn).get("Tags", [])}
