"""topic (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class TopicProps(Props):
    pass


class Topic(Provisioner[TopicProps]):
    kind = "topic"
    props = TopicProps
