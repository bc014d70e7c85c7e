"""log_groups: and alarms: (stub)"""
from envctl.expand.base import Expansion


def expand_log_groups(x: Expansion) -> None:
    pass


def expand_alarms(x: Expansion) -> None:
    pass
