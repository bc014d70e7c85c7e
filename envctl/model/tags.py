"""The tags that make a resource envctl's: every create carries them, every delete checks them."""
from __future__ import annotations

from collections.abc import Mapping

PROJECT = "envctl:project"
ENVIRONMENT = "envctl:environment"
RESOURCE = "envctl:resource"
OWNERSHIP = (PROJECT, ENVIRONMENT, RESOURCE)
CREATED = "envctl:created"          # set on create (UTC, minutes); `envctl list` shows the earliest
EXPIRES = "envctl:expires"          # an environment's end of life (UTC, minutes), for `envctl reap`
PROTECTED = "envctl:protected"      # "true" on every resource of a protected environment: reap refuses it
LIFECYCLE = (CREATED, EXPIRES, PROTECTED)   # set at run time, not part of the spec: plans do not compare them
TIME_FORMAT = "%Y-%m-%dT%H:%MZ"     # of CREATED and EXPIRES


def for_resource(project: str, environment: str, address: str, spec_tags: Mapping[str, str]) -> dict[str, str]:
    tags = dict(spec_tags)
    tags.update({PROJECT: project, ENVIRONMENT: environment, RESOURCE: address})
    return tags


def is_ours(tags: Mapping[str, str], project: str, environment: str) -> bool:
    return tags.get(PROJECT) == project and tags.get(ENVIRONMENT) == environment and RESOURCE in tags


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a kind's update_tags reconciles: the spec's own plus envctl's lifecycle tags;
    never the ownership tags or AWS's reserved ones.

    Lifecycle tags are reconciled like the spec's, so a caller passes the ones to keep: the
    executor passes the live ones (and this run's expiry) with the spec's tags.
    """
    return {k: v for k, v in tags.items() if k in LIFECYCLE or not k.startswith(("envctl:", "aws:"))}


def lifecycle(tags: Mapping[str, str]) -> dict[str, str]:
    """envctl's lifecycle tags (created, expires, protected) among `tags`."""
    return {k: v for k, v in tags.items() if k in LIFECYCLE}
