"""roles: → IAM roles (+ an instance profile for each role assumed by ec2).

Each `allow` entry becomes exact IAM actions (spec.models.GRANTS) on exactly the ARN of the
resource it names, by reference (the role depends on what it grants on, never the reverse),
except buckets, whose ARN is known from their name.
Statements are grouped one per resource (pattern), actions sorted: the same spec always
gives the same policy.
"""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.model.graph import Ref, Template
from envctl.provisioners.instance_profile import InstanceProfileProps
from envctl.provisioners.role import RoleProps, Statement, role_path, trust_policy
from envctl.spec.models import GRANTS, PRINCIPALS

# Actions on a bucket itself; every other s3 action is on its objects (<arn>/*).
BUCKET_LEVEL_ACTIONS = frozenset({"s3:ListBucket"})
# What a function needs on its own log group to write its logs.
FUNCTION_LOG_ACTIONS = GRANTS["log_group"]["write"]


def expand_roles(x: Expansion) -> None:
    path = role_path(x.project, x.environment)
    for name, role in x.model.roles.items():
        grants: dict[tuple, set[str]] = {}          # (kind, name, suffix) → actions
        for grant in role.allow:
            kind, target = grant.target
            for word in grant.actions:
                for action in GRANTS[kind][word]:
                    grants.setdefault(_resource_key(kind, target, action), set()).add(action)
        for fname, fn in x.model.functions.items():
            if fn.role == name:
                key = _resource_key("log_group", f"function-{fname}", FUNCTION_LOG_ACTIONS[0])
                grants.setdefault(key, set()).update(FUNCTION_LOG_ACTIONS)
        statements = tuple(Statement(actions=tuple(sorted(actions)), resources=(_resource(x, *key),))
                           for key, actions in sorted(grants.items()))
        x.add("role", name, RoleProps(path=path, assume_role_policy=trust_policy(PRINCIPALS[role.assumed_by]),
                                      statements=statements,
                                      managed_policies=tuple(sorted(set(role.managed_policies)))))
        if role.assumed_by == "ec2":
            x.add("instance_profile", name, InstanceProfileProps(path=path, role_name=x.ref("role", name, "name")))


def _resource_key(kind: str, name: str, action: str) -> tuple[str, str, str]:
    """Where an action applies: the resource's ARN, its objects, or its log streams."""
    if kind == "bucket":
        return (kind, name, "" if action in BUCKET_LEVEL_ACTIONS else "/*")
    if kind == "log_group":
        return (kind, name, ":*")            # log group outputs give the ARN without the trailing :*
    return (kind, name, "")


def _resource(x: Expansion, kind: str, name: str, suffix: str) -> str | Ref | Template:
    if kind == "bucket":
        # An S3 ARN holds neither account nor region: write it out. A Ref would close the cycle
        # role → bucket → (notification) function → role whenever a function's role reads its bucket.
        return f"{_bucket_arn(x, name)}{suffix}"
    arn = x.ref(kind, name, "arn")
    return Template((arn, suffix)) if suffix else arn


def _bucket_arn(x: Expansion, name: str) -> str:
    bucket = x.model.buckets[name]
    return f"arn:{_partition(x.model.region)}:s3:::{bucket.name or x.physical(name)}"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
