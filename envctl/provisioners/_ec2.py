"""What the EC2 network kinds share: tag specifications, ownership filters, tag reconciliation.

Kept to the mechanics of EC2's API, so every kind module still reads top to bottom on its
own. Not a kind: no provisioner lives here. envctl.aws.errors (and so botocore) is imported
inside functions: importing a provisioner must stay cheap (`envctl show` needs no boto3).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from envctl.aws.waiters import GONE, wait_until
from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.graph import Node
from envctl.provisioners.base import Ctx, Observed, address_of, tag_dict, tag_list

NAME = "Name"     # EC2's display name: envctl sets it to the physical name on create and leaves it alone after
READABLE_TIMEOUT = 60.0   # how long a new resource may stay unlisted (EC2's describe is eventually consistent)


def tag_specifications(resource_type: str, node: Node) -> list[dict]:
    """TagSpecifications for a create call: the node's tags (envctl's + the spec's) and Name."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags_with_name(node))}]


def tags_with_name(node: Node) -> dict[str, str]:
    """The tags a resource of `node` should carry: the node's and Name."""
    return {**node.tags, NAME: node.physical_name}


def ownership_filters(ctx: Ctx, node: Node) -> list[dict]:
    """Describe filters selecting the one resource tagged as `node` in ctx's environment."""
    return ctx.scope_filters() + [{"Name": f"tag:{tagging.RESOURCE}", "Values": [str(node.address)]}]


def describe(client: Any, operation: str, key: str, **kwargs) -> Iterator[dict]:
    """Every item under `key` of a paginated describe call."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def describe_one(client: Any, operation: str, key: str, **kwargs) -> dict | None:
    """The one item a describe-by-id returns; None when AWS says it does not exist."""
    from envctl.aws import errors

    try:
        items = getattr(client, operation)(**kwargs).get(key, [])
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise
    return items[0] if items else None


def ignore_not_found(call, **kwargs) -> None:
    """Make a delete-like call; a resource already gone is success."""
    from envctl.aws import errors

    try:
        call(**kwargs)
    except Exception as e:
        if not errors.is_not_found(e):
            raise


def address_for(kind: str, tags: Mapping[str, str], resource_id: str) -> Address:
    """The address a resource is tagged with; kind/<id> for one without (is_ours then refuses it)."""
    address = address_of(tags)
    return address if address is not None and address.kind == kind else Address(kind, resource_id)


def in_scope(ctx: Ctx, kind: str, raw_tags: list[dict] | None) -> bool:
    """Tagged for ctx's environment with an address of this kind. Checked on every answer, not
    left to the describe filters alone (moto ignores tag filters for NAT gateways)."""
    tags = tag_dict(raw_tags)
    address = address_of(tags)
    return ctx.is_ours(tags) and address is not None and address.kind == kind


def is_node(ctx: Ctx, node: Node, raw_tags: list[dict] | None) -> bool:
    """Tagged as exactly `node` in ctx's environment."""
    tags = tag_dict(raw_tags)
    return ctx.is_ours(tags) and address_of(tags) == node.address


def set_user_tags(client: Any, resource_id: str, current: Mapping[str, str], desired: Mapping[str, str]) -> None:
    """Make the resource's user tags equal the user tags of `desired`.

    envctl's own tags and AWS's reserved ones are never touched. Name (set from the physical
    name on create) is never removed; it is repaired when `desired` names it (update does).
    """
    want = tagging.user_tags(desired)
    have = tagging.user_tags(current)
    to_set = {k: v for k, v in want.items() if have.get(k) != v}
    to_remove = sorted(k for k in have if k not in want and k != NAME)
    if to_set:
        client.create_tags(Resources=[resource_id], Tags=tag_list(to_set))
    if to_remove:
        client.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in to_remove])


# ------------------------------------------------------------------ waits

def wait_readable(read: Callable[[], Observed | None], *, what: str, timeout: float = READABLE_TIMEOUT,
                  interval: float = 1.0) -> Observed | None:
    """Read a resource just created until EC2 lists it (at once, almost always)."""
    seen: list[Observed] = []

    def fetch() -> tuple[str, None] | None:
        found = read()
        if found is None:
            return None
        seen.append(found)
        return "listed", None

    wait_until(fetch, pending={GONE}, target={"listed"}, timeout=timeout, interval=interval, describe=what)
    return seen[-1]
