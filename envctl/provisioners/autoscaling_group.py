"""autoscaling_group (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class AutoscalingGroupProps(Props):
    pass


class AutoscalingGroup(Provisioner[AutoscalingGroupProps]):
    kind = "autoscaling_group"
    props = AutoscalingGroupProps
