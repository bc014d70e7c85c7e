"""Elastic IP for a NAT gateway."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class EipProps(Props):
    domain: str = "vpc"


class Eip(Provisioner[EipProps]):
    kind = "eip"
    props = EipProps
    replace_on = frozenset({"domain"})
