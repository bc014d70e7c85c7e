"""queues:, topics:, schedules: (stub)"""
from envctl.expand.base import Expansion


def expand_queues(x: Expansion) -> None:
    pass


def expand_topics(x: Expansion) -> None:
    pass


def expand_schedules(x: Expansion) -> None:
    pass
