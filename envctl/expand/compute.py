"""instances: and applications: (stub)"""
from envctl.expand.base import Expansion


def expand_instances(x: Expansion) -> None:
    pass


def expand_applications(x: Expansion) -> None:
    pass
