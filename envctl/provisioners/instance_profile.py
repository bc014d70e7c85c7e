"""instance_profile (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class InstanceProfileProps(Props):
    pass


class InstanceProfile(Provisioner[InstanceProfileProps]):
    kind = "instance_profile"
    props = InstanceProfileProps
