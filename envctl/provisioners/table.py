"""DynamoDB table: keys, billing, TTL, point-in-time recovery, encryption, deletion protection.

TTL and point-in-time recovery are separate APIs on AWS (update_time_to_live,
update_continuous_backups) but fields of the table here: they are read back with the
table and reconciled by its update. Encryption is always on with the AWS managed key
(`alias/aws/dynamodb`), the expander says so; AWS's own default is the AWS owned key.

Discovery takes the tables and their tags from the environment's tag scan, then makes three
calls per table: DescribeTable, DescribeTimeToLive and DescribeContinuousBackups. DynamoDB has
no batch describe, and keeps TTL and point-in-time recovery out of DescribeTable.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, Literal

from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.aws.waiters import GONE, wait_for, wait_until
from envctl.provisioners.base import (DeletionProtected, NotOurs, Observed, Props, Provisioner, Timeouts, address_of, tag_changes,
                                      tag_dict, tag_list)


class KeyAttribute(Props):
    name: str
    type: Literal["S", "N", "B"] = "S"


class TableProps(Props):
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    billing_mode: Literal["PROVISIONED", "PAY_PER_REQUEST"] = "PROVISIONED"
    read_capacity: int | None = None            # only with PROVISIONED
    write_capacity: int | None = None
    ttl_attribute: str | None = None            # None: TTL disabled
    point_in_time_recovery: bool = False
    encryption: Literal["AWS_OWNED", "KMS"] = "AWS_OWNED"    # KMS: the AWS managed key alias/aws/dynamodb
    deletion_protection: bool = False


class TableDeletionProtected(DeletionProtected):
    """delete refused: the table has deletion protection on."""

    def __init__(self, address: Address, name: str):
        self.address = address
        super().__init__(f"DynamoDB table {name} ({address}) has deletion protection on; set "
                         f"deletion_protection: false in the spec and run create before deleting it, "
                         f"or destroy with --force")


class Table(Provisioner[TableProps]):
    kind = "table"
    services = ("dynamodb",)
    props = TableProps
    tag_scan = "dynamodb"
    replace_on = frozenset({"name", "partition_key", "sort_key"})
    stateful = True
    timeouts = Timeouts(create=600, update=3600, delete=600)
    poll_interval: float = 5.0                  # seconds between describe_table calls while waiting

    def discover(self, ctx) -> Iterable[Observed[TableProps]]:
        tables = []
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            resource = arn.split(":", 5)[5]                    # table/<name>, table/<name>/stream/…
            parts = resource.split("/")
            address = address_of(tags)
            if len(parts) == 2 and parts[0] == "table" and address is not None and address.kind == self.kind:
                tables.append((parts[1], tags))
        # Every table's three reads side by side: a table costs one call's time, not three. For a
        # delete, DescribeTable alone (name, ARN, deletion protection): TTL and point-in-time
        # recovery matter to no delete, and AWS answers DescribeContinuousBackups 10 times a second.
        reads = [_reads(ctx, name)[:1] if ctx.for_delete else _reads(ctx, name) for name, _ in tables]
        answers = iter(ctx.read_all([read for table_reads in reads for read in table_reads]))
        for (name, tags), table_reads in zip(tables, reads):
            table, *settings = (next(answers) for _ in table_reads)
            ttl, backups = settings or ({}, {})         # not read for a delete
            found = self._observed(name, tags, None, table, ttl, backups)
            if found is not None:
                yield found

    def read(self, ctx, id: str) -> Observed[TableProps] | None:
        return self._read(ctx, id, tags=None)

    def read_for_delete(self, ctx, observed: Observed[TableProps]) -> Observed[TableProps] | None:
        """DeleteTable needs the name, and deletion protection as it is now (it may have been
        turned on since the plan): DescribeTable and the tags side by side, 2 calls instead of
        a full read's 4; TTL and point-in-time recovery do not matter to a delete."""
        ddb = ctx.client("dynamodb")
        table, tags = ctx.read_all([partial(_describe, ctx, observed.id),
                                    partial(_or_none, partial(_tags, ddb, observed.outputs["arn"]))])
        if table is None or tags is None or table["TableStatus"] == "DELETING":
            return None
        protected = bool(table.get("DeletionProtectionEnabled", False))
        return replace(observed, tags=tags, props=observed.props.model_copy(update={"deletion_protection": protected}))

    def find(self, ctx, node: Node) -> Observed[TableProps] | None:
        return self._read(ctx, node.props.name, tags=None, address=node.address)

    def create(self, ctx, node: Node) -> str:
        from envctl.aws import errors

        p: TableProps = node.props
        keys = [p.partition_key] + ([p.sort_key] if p.sort_key else [])
        params: dict[str, Any] = dict(
            TableName=p.name,
            KeySchema=[{"AttributeName": k.name, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"))],
            AttributeDefinitions=[{"AttributeName": k.name, "AttributeType": k.type} for k in keys],
            BillingMode=p.billing_mode,
            SSESpecification=_sse(p.encryption),
            DeletionProtectionEnabled=p.deletion_protection,
            Tags=tag_list(node.tags),
        )
        if p.billing_mode == "PROVISIONED":
            params["ProvisionedThroughput"] = _throughput(p)
        ddb = ctx.client("dynamodb")
        # Create first: a taken name is refused (ResourceInUseException), never overwritten, so
        # the look-up is needed only then: ours from before (a crash, a lost reply) is adopted.
        try:
            created = ddb.create_table(**params)["TableDescription"]
        except Exception as e:
            if not errors.is_in_use(e):
                raise
            existing = self.find(ctx, node)
            if existing is None:
                raise          # a table of that name being deleted: in use, retried until it is gone
            if ctx.is_ours(existing.tags):
                return existing.id
            raise NotOurs(node.address, f"DynamoDB table {p.name}") from None
        # TTL and backups can only be set on an ACTIVE table: AWS answers CREATING and takes
        # seconds to minutes; no describe when the answer already says ACTIVE (emulators).
        if (p.ttl_attribute or p.point_in_time_recovery) and created.get("TableStatus") != "ACTIVE":
            self._wait_active(ctx, p.name, self.timeouts.create)
        if p.ttl_attribute:
            ddb.update_time_to_live(TableName=p.name,
                                    TimeToLiveSpecification={"Enabled": True, "AttributeName": p.ttl_attribute})
        if p.point_in_time_recovery:
            _set_pitr(ddb, p.name, True)
        return p.name

    def update(self, ctx, observed: Observed[TableProps], node: Node, changes) -> None:
        want: TableProps = node.props
        have = observed.props
        changed = {c.path for c in changes}
        ddb = ctx.client("dynamodb")
        name = observed.id
        if changed & {"billing_mode", "read_capacity", "write_capacity"}:
            params: dict[str, Any] = {"TableName": name, "BillingMode": want.billing_mode}
            if want.billing_mode == "PROVISIONED":
                params["ProvisionedThroughput"] = _throughput(want)
            ddb.update_table(**params)
            self._wait_active(ctx, name, self.timeouts.update)
        if "encryption" in changed:
            ddb.update_table(TableName=name, SSESpecification=_sse(want.encryption))
            self._wait_active(ctx, name, self.timeouts.update)
        if "deletion_protection" in changed:
            ddb.update_table(TableName=name, DeletionProtectionEnabled=want.deletion_protection)
        if "ttl_attribute" in changed:
            # AWS changes TTL's attribute only by disabling the old one first (and then refuses
            # to enable it again for up to an hour: a real run may fail here and retry later).
            if have.ttl_attribute:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": False, "AttributeName": have.ttl_attribute})
            if want.ttl_attribute:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": want.ttl_attribute})
        if "point_in_time_recovery" in changed:
            _set_pitr(ddb, name, want.point_in_time_recovery)

    def update_tags(self, ctx, observed: Observed[TableProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        ddb = ctx.client("dynamodb")
        arn = observed.outputs["arn"]
        if to_set:
            ddb.tag_resource(ResourceArn=arn, Tags=tag_list(to_set))
        if to_remove:
            ddb.untag_resource(ResourceArn=arn, TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[TableProps]) -> None:
        from envctl.aws import errors

        ddb = ctx.client("dynamodb")
        if observed.props.deletion_protection:
            if not ctx.force:         # destroy --force lifts it; nothing else does
                raise TableDeletionProtected(observed.address, observed.id)
            ddb.update_table(TableName=observed.id, DeletionProtectionEnabled=False)
        try:
            ddb.delete_table(TableName=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[TableProps] | None:
        if until == "ready":
            # The describe that sees it ACTIVE is also the read's: DescribeTable is not made twice.
            table = self._wait_active(ctx, id, self.timeouts.create)
            return self._read(ctx, id, tags=None, table=table)
        # Kept although DeleteTable has answered: AWS deletes in the background (DELETING), and
        # the name is free again only once the table is gone (a replacement re-uses it).
        wait_until(lambda: _status(ctx, id), pending={"DELETING", "ACTIVE", "UPDATING"}, target={GONE},
                   timeout=self.timeouts.delete, interval=self.poll_interval, describe=f"DynamoDB table {id}")
        return None

    # -------------------------------------------------------------- private helpers

    def _read(self, ctx, name: str, tags: Mapping[str, str] | None, address: Address | None = None,
              table: dict | None = None) -> Observed[TableProps] | None:
        """The table `name`; `tags` and its DescribeTable answer (`table`) are read here when not given.
        DescribeTable, the TTL and the backups are read side by side, then the tags (by the ARN)."""
        describe, *settings = _reads(ctx, name)
        if table is None:
            table, *answers = ctx.read_all([describe, *settings])
        else:
            answers = ctx.read_all(settings)
        if table is not None and tags is None:
            tags = _tags(ctx.client("dynamodb"), table["TableArn"])
        return self._observed(name, tags, address, table, *answers)

    def _observed(self, name: str, tags: Mapping[str, str] | None, address: Address | None, table: dict | None,
                  ttl: dict | None, backups: dict | None) -> Observed[TableProps] | None:
        """The Observed of one table from its reads; None when any of them found it gone."""
        if table is None or ttl is None or backups is None or table["TableStatus"] == "DELETING":
            return None
        return Observed(
            address=address or address_of(tags) or Address(self.kind, name), id=name,
            props=_props(table, ttl, backups), tags=dict(tags),
            status="ready" if table["TableStatus"] == "ACTIVE" else table["TableStatus"].lower(),
            outputs={"name": name, "arn": table["TableArn"], "stream_arn": table.get("LatestStreamArn", "")})

    def _wait_active(self, ctx, name: str, timeout: float) -> dict:
        """Until the table is ACTIVE (its encryption settled too); its last DescribeTable answer."""
        return wait_for(lambda: _describe(ctx, name), _status_of, pending={"CREATING", "UPDATING"}, target={"ACTIVE"},
                        timeout=timeout, interval=self.poll_interval, describe=f"DynamoDB table {name}")


def _props(table: dict, ttl: dict, backups: dict) -> TableProps:
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    keys = {k["KeyType"]: KeyAttribute(name=k["AttributeName"], type=types[k["AttributeName"]])
            for k in table["KeySchema"]}
    # Tables made before on-demand billing existed have no BillingModeSummary: provisioned.
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    throughput = table.get("ProvisionedThroughput", {})
    sse = table.get("SSEDescription") or {}
    kms = sse.get("SSEType") == "KMS" and sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING")
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    return TableProps(
        name=table["TableName"],
        partition_key=keys["HASH"],
        sort_key=keys.get("RANGE"),
        billing_mode=billing,
        read_capacity=throughput.get("ReadCapacityUnits") if billing == "PROVISIONED" else None,
        write_capacity=throughput.get("WriteCapacityUnits") if billing == "PROVISIONED" else None,
        ttl_attribute=ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
        point_in_time_recovery=pitr == "ENABLED",
        encryption="KMS" if kms else "AWS_OWNED",
        deletion_protection=bool(table.get("DeletionProtectionEnabled", False)),
    )


def _describe(ctx, name: str) -> dict | None:
    return _answer(ctx.client("dynamodb").describe_table, "Table", TableName=name)


def _reads(ctx, name: str) -> tuple[Callable[[], dict | None], ...]:
    """The three reads a table's props need, each one call and independent of the others:
    DescribeTable, its TTL, its point-in-time recovery. Each answers None when the table is gone."""
    ddb = ctx.client("dynamodb")
    return (partial(_describe, ctx, name),
            partial(_answer, ddb.describe_time_to_live, "TimeToLiveDescription", TableName=name),
            partial(_answer, ddb.describe_continuous_backups, "ContinuousBackupsDescription", TableName=name))


def _answer(call: Callable[..., dict], key: str, **kwargs) -> dict | None:
    """call(**kwargs)[key]; None when the table is not (or no longer) there."""
    return _or_none(lambda: call(**kwargs)[key])


def _or_none(read: Callable[[], Any]) -> Any:
    """read(); None when the table is not (or no longer) there."""
    from envctl.aws import errors

    try:
        return read()
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise


def _status(ctx, name: str) -> tuple[str, str | None] | None:
    """(status, reason) for wait_until; None when the table is gone."""
    table = _describe(ctx, name)
    return None if table is None else _status_of(table)


def _status_of(table: dict) -> tuple[str, str | None]:
    """(status, reason) of a DescribeTable answer; a table whose encryption is still changing is UPDATING."""
    sse = (table.get("SSEDescription") or {}).get("Status")
    if table["TableStatus"] == "ACTIVE" and sse in ("ENABLING", "DISABLING", "UPDATING"):
        return "UPDATING", f"encryption {sse}"
    return table["TableStatus"], None


def _tags(ddb, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    kwargs = {"ResourceArn": arn}
    while True:
        page = ddb.list_tags_of_resource(**kwargs)
        tags.update(tag_dict(page.get("Tags")))
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def _sse(encryption: str) -> dict:
    # Enabled=False means the AWS owned key (AWS's default), not "unencrypted": DynamoDB always encrypts.
    return {"Enabled": True, "SSEType": "KMS"} if encryption == "KMS" else {"Enabled": False}


def _throughput(p: TableProps) -> dict:
    return {"ReadCapacityUnits": p.read_capacity, "WriteCapacityUnits": p.write_capacity}


def _set_pitr(ddb, name: str, enabled: bool) -> None:
    ddb.update_continuous_backups(TableName=name,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled})
