"""Observe: what AWS holds for one environment, read by tags. Read-only.

Every kind's `discover(ctx)` runs on a small thread pool; together they give one Observed
per address. Two live resources claiming the same address are a problem to report (a
duplicate from a crashed run, a copy made by hand), never something to pick from silently:
they are listed in `duplicates` and left out of `resources`, and the caller must stop.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from envctl.aws import errors
from envctl.engine import retry
from envctl.model.address import Address
from envctl.plan.planner import provisioner_lookup
from envctl.provisioners.base import Ctx, Observed, Provisioner

DISCOVER_WINDOW_S = 30.0


@dataclass(frozen=True)
class Observation:
    resources: dict[Address, Observed] = field(default_factory=dict)
    duplicates: list[tuple[Address, list[str]]] = field(default_factory=list)   # (address, ids), sorted
    skipped_kinds: list[str] = field(default_factory=list)                       # kinds without discover yet


class ObserveError(Exception):
    """Discovery of a kind failed: planning on a partial view would duplicate resources."""

    def __init__(self, kind: str, error: BaseException):
        self.kind = kind
        self.error = error
        super().__init__(f"discovering {kind} resources: {errors.message(error)}")


def observe(ctx: Ctx, kinds: Iterable[str] | None = None, parallelism: int = 8, *,
            provisioners: Mapping[str, Provisioner] | None = None, sleep=None) -> Observation:
    """Every resource of `kinds` (default: all registered kinds) tagged for ctx's environment.

    Each kind is discovered afresh (the session's tag scan cache is dropped first). Temporary
    errors are retried for a short window; any other failure raises ObserveError.
    """
    get = provisioner_lookup(provisioners)
    if kinds is None:
        if provisioners is None:
            from envctl.provisioners import kinds as registered

            kinds = registered()
        else:
            kinds = list(provisioners)
    kinds = list(kinds)
    forget = getattr(ctx.aws, "forget_tagged", None)
    if forget is not None:
        forget()

    retry_options = {} if sleep is None else {"sleep": sleep}

    def discover(kind: str) -> list[Observed] | None:
        p = get(kind)
        try:
            return retry.retry(lambda: list(p.discover(ctx)), deadline_s=DISCOVER_WINDOW_S, **retry_options)
        except NotImplementedError:
            return None                 # a kind not implemented yet: nothing of it can exist
        except Exception as e:
            raise ObserveError(kind, e) from e

    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="observe") as pool:
        found = list(zip(kinds, pool.map(discover, kinds)))

    claims: dict[Address, list[Observed]] = {}
    skipped = []
    for kind, observed in found:
        if observed is None:
            skipped.append(kind)
            continue
        for obs in observed:
            same = claims.setdefault(obs.address, [])
            if all(o.id != obs.id for o in same):       # one resource found twice is still one
                same.append(obs)
    resources = {a: obs[0] for a, obs in sorted(claims.items()) if len(obs) == 1}
    duplicates = [(a, sorted(o.id for o in obs)) for a, obs in sorted(claims.items()) if len(obs) > 1]
    return Observation(resources, duplicates, skipped)
