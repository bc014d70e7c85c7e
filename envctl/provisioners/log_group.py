"""CloudWatch Logs log group, with its metric filters (sub-resources of the group).

The id is the group's name. A function's own group (`/aws/lambda/<function>`) is one of
these too, made before the function so that Lambda never creates it untagged.

Discovery makes no call per group: the groups come from DescribeLogGroups by name prefix,
their tags from the environment's tag scan, and the metric filters of all of them from one
DescribeMetricFilters listing of the region's filters, grouped by log group.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from envctl.aws import errors
from envctl.model.address import Address
from envctl.model.diff import AttrChange
from envctl.model.graph import Node
from envctl.provisioners.base import (Ctx, NotOurs, Observed, Props, Provisioner, Timeouts, address_of, tag_changes,
                                      with_live_tags)
from envctl.spec.names import physical_name


class MetricFilter(Props):
    name: str
    pattern: str
    metric_name: str
    namespace: str
    value: str = "1"


class LogGroupProps(Props):
    retention_in_days: int | None = None          # None: logs never expire (AWS's default)
    metric_filters: tuple[MetricFilter, ...] = ()


class LogGroup(Provisioner[LogGroupProps]):
    kind = "log_group"
    services = ("logs",)
    props = LogGroupProps
    tag_scan = "logs"
    set_fields = frozenset({"metric_filters"})
    timeouts = Timeouts(create=60, update=60, delete=60)

    def discover(self, ctx: Ctx) -> Iterable[Observed[LogGroupProps]]:
        # Tags from the environment's tag scan (it filters by tags only: moto matches nothing for
        # the type `logs:log-group`); retention from DescribeLogGroups for the two prefixes every
        # name envctl gives a group starts with.
        tagged = {_group_name(arn): tags for arn, tags in ctx.aws.tagged_arns(self.tag_scan) if ":log-group:" in arn}
        if not tagged:
            return
        logs = ctx.client("logs")
        stem = physical_name(ctx.project, ctx.environment, "")
        # The two prefixes' groups and the region's filters are independent listings: side by
        # side they are one call after the scan instead of three (log groups were discovery's
        # longest chain in every diff and destroy the benchmark runs).
        ours_groups, lambda_groups, filters = ctx.read_all([
            lambda: list(_describe_groups(logs, stem)),
            lambda: list(_describe_groups(logs, f"/aws/lambda/{stem}")),
            lambda: _filters_by_group(logs)])
        for group in ours_groups + lambda_groups:
            tags = tagged.get(group["logGroupName"], {})
            address = address_of(tags)
            if ctx.is_ours(tags) and address is not None and address.kind == self.kind:
                yield self._observed(group, tags, address, filters.get(group["logGroupName"], []))

    def read_for_delete(self, ctx: Ctx, observed: Observed[LogGroupProps]) -> Observed[LogGroupProps] | None:
        # The delete needs the name and the metric filters the plan saw (AWS deletes the others
        # with the group): the tags are what is checked, one call where a full read is three.
        return with_live_tags(observed, lambda: _tags(ctx.client("logs"), observed.outputs["arn"]))

    def read(self, ctx: Ctx, id: str) -> Observed[LogGroupProps] | None:
        logs = ctx.client("logs")
        group = _find_group(logs, id)
        if group is None:
            return None
        try:
            tags = _tags(logs, _arn(group))
            return self._observed(group, tags, address_of(tags), _filters(logs, id))
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise

    def find(self, ctx: Ctx, node: Node) -> Observed[LogGroupProps] | None:
        return self.read(ctx, node.physical_name)

    def create(self, ctx: Ctx, node: Node) -> str:
        logs = ctx.client("logs")
        name = node.physical_name
        try:
            logs.create_log_group(logGroupName=name, tags=dict(node.tags))
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            return self._adopt(ctx, node)
        if node.props.retention_in_days is not None:
            logs.put_retention_policy(logGroupName=name, retentionInDays=node.props.retention_in_days)
        for f in node.props.metric_filters:
            _put_filter(logs, name, f)
        return name

    def update(self, ctx: Ctx, observed: Observed[LogGroupProps], node: Node, changes: list[AttrChange]) -> None:
        logs = ctx.client("logs")
        name = observed.id
        fields = {c.path for c in changes}
        if "retention_in_days" in fields:
            if node.props.retention_in_days is None:
                logs.delete_retention_policy(logGroupName=name)
            else:
                logs.put_retention_policy(logGroupName=name, retentionInDays=node.props.retention_in_days)
        if "metric_filters" in fields:
            # Read again rather than trust the plan's copy: put_metric_filter is not an idempotent
            # upsert on moto (it appends), so only what differs right now is sent.
            current = _filters(logs, name)
            to_put, to_delete = filter_calls(current, node.props.metric_filters)
            for f in to_put:
                _put_filter(logs, name, f)
            for filter_name in to_delete:
                logs.delete_metric_filter(logGroupName=name, filterName=filter_name)

    def update_tags(self, ctx: Ctx, observed: Observed[LogGroupProps], tags: Mapping[str, str]) -> None:
        logs = ctx.client("logs")
        arn = observed.outputs["arn"]
        to_set, to_remove = tag_changes(observed.tags, tags)
        if to_set:
            logs.tag_resource(resourceArn=arn, tags=to_set)
        if to_remove:
            logs.untag_resource(resourceArn=arn, tagKeys=to_remove)

    def delete(self, ctx: Ctx, observed: Observed[LogGroupProps]) -> None:
        logs = ctx.client("logs")
        # AWS deletes a group's metric filters with it; moto keeps them and a re-created group
        # would inherit them. Deleting them first is right on both.
        for f in observed.props.metric_filters:
            try:
                logs.delete_metric_filter(logGroupName=observed.id, filterName=f.name)
            except Exception as e:
                if not errors.is_not_found(e):
                    raise
        try:
            logs.delete_log_group(logGroupName=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def outputs(self, observed: Observed[LogGroupProps]) -> Mapping[str, str]:
        return observed.outputs

    # ------------------------------------------------------------------ helpers

    def _observed(self, group: dict, tags: Mapping[str, str], address: Address | None,
                  filters: Iterable[MetricFilter]) -> Observed[LogGroupProps]:
        name = group["logGroupName"]
        props = LogGroupProps(retention_in_days=group.get("retentionInDays"),
                              metric_filters=tuple(filters))
        return Observed(address=address or Address(self.kind, name), id=name, props=props, tags=dict(tags),
                        outputs={"name": name, "arn": _arn(group)})

    def _adopt(self, ctx: Ctx, node: Node) -> str:
        """The name is taken: ours (same address) → bring it to the spec; anything else → NotOurs."""
        observed = self.read(ctx, node.physical_name)
        if observed is None or not ctx.is_ours(observed.tags) or observed.address != node.address:
            raise NotOurs(node.address, f"CloudWatch log group {node.physical_name}")
        changes = self.diff(node.props, observed)
        if changes:
            self.update(ctx, observed, node, changes)
        return observed.id


def filter_calls(current: Iterable[MetricFilter], desired: Iterable[MetricFilter]
                 ) -> tuple[list[MetricFilter], list[str]]:
    """(filters to put, names to delete) that turn `current` into `desired`; filters match by name."""
    current_by_name: dict[str, list[MetricFilter]] = {}
    for f in current:
        current_by_name.setdefault(f.name, []).append(f)
    wanted = {f.name: f for f in desired}
    to_put = [f for name, f in sorted(wanted.items()) if current_by_name.get(name) != [f]]
    to_delete = sorted(name for name in current_by_name if name not in wanted)
    return to_put, to_delete


def _describe_groups(logs: Any, prefix: str) -> Iterator[dict]:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
        yield from page.get("logGroups", [])


def _find_group(logs: Any, name: str) -> dict | None:
    """The group named exactly `name` (the API only filters by prefix)."""
    return next((g for g in _describe_groups(logs, name) if g["logGroupName"] == name), None)


def _arn(group: dict) -> str:
    """The group's ARN without the `:*` that `arn` carries (tagging wants it without)."""
    return group.get("logGroupArn") or group["arn"].removesuffix(":*")


def _group_name(arn: str) -> str:
    """arn:aws:logs:<region>:<account>:log-group:<name>, with or without a trailing `:*`."""
    return arn.split(":log-group:", 1)[1].removesuffix(":*")


def _tags(logs: Any, arn: str) -> dict[str, str]:
    return logs.list_tags_for_resource(resourceArn=arn).get("tags", {})


def _filters(logs: Any, name: str) -> list[MetricFilter]:
    """The metric filters of one group."""
    return _filters_by_group(logs, name).get(name, [])


def _filters_by_group(logs: Any, name: str | None = None) -> dict[str, list[MetricFilter]]:
    """{group name: its metric filters} of group `name`, or of every group in the region (one
    paginated listing, 50 filters a page, whatever the number of groups)."""
    out: dict[str, list[MetricFilter]] = {}
    kwargs = {"logGroupName": name} if name is not None else {}
    for page in logs.get_paginator("describe_metric_filters").paginate(**kwargs):
        for f in page.get("metricFilters", []):
            group = f.get("logGroupName", name)
            if group is None or (name is not None and group != name):
                continue
            t = (f.get("metricTransformations") or [{}])[0]      # AWS allows exactly one
            out.setdefault(group, []).append(MetricFilter(
                name=f["filterName"], pattern=f.get("filterPattern", ""), metric_name=t.get("metricName", ""),
                namespace=t.get("metricNamespace", ""), value=t.get("metricValue", "")))
    return {group: sorted(filters, key=lambda f: f.name) for group, filters in out.items()}


def _put_filter(logs: Any, group: str, f: MetricFilter) -> None:
    logs.put_metric_filter(logGroupName=group, filterName=f.name, filterPattern=f.pattern,
                           metricTransformations=[{"metricName": f.metric_name, "metricNamespace": f.namespace,
                                                   "metricValue": f.value}])
