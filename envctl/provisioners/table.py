"""table (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class TableProps(Props):
    pass


class Table(Provisioner[TableProps]):
    kind = "table"
    props = TableProps
