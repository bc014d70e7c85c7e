"""Imports every command module so that each registers itself on the root group."""
from envctl.cli import validate  # noqa: F401
