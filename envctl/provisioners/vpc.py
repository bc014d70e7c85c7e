"""VPC."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class VpcProps(Props):
    cidr_block: str
    enable_dns_support: bool = True
    enable_dns_hostnames: bool = True


class Vpc(Provisioner[VpcProps]):
    kind = "vpc"
    props = VpcProps
    replace_on = frozenset({"cidr_block"})
