"""launch_template (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class LaunchTemplateProps(Props):
    pass


class LaunchTemplate(Provisioner[LaunchTemplateProps]):
    kind = "launch_template"
    props = LaunchTemplateProps
