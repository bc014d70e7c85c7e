"""Internet gateway, attached to the VPC (the attachment is part of the gateway)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner, Value


class InternetGatewayProps(Props):
    vpc_id: Value


class InternetGateway(Provisioner[InternetGatewayProps]):
    kind = "internet_gateway"
    props = InternetGatewayProps
