"""log_groups: → CloudWatch log groups with their metric filters; alarms: → CloudWatch metric alarms."""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.model.address import Address
from envctl.provisioners.alarm import AlarmProps, Dimension
from envctl.provisioners.log_group import LogGroupProps, MetricFilter
from envctl.spec import models

# An alarm's `metric.<key>: <name>` → (dimension, kind, output giving its value).
RESOURCE_DIMENSIONS = {
    "database": ("DBInstanceIdentifier", "db_instance", "name"),
    "queue": ("QueueName", "queue", "name"),
    "table": ("TableName", "table", "name"),
    "function": ("FunctionName", "function", "name"),
    "application": ("AutoScalingGroupName", "autoscaling_group", "name"),
    "instance": ("InstanceId", "instance", "id"),
}


def metric_namespace(x: Expansion, f: models.MetricFilter) -> str:
    """A metric filter's namespace: its own, or <project>/<environment>."""
    return f.namespace or f"{x.project}/{x.environment}"


def expand_log_groups(x: Expansion) -> None:
    for name, group in x.model.log_groups.items():
        x.add("log_group", name, LogGroupProps(
            retention_in_days=group.retention_days,
            metric_filters=tuple(MetricFilter(name=fname, pattern=f.pattern, metric_name=f.metric,
                                              namespace=metric_namespace(x, f), value=f.value)
                                 for fname, f in sorted(group.metric_filters.items())),
        ))


def expand_alarms(x: Expansion) -> None:
    for name, alarm in x.model.alarms.items():
        metric = alarm.metric
        extra_deps: list[Address] = []
        dimensions: list[Dimension] = []
        if metric.log_filter:
            group, _, filter_name = metric.log_filter.partition(".")
            f = x.model.log_groups[group].metric_filters[filter_name]
            namespace, metric_name = metric_namespace(x, f), f.metric
            # The metric exists once the filter does: the alarm waits for the log group.
            extra_deps.append(Address("log_group", group))
        else:
            namespace, metric_name = metric.namespace, metric.name
            dimensions = [Dimension(name=k, value=v) for k, v in sorted(metric.dimensions.items())]
            for key, resource in metric.resource_keys.items():
                if resource:
                    dimension, kind, attr = RESOURCE_DIMENSIONS[key]
                    dimensions.append(Dimension(name=dimension, value=x.ref(kind, resource, attr)))
        x.add("alarm", name, AlarmProps(
            namespace=namespace,
            metric_name=metric_name,
            statistic=alarm.statistic,
            period=alarm.period_s,
            evaluation_periods=alarm.evaluation_periods,
            threshold=alarm.threshold,
            comparison_operator=models.COMPARISONS[alarm.comparison],
            dimensions=tuple(dimensions),
            treat_missing_data=alarm.missing_data,
            alarm_description=alarm.description,
            alarm_actions=tuple(x.ref("topic", t, "arn") for t in dict.fromkeys(alarm.notify)),
        ), extra_deps=extra_deps)
