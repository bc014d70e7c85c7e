"""db_instance (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class DbInstanceProps(Props):
    pass


class DbInstance(Provisioner[DbInstanceProps]):
    kind = "db_instance"
    props = DbInstanceProps
