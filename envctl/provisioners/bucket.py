"""bucket (stub: to be implemented)."""
from __future__ import annotations

from envctl.provisioners.base import Props, Provisioner


class BucketProps(Props):
    pass


class Bucket(Provisioner[BucketProps]):
    kind = "bucket"
    props = BucketProps
