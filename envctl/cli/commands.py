"""Imports every command module so that each registers itself on the root group."""
from envctl.cli import create, destroy, diff, inventory, offline, outputs, sandbox, validate  # noqa: F401
