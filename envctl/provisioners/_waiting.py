"""Kept for the modules that import it: the one generic wait lives in envctl.aws.waiters."""
from envctl.aws.waiters import GONE, WaitFailed, WaitTimeout, wait_until  # noqa: F401
