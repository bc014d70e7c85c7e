"""EventBridge scheduled rule with its targets (a field of the rule: targets cannot be tagged).

put_rule is an upsert and put_targets replaces a target by Id, so create looks first and
update sends only what differs.

Discovery lists the rules by name prefix (ListRules gives everything but tags and targets),
takes their tags from the environment's tag scan, and reads each rule's targets
(ListTargetsByRule: EventBridge has no listing of several rules' targets). AWS's tag scan
covers rules, though not at once after they are tagged, and moto's not at all: a rule the
scan does not hold has its tags read on its own (ListTagsForResource).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Literal

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners.base import (NotOurs, Observed, Props, Provisioner, Value, address_of, canonical_json,
                                      tag_changes, tag_list, with_live_tags)


class Target(Props):
    id: str
    arn: Value
    input: str | None = None                    # constant JSON text sent to the target


class ScheduleProps(Props):
    name: str
    schedule_expression: str                    # cron(…) or rate(…)
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    description: str | None = None
    targets: tuple[Target, ...] = ()


class Schedule(Provisioner[ScheduleProps]):
    kind = "schedule"
    services = ("events",)
    props = ScheduleProps
    replace_on = frozenset({"name"})
    set_fields = frozenset({"targets"})
    delete_before_replace = False               # a replacement always has a new name: make it first
    uses = frozenset({"queue"})                 # the target queue
    tag_scan = "events"

    def discover(self, ctx) -> Iterable[Observed[ScheduleProps]]:
        events = ctx.client("events")
        # The rules by name first: the listing needs nothing from the environment's tag scan,
        # which the other kinds have set going, so the two run side by side (schedules were
        # discovery's longest chain: the scan, then the listing, then each rule's reads).
        kwargs = {"NamePrefix": f"{ctx.project}-{ctx.environment}-"}
        rules = []
        while True:
            page = events.list_rules(**kwargs)
            rules += page.get("Rules", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        scanned = dict(ctx.aws.tagged_arns(self.tag_scan))

        def observed(rule: Mapping) -> Observed[ScheduleProps] | None:
            tags = scanned.get(rule["Arn"])
            if tags is None:
                tags = _tags(events, rule["Arn"])
            address = address_of(tags)
            if not ctx.is_ours(tags) or address is None or address.kind != self.kind:
                return None
            return self._observe(ctx, rule, tags, address)

        yield from filter(None, ctx.map(observed, rules))

    def read(self, ctx, id: str) -> Observed[ScheduleProps] | None:
        return self._read(ctx, id)

    def read_for_delete(self, ctx, observed: Observed[ScheduleProps]) -> Observed[ScheduleProps] | None:
        # The delete removes the targets the plan saw, and lists them afresh if AWS still refuses.
        return with_live_tags(observed, lambda: _tags(ctx.client("events"), observed.outputs["arn"]))

    def find(self, ctx, node: Node) -> Observed[ScheduleProps] | None:
        return self._read(ctx, node.props.name, address=node.address)

    def create(self, ctx, node: Node) -> str:
        p: ScheduleProps = node.props
        # Look first: put_rule on an existing name would silently rewrite it.
        existing = self.find(ctx, node)
        if existing is not None:
            if ctx.is_ours(existing.tags):
                return existing.id
            raise NotOurs(node.address, f"EventBridge rule {p.name}")
        events = ctx.client("events")
        events.put_rule(Tags=tag_list(node.tags), **_rule(p))
        if p.targets:
            _put_targets(events, p.name, p.targets)
        return p.name

    def update(self, ctx, observed: Observed[ScheduleProps], node: Node, changes) -> None:
        want: ScheduleProps = node.props
        changed = {c.path for c in changes}
        events = ctx.client("events")
        if changed & {"schedule_expression", "state", "description"}:
            events.put_rule(**_rule(want))            # without Tags: put_rule ignores them on an update
        if "targets" in changed:
            have = {_key(t) for t in observed.props.targets}
            missing = [t for t in want.targets if _key(t) not in have]
            if missing:
                _put_targets(events, want.name, missing)
            extra = sorted({t.id for t in observed.props.targets} - {t.id for t in want.targets})
            if extra:
                events.remove_targets(Rule=want.name, Ids=extra)

    def update_tags(self, ctx, observed: Observed[ScheduleProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        events = ctx.client("events")
        if to_set:
            events.tag_resource(ResourceARN=observed.outputs["arn"], Tags=tag_list(to_set))
        if to_remove:
            events.untag_resource(ResourceARN=observed.outputs["arn"], TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[ScheduleProps]) -> None:
        from envctl.aws import errors

        # A rule with targets cannot be deleted: remove them first. `observed` was read just before
        # (the executor's re-read) and holds them; should the delete still be refused (a target
        # put since), the targets are listed afresh and removed, and the rule deleted again.
        events = ctx.client("events")
        try:
            _remove_targets_and_delete(events, observed.id, [t.id for t in observed.props.targets])
        except Exception as e:
            if errors.is_not_found(e):
                return
            try:
                _remove_targets_and_delete(events, observed.id, [t["Id"] for t in _targets(events, observed.id)])
            except Exception as again:
                if not errors.is_not_found(again):
                    raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[ScheduleProps] | None:
        return self.read(ctx, id) if until == "ready" else None

    # -------------------------------------------------------------- private helpers

    def _read(self, ctx, name: str, address: Address | None = None) -> Observed[ScheduleProps] | None:
        from envctl.aws import errors

        events = ctx.client("events")
        try:
            rule = events.describe_rule(Name=name)
            tags = _tags(events, rule["Arn"])
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        return self._observe(ctx, rule, tags, address or address_of(tags) or Address(self.kind, name))

    def _observe(self, ctx, rule: Mapping, tags: Mapping[str, str],
                 address: Address) -> Observed[ScheduleProps] | None:
        from envctl.aws import errors

        try:
            targets = _targets(ctx.client("events"), rule["Name"])
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        props = ScheduleProps(
            name=rule["Name"],
            schedule_expression=rule.get("ScheduleExpression", ""),
            state=rule["State"],
            description=rule.get("Description") or None,
            targets=tuple(sorted((Target(id=t["Id"], arn=t["Arn"], input=_input(t.get("Input"))) for t in targets),
                                 key=lambda t: t.id)),
        )
        return Observed(address=address, id=rule["Name"], props=props, tags=dict(tags),
                        outputs={"name": rule["Name"], "arn": rule["Arn"]})


def _rule(p: ScheduleProps) -> dict:
    params = {"Name": p.name, "ScheduleExpression": p.schedule_expression, "State": p.state}
    if p.description:
        params["Description"] = p.description
    return params


def _put_targets(events, rule: str, targets: Iterable[Target]) -> None:
    entries = []
    for t in targets:
        entry = {"Id": t.id, "Arn": _known(t.arn)}
        if t.input is not None:
            entry["Input"] = t.input
        entries.append(entry)
    failed = events.put_targets(Rule=rule, Targets=entries).get("FailedEntries", [])
    if failed:
        f = failed[0]
        raise RuntimeError(f"putting target {f.get('TargetId')} on EventBridge rule {rule}: "
                           f"{f.get('ErrorCode')}: {f.get('ErrorMessage')}")


def _known(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value} is not resolved: the executor resolves references before writing")
    return value


def _remove_targets_and_delete(events, rule: str, target_ids: list[str]) -> None:
    if target_ids:
        events.remove_targets(Rule=rule, Ids=target_ids)
    events.delete_rule(Name=rule)


def _targets(events, rule: str) -> list[dict]:
    out: list[dict] = []
    kwargs = {"Rule": rule}
    while True:
        page = events.list_targets_by_rule(**kwargs)
        out.extend(page.get("Targets", []))
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def _tags(events, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=arn).get("Tags", [])}


def _input(text: str | None) -> str | None:
    """JSON compared by meaning (canonical spelling); anything else as is."""
    if text is None:
        return None
    try:
        return canonical_json(text)
    except json.JSONDecodeError:
        return text


def _key(t: Target) -> tuple:
    return t.id, str(t.arn), t.input
