"""RDS DB instance: encrypted, private, master password managed by AWS in Secrets Manager.

The password is never in props, outputs or logs: RDS creates and rotates it
(ManageMasterUserPassword) and the outputs give only the secret's ARN.

In place (modify_db_instance with ApplyImmediately): instance class, storage growth, storage
type, multi-AZ, engine version upgrades, backup retention, deletion protection, security
groups, public accessibility, port. Replaced: engine, master user name, storage encryption,
subnet group, a smaller storage size (RDS cannot shrink storage) and an older engine version
(nor downgrade). An engine version the spec gives as a prefix ("16") matches any release of
it, and a newer minor release than the spec's (AWS's automatic minor upgrades) is no change.

Delete refuses while deletion protection is on: lifting it is the caller's explicit step.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from envctl.model.address import Address
from envctl.model.diff import AttrChange, diff_props
from envctl.model.graph import Node, has_unknown
from envctl.aws.waiters import GONE, wait_for, wait_until
from envctl.provisioners.base import (DeletionProtected, NotOurs, Observed, Props, Provisioner, Timeouts, Value,
                                      address_of, tag_dict, tag_list)
from envctl.provisioners.db_subnet_group import set_rds_tags

# Statuses on the way to "available" (after create or modify); anything else unexpected is a failure.
BUSY = {"creating", "backing-up", "modifying", "configuring-enhanced-monitoring", "configuring-log-exports",
        "configuring-iam-database-auth", "upgrading", "rebooting", "resetting-master-credentials", "renaming",
        "starting", "maintenance", "moving-to-vpc", "converting-to-vpc", "applying-modifications"}
READY = {"available", "storage-optimization"}        # storage-optimization: usable, AWS tunes the volume for hours
# Pending values of fields envctl sets: until they are applied, an update has not happened yet.
APPLYING = {"DBInstanceClass", "AllocatedStorage", "MultiAZ", "EngineVersion", "BackupRetentionPeriod", "StorageType",
            "Port", "DBSubnetGroupName", "MasterUserPassword"}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mariadb": 3306}


class DbInstanceProps(Props):
    engine: str
    engine_version: str
    instance_class: str
    allocated_storage: int                       # GiB
    storage_type: str = "gp2"
    multi_az: bool = False
    storage_encrypted: bool = False
    publicly_accessible: bool = False
    backup_retention_period: int = 1             # days
    deletion_protection: bool = False
    master_username: str
    manage_master_user_password: bool = False    # True: the password lives in Secrets Manager, made by RDS
    db_subnet_group_name: Value
    vpc_security_group_ids: tuple[Value, ...] = ()   # () = the VPC's default group (AWS's choice)
    port: int


class DbDeletionProtected(DeletionProtected):
    """delete refused: the database has deletion protection on."""

    def __init__(self, address: Address, name: str):
        self.address = address
        super().__init__(f"RDS DB instance {name} ({address}) has deletion protection on; set "
                         f"deletion_protection: false in the spec and run create before deleting it, "
                         f"or destroy with --force")


class DbInstance(Provisioner[DbInstanceProps]):
    kind = "db_instance"
    services = ("rds", "ec2")
    props = DbInstanceProps
    replace_on = frozenset({"engine", "master_username", "storage_encrypted", "db_subnet_group_name"})
    set_fields = frozenset({"vpc_security_group_ids"})
    stateful = True
    timeouts = Timeouts(create=3600, update=4800, delete=3600)
    uses = frozenset({"db_subnet_group", "security_group"})
    poll_interval: float = 15.0

    def discover(self, ctx) -> Iterable[Observed[DbInstanceProps]]:
        # One paginated call: describe_db_instances carries each instance's tags (TagList).
        for page in ctx.client("rds").get_paginator("describe_db_instances").paginate():
            for db in page["DBInstances"]:
                tags = tag_dict(db.get("TagList"))
                address = address_of(tags)
                if ctx.is_ours(tags) and address is not None and address.kind == self.kind \
                        and db["DBInstanceStatus"] != "deleting":
                    yield _observe(ctx, db)

    def read(self, ctx, id: str) -> Observed[DbInstanceProps] | None:
        db = _find_by_id(ctx.client("rds"), id)
        return _observe(ctx, db) if db is not None and db["DBInstanceStatus"] != "deleting" else None

    def find(self, ctx, node: Node) -> Observed[DbInstanceProps] | None:
        return self.read(ctx, node.physical_name.lower())

    def diff(self, desired: DbInstanceProps, observed: Observed[DbInstanceProps]) -> list[AttrChange]:
        have = observed.props
        changes = diff_props(desired, have, self.replace_on, self.set_fields,
                             ignore=frozenset({"engine_version", "allocated_storage"}))
        if desired.allocated_storage != have.allocated_storage:
            changes.append(AttrChange("allocated_storage", have.allocated_storage, desired.allocated_storage,
                                      forces_replace=desired.allocated_storage < have.allocated_storage))
        version = _version_change(desired.engine_version, have.engine_version)
        if version is not None:
            changes.append(AttrChange("engine_version", have.engine_version, desired.engine_version,
                                      forces_replace=version == "downgrade"))
        return changes

    def create(self, ctx, node: Node) -> str:
        from envctl.aws import errors

        p: DbInstanceProps = node.props
        rds = ctx.client("rds")
        name = node.physical_name.lower()
        params: dict[str, Any] = dict(
            DBInstanceIdentifier=name, Engine=p.engine, EngineVersion=p.engine_version,
            DBInstanceClass=p.instance_class, AllocatedStorage=p.allocated_storage, StorageType=p.storage_type,
            MultiAZ=p.multi_az, StorageEncrypted=p.storage_encrypted, PubliclyAccessible=p.publicly_accessible,
            BackupRetentionPeriod=p.backup_retention_period, DeletionProtection=p.deletion_protection,
            MasterUsername=p.master_username, ManageMasterUserPassword=p.manage_master_user_password,
            DBSubnetGroupName=p.db_subnet_group_name, Port=p.port, Tags=tag_list(node.tags))
        if p.vpc_security_group_ids:
            params["VpcSecurityGroupIds"] = list(p.vpc_security_group_ids)
        try:
            rds.create_db_instance(**params)
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = _find_by_id(rds, name)
            if existing is None or not ctx.is_ours(tag_dict(existing.get("TagList"))):
                raise NotOurs(node.address, f"RDS DB instance {name}") from None
        return name

    def update(self, ctx, observed: Observed[DbInstanceProps], node: Node, changes: list[AttrChange]) -> None:
        want: DbInstanceProps = node.props
        changed = {c.path for c in changes}
        params: dict[str, Any] = {}
        for field, parameter in (("instance_class", "DBInstanceClass"), ("allocated_storage", "AllocatedStorage"),
                                 ("storage_type", "StorageType"), ("multi_az", "MultiAZ"),
                                 ("backup_retention_period", "BackupRetentionPeriod"),
                                 ("deletion_protection", "DeletionProtection"),
                                 ("publicly_accessible", "PubliclyAccessible"), ("port", "DBPortNumber"),
                                 ("manage_master_user_password", "ManageMasterUserPassword")):
            if field in changed:
                params[parameter] = getattr(want, field)
        if "engine_version" in changed:
            params["EngineVersion"] = want.engine_version
            if _major(want.engine, want.engine_version) != _major(want.engine, observed.props.engine_version):
                params["AllowMajorVersionUpgrade"] = True
        rds = ctx.client("rds")
        if "vpc_security_group_ids" in changed:
            # None left in the spec: back to the VPC's default group (RDS takes no empty list).
            groups = list(want.vpc_security_group_ids) or [_vpc_default_group(ctx, rds, observed.id)]
            params["VpcSecurityGroupIds"] = groups
        if params:
            rds.modify_db_instance(DBInstanceIdentifier=observed.id, ApplyImmediately=True, **params)
        if "tags" in changed:
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[DbInstanceProps], tags: Mapping[str, str]) -> None:
        set_rds_tags(ctx.client("rds"), observed.outputs["arn"], observed.tags, tags)

    def delete(self, ctx, observed: Observed[DbInstanceProps]) -> None:
        """Delete with its automated backups. Deletion protection is lifted only when
        `ctx.force` (destroy --force); `ctx.final_snapshot` (a date stamp, set by destroy of a
        protected environment) keeps a final snapshot `<identifier>-final-<stamp>`."""
        from envctl.aws import errors

        rds = ctx.client("rds")
        if observed.props.deletion_protection:
            if not ctx.force:
                raise DbDeletionProtected(observed.address, observed.id)
            rds.modify_db_instance(DBInstanceIdentifier=observed.id, DeletionProtection=False, ApplyImmediately=True)
        snapshot = ({"FinalDBSnapshotIdentifier": f"{observed.id}-final-{ctx.final_snapshot}"}
                    if ctx.final_snapshot else {"SkipFinalSnapshot": True})
        try:
            rds.delete_db_instance(DBInstanceIdentifier=observed.id, DeleteAutomatedBackups=True, **snapshot)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def wait(self, ctx, id: str, until: Literal["ready", "gone"]) -> Observed[DbInstanceProps] | None:
        rds = ctx.client("rds")
        if until == "ready":
            # Right after create the id may not be visible yet: gone is pending then.
            db = wait_for(lambda: _find_by_id(rds, id), _status_of, pending=BUSY | {"applying", GONE}, target=READY,
                          timeout=self.timeouts.update, interval=self.poll_interval, describe=f"RDS DB instance {id}")
            return _observe(ctx, db)
        wait_until(lambda: _status(rds, id), pending=BUSY | READY | {"applying", "deleting"}, target={GONE},
                   timeout=self.timeouts.delete, interval=self.poll_interval, describe=f"RDS DB instance {id}")
        return None

    def outputs(self, observed: Observed[DbInstanceProps]) -> Mapping[str, str]:
        return observed.outputs


# ------------------------------------------------------------------ private helpers

def _find_by_id(rds, identifier: str) -> dict | None:
    from envctl.aws import errors

    try:
        dbs = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    return dbs[0] if dbs else None


def _status(rds, identifier: str) -> tuple[str, str | None] | None:
    db = _find_by_id(rds, identifier)
    return None if db is None else _status_of(db)


def _status_of(db: dict) -> tuple[str, str | None]:
    """(status, AWS's reason) of a DescribeDBInstances answer; pending modifications are "applying"."""
    status = db["DBInstanceStatus"]
    pending = sorted(set(db.get("PendingModifiedValues") or {}) & APPLYING)
    if status in READY and pending:
        return "applying", "pending: " + ", ".join(pending)
    infos = db.get("StatusInfos") or [{}]
    return status, infos[0].get("Message")


def _observe(ctx, db: dict) -> Observed[DbInstanceProps]:
    name = db["DBInstanceIdentifier"]
    tags = tag_dict(db.get("TagList"))
    endpoint = db.get("Endpoint") or {}
    port = endpoint.get("Port") or db.get("DbInstancePort") or DEFAULT_PORTS.get(db["Engine"], 0)
    groups = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", []) if g.get("Status") != "removing"]
    if len(groups) == 1 and _is_default_group(ctx, groups[0]):
        groups = []                           # RDS's choice when none is given: what () means
    props = DbInstanceProps(
        engine=db["Engine"],
        engine_version=db["EngineVersion"],
        instance_class=db["DBInstanceClass"],
        allocated_storage=db["AllocatedStorage"],
        storage_type=db.get("StorageType", "gp2"),
        multi_az=bool(db.get("MultiAZ")),
        storage_encrypted=bool(db.get("StorageEncrypted")),
        publicly_accessible=bool(db.get("PubliclyAccessible")),
        backup_retention_period=db.get("BackupRetentionPeriod", 1),
        deletion_protection=bool(db.get("DeletionProtection")),
        master_username=db["MasterUsername"],
        manage_master_user_password=bool(db.get("MasterUserSecret")),
        db_subnet_group_name=(db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", ""),
        vpc_security_group_ids=tuple(sorted(groups)),
        port=port,
    )
    address = endpoint.get("Address", "")
    return Observed(
        address=address_of(tags) or Address("db_instance", name), id=name, props=props, tags=tags,
        status="ready" if db["DBInstanceStatus"] in READY else db["DBInstanceStatus"],
        outputs={"name": name, "arn": db["DBInstanceArn"], "address": address, "port": str(port),
                 "endpoint": f"{address}:{port}" if address else "",
                 "secret_arn": (db.get("MasterUserSecret") or {}).get("SecretArn", "")})


def _is_default_group(ctx, group_id: str) -> bool:
    from envctl.aws import errors

    try:
        groups = ctx.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    except Exception as e:
        if errors.is_not_found(e):
            return False
        raise
    return bool(groups) and groups[0].get("GroupName") == "default"


def _vpc_default_group(ctx, rds, identifier: str) -> str:
    vpc = _find_by_id(rds, identifier)["DBSubnetGroup"]["VpcId"]
    groups = ctx.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                                 {"Name": "group-name", "Values": ["default"]}])
    return groups["SecurityGroups"][0]["GroupId"]


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _major(engine: str, version: str) -> tuple[int, ...]:
    # PostgreSQL counts majors as 16, 17; MySQL and MariaDB as 8.0, 10.11.
    return _parts(version)[:1] if engine == "postgres" else _parts(version)[:2]


def _version_change(desired: str, live: str) -> Literal["upgrade", "downgrade"] | None:
    """None when `live` is `desired` or a release of it (a prefix, or a newer last component)."""
    if has_unknown(desired) or desired == live:
        return None
    want, have = _parts(desired), _parts(live)
    if have[:len(want)] == want:
        return None                                   # "16" is 16.4; "8.0" is 8.0.39
    if want[:-1] == have[:len(want) - 1] and have > want:
        return None                                   # 16.6 for 16.4: AWS's automatic minor upgrade
    return "upgrade" if want > have else "downgrade"
