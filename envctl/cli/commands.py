"""Imports every command module so that each registers itself on the root group."""
from envctl.cli import (compare, completion, create, destroy, diff, inventory, offline, outputs, reap,  # noqa: F401
                        sandbox, unlock, validate)
