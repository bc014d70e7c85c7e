"""tables: → DynamoDB tables (encrypted with the AWS managed key; protected in protected environments)."""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.provisioners.table import KeyAttribute, TableProps


def expand_tables(x: Expansion) -> None:
    for name, table in x.model.tables.items():
        provisioned = table.billing == "provisioned"
        protect = table.deletion_protection if table.deletion_protection is not None else x.model.protected
        x.add("table", name, TableProps(
            name=x.physical(name),
            partition_key=KeyAttribute(name=table.partition_key.name, type=table.partition_key.type),
            sort_key=KeyAttribute(name=table.sort_key.name, type=table.sort_key.type) if table.sort_key else None,
            billing_mode="PROVISIONED" if provisioned else "PAY_PER_REQUEST",
            read_capacity=table.read_capacity if provisioned else None,
            write_capacity=table.write_capacity if provisioned else None,
            ttl_attribute=table.ttl_attribute,
            point_in_time_recovery=table.point_in_time_recovery,
            encryption="KMS",
            deletion_protection=protect,
        ))
