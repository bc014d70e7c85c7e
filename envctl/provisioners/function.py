"""function (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class FunctionProps(Props):
    pass


class Function(Provisioner[FunctionProps]):
    kind = "function"
    props = FunctionProps
