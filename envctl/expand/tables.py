"""tables: → DynamoDB tables. (stub)"""
from envctl.expand.base import Expansion


def expand_tables(x: Expansion) -> None:
    pass
