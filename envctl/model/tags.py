"""The tags that make a resource envctl's: every create carries them, every delete checks them."""
from __future__ import annotations

from collections.abc import Mapping

PROJECT = "envctl:project"
ENVIRONMENT = "envctl:environment"
RESOURCE = "envctl:resource"
OWNERSHIP = (PROJECT, ENVIRONMENT, RESOURCE)
CREATED = "envctl:created"          # set on create (UTC, minutes); `envctl list` shows the earliest
EXPIRES = "envctl:expires"          # an environment's end of life, for `envctl reap`
LIFECYCLE = (CREATED, EXPIRES)      # not part of the spec: plans do not compare them


def for_resource(project: str, environment: str, address: str, spec_tags: Mapping[str, str]) -> dict[str, str]:
    tags = dict(spec_tags)
    tags.update({PROJECT: project, ENVIRONMENT: environment, RESOURCE: address})
    return tags


def is_ours(tags: Mapping[str, str], project: str, environment: str) -> bool:
    return tags.get(PROJECT) == project and tags.get(ENVIRONMENT) == environment and RESOURCE in tags


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The spec's own tags: everything but envctl's and AWS's reserved ones."""
    return {k: v for k, v in tags.items() if not k.startswith(("envctl:", "aws:"))}
