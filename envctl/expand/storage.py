"""buckets: and functions: (stub)"""
from envctl.expand.base import Expansion


def expand_buckets(x: Expansion) -> None:
    pass


def expand_functions(x: Expansion) -> None:
    pass
