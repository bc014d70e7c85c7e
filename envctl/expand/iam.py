"""roles: → IAM roles (+ instance profiles for EC2). (stub)"""
from envctl.expand.base import Expansion


def expand_roles(x: Expansion) -> None:
    pass
