"""instance (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class InstanceProps(Props):
    pass


class Instance(Provisioner[InstanceProps]):
    kind = "instance"
    props = InstanceProps
