"""Lifecycle tags on the resources a plan leaves alone.

An environment's expiry (`envctl:expires`, from a ttl) and protection mark
(`envctl:protected`) are run-time values, not part of the spec, so the planner ignores
them. The executor puts `ctx.lifecycle_tags` on what it creates and updates; `renew` puts
them on every other live resource of the environment, so that each `create` renews the
expiry of all of it, even when the plan is otherwise empty. Those of `ctx.lifecycle_removed`
(the spec no longer has a ttl, or is no longer protected) are taken off the same way: the
spec is the truth. A tags-only update through each kind's `update_tags`: the spec's tags,
envctl's other tags and the resource stay as they are.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from envctl.aws import errors
from envctl.engine import DEFAULT_PARALLELISM, retry
from envctl.model.address import Address
from envctl.plan.planner import provisioner_lookup
from envctl.provisioners.base import Ctx, Observed, Provisioner


@dataclass(frozen=True)
class Renewal:
    renewed: list[Address] = field(default_factory=list)          # tags set, sorted
    failed: dict[Address, str] = field(default_factory=dict)       # address → why


def stale(ctx: Ctx, resources: Iterable[Observed]) -> list[Observed]:
    """The resources whose lifecycle tags differ from this run's: one of `ctx.lifecycle_tags`
    missing or different, or one of `ctx.lifecycle_removed` present."""
    return [o for o in resources if any(o.tags.get(k) != v for k, v in ctx.lifecycle_tags.items())
            or any(k in o.tags for k in ctx.lifecycle_removed)]


def renew(ctx: Ctx, resources: Iterable[Observed], *, parallelism: int = DEFAULT_PARALLELISM,
          provisioners: Mapping[str, Provisioner] | None = None, retry_window_s: float = retry.DEFAULT_WINDOW_S,
          sleep: Callable[[float], None] = time.sleep) -> Renewal:
    """Set `ctx.lifecycle_tags` on each of `resources` (observed just before) that lacks them,
    and take `ctx.lifecycle_removed` off.

    Never raises for one resource: failures are listed with their reason.
    """
    get = provisioner_lookup(provisioners)
    todo = stale(ctx, resources)

    def one(observed: Observed) -> str | None:
        if not ctx.is_ours(observed.tags):
            return "not tagged as this environment's; refusing to touch it"
        # update_tags makes the user tags equal these: what is left out here is removed.
        kept = {k: v for k, v in observed.tags.items() if k not in ctx.lifecycle_removed}
        tags = {**kept, **ctx.lifecycle_tags}
        p = get(observed.address.kind)
        try:
            retry.retry(lambda: p.update_tags(ctx, observed, tags), deadline_s=retry_window_s, sleep=sleep)
        except Exception as e:  # noqa: BLE001 — reported against its resource
            return errors.message(e) if errors.is_aws_error(e) else f"{type(e).__name__}: {e}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="renew") as pool:
        results = list(zip(todo, pool.map(one, todo)))
    return Renewal(renewed=sorted(o.address for o, why in results if why is None),
                   failed={o.address: why for o, why in sorted(results, key=lambda r: r[0].address) if why})
