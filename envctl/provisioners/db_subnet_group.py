"""db_subnet_group (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class DbSubnetGroupProps(Props):
    pass


class DbSubnetGroup(Provisioner[DbSubnetGroupProps]):
    kind = "db_subnet_group"
    props = DbSubnetGroupProps
