"""Physical names envctl derives (`<project>-<environment>-<name>`) and each service's rules for them."""
from __future__ import annotations

import re


def physical_name(project: str, environment: str, name: str) -> str:
    return f"{project}-{environment}-{name}"


# kind → (max length, regex the whole name must match, what the rule is in words)
RULES: dict[str, tuple[int, str, str]] = {
    "bucket": (63, r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "3 to 63 lowercase letters, digits, dots and dashes"),
    "queue": (80, r"^[A-Za-z0-9_-]+(\.fifo)?$", "at most 80 letters, digits, dashes and underscores"),
    "db_instance": (63, r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$",
                    "at most 63 letters, digits and single dashes, starting with a letter"),
    "db_subnet_group": (255, r"^[a-z0-9 ._-]+$", "at most 255 lowercase letters, digits, dots, dashes"),
    "role": (64, r"^[\w+=,.@-]+$", "at most 64 letters, digits and +=,.@_-"),
    "instance_profile": (128, r"^[\w+=,.@-]+$", "at most 128 letters, digits and +=,.@_-"),
    "table": (255, r"^[a-zA-Z0-9_.-]{3,255}$", "3 to 255 letters, digits, _ . -"),
    "function": (64, r"^[a-zA-Z0-9_-]+$", "at most 64 letters, digits, dashes and underscores"),
    "topic": (256, r"^[A-Za-z0-9_-]+$", "at most 256 letters, digits, dashes and underscores"),
    "log_group": (512, r"^[\w.\-/#]+$", "at most 512 letters, digits and _ . - / #"),
    "schedule": (64, r"^[\w.\-]+$", "at most 64 letters, digits and _ . -"),
    "launch_template": (128, r"^[a-zA-Z0-9().\-/_]{3,128}$", "3 to 128 letters, digits and ( ) . - / _"),
    "autoscaling_group": (255, r"^[^:]+$", "at most 255 characters, no colon"),
    "alarm": (255, r"^[^\x00-\x1f]+$", "at most 255 printable characters"),
    "security_group": (255, r"^[\w .:/()#,@\[\]+=&;{}!$*-]+$", "at most 255 characters"),
}


def check(kind: str, name: str) -> str | None:
    """None if `name` is legal for `kind`, otherwise what is wrong with it."""
    rule = RULES.get(kind)
    if rule is None:
        return None
    limit, pattern, words = rule
    if len(name) > limit:
        return f"the {kind.replace('_', ' ')} name {name!r} is {len(name)} characters, over the limit of {limit}"
    if not re.match(pattern, name):
        return f"the {kind.replace('_', ' ')} name {name!r} is not allowed: {words}"
    if kind == "bucket" and re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return f"the bucket name {name!r} must not look like an IP address"
    return None
