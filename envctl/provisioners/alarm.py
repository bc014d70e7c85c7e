"""alarm (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class AlarmProps(Props):
    pass


class Alarm(Provisioner[AlarmProps]):
    kind = "alarm"
    props = AlarmProps
