"""databases: → a DB subnet group over the tier's subnets + an RDS DB instance each.

Secure by default: storage encrypted, not publicly accessible, the master password managed
by AWS in Secrets Manager (never in the spec), gp3 storage.
"""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.expand.network import subnet_refs
from envctl.provisioners.db_instance import DEFAULT_PORTS, DbInstanceProps
from envctl.provisioners.db_subnet_group import DbSubnetGroupProps


def expand_databases(x: Expansion) -> None:
    for name, db in x.model.databases.items():
        x.add("db_subnet_group", name, DbSubnetGroupProps(
            description=f"{x.project} {x.environment} {name}", subnet_ids=subnet_refs(x, db.tier)))
        x.add("db_instance", name, DbInstanceProps(
            engine=db.engine,
            engine_version=db.version,
            instance_class=db.instance_class,
            allocated_storage=db.storage_gb,
            storage_type="gp3",
            multi_az=db.multi_az,
            storage_encrypted=True,
            publicly_accessible=False,
            backup_retention_period=db.backup_retention_days,
            deletion_protection=db.deletion_protection,
            master_username=db.username,
            manage_master_user_password=True,
            db_subnet_group_name=x.ref("db_subnet_group", name, "name"),
            vpc_security_group_ids=tuple(x.ref("security_group", g, "id") for g in db.security_groups),
            port=db.port or DEFAULT_PORTS[db.engine],
        ))
