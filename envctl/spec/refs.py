"""References inside a spec: `${queues.work-units.url}` in strings.

Name references in fields (`from: bastion`, `role: ingest`, `notify: [alarms]`) are
checked in validate.py; this module parses the `${section.name.attribute}` form and knows
which attributes each section exposes (the outputs of its provisioner).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = re.compile(r"\$\{([^}]*)\}")

# section → (address kind, attributes a ${…} reference may read)
ATTRIBUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "queues": ("queue", ("url", "arn", "name")),
    "topics": ("topic", ("arn", "name")),
    "tables": ("table", ("name", "arn", "stream_arn")),
    "buckets": ("bucket", ("name", "arn", "domain_name")),
    "functions": ("function", ("name", "arn")),
    "log_groups": ("log_group", ("name", "arn")),
    "databases": ("db_instance", ("endpoint", "address", "port", "arn", "name", "secret_arn")),
    "instances": ("instance", ("id", "private_ip", "public_ip")),
    "security_groups": ("security_group", ("id", "name")),
    "roles": ("role", ("arn", "name")),
    "applications": ("autoscaling_group", ("name", "arn")),
}


@dataclass(frozen=True)
class SpecRef:
    section: str
    name: str
    attribute: str

    @property
    def text(self) -> str:
        return f"${{{self.section}.{self.name}.{self.attribute}}}"


def find(text: str) -> list[str]:
    """The inner texts of every ${…} in `text`."""
    return PATTERN.findall(text)


def parse(inner: str) -> SpecRef:
    """`queues.work-units.url` → SpecRef; ValueError with the reason otherwise."""
    parts = inner.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"${{{inner}}} must have the form ${{section.name.attribute}}")
    section, name, attribute = parts
    if section not in ATTRIBUTES:
        raise ValueError(f"${{{inner}}}: unknown section {section!r}; one of {', '.join(ATTRIBUTES)}")
    attrs = ATTRIBUTES[section][1]
    if attribute not in attrs:
        raise ValueError(f"${{{inner}}}: a {section[:-1]} has no attribute {attribute!r}; one of {', '.join(attrs)}")
    return SpecRef(section, name, attribute)
