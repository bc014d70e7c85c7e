"""log_group (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class LogGroupProps(Props):
    pass


class LogGroup(Provisioner[LogGroupProps]):
    kind = "log_group"
    props = LogGroupProps
