"""role (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class RoleProps(Props):
    pass


class Role(Provisioner[RoleProps]):
    kind = "role"
    props = RoleProps
