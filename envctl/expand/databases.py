"""databases: → DB subnet group + DB instance. (stub)"""
from envctl.expand.base import Expansion


def expand_databases(x: Expansion) -> None:
    pass
