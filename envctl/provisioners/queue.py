"""queue (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class QueueProps(Props):
    pass


class Queue(Provisioner[QueueProps]):
    kind = "queue"
    props = QueueProps
