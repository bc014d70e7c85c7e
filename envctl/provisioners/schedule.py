"""schedule (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class ScheduleProps(Props):
    pass


class Schedule(Provisioner[ScheduleProps]):
    kind = "schedule"
    props = ScheduleProps
