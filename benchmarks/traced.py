"""The envctl CLI with every AWS call attributed to what made it: `python -m benchmarks.traced ARGS…`.

Used by run.py in place of `python -m envctl`, so that the run it times is also the run it
analyses. With $ENVCTL_BENCH_TRACE set, it writes there, as JSON, the times of the observe
and execute phases and one record per API call: who made it (`discover:<kind>`, the
executor step `<address>|<phase>`, or `main`), service, operation, start and end.

The attribution wraps, in this process only: botocore's `BaseClient._make_api_call` (every
API call, retries included inside it), each registered provisioner's `discover`, the
executor's per-step function `_Run._run` (private: if it is renamed, step calls show up as
`unattributed` and run.py says so), `Ctx.map` (each read of a discovery is labelled
`discover:<kind>#<i>`, of an executor step `<address>|<phase>#<n>.<i>`: they run side by side), the session's `tagged_arns` (to know which labels wait
for the one shared Resource Groups Tagging API scan) and the `observe` / `execute` entry
points. The overhead is a few microseconds per call.
"""
from __future__ import annotations

import contextvars
import functools
import itertools
import json
import os
import sys
import threading
import time

# A context variable, not a thread-local: Ctx.map runs discovery's reads on other threads in a
# copy of the caller's context, and their calls belong to the kind that asked for them.
_label: contextvars.ContextVar[str | None] = contextvars.ContextVar("label", default=None)
_calls: list[dict] = []
_phases: list[dict] = []
_tag_scan_asked: dict[str, list[float]] = {}    # label → when it asked for the tag scan


def _current() -> str:
    label = _label.get()
    if label:
        return label
    # The account check runs on a thread of its own while the main thread sets up, but every
    # other call waits for it: it counts as the main thread's (AwsSession.check_account_meanwhile).
    from envctl.aws.session import ACCOUNT_CHECK_THREAD     # here: botocore loads after main() set gc up

    thread = threading.current_thread()
    if thread is threading.main_thread() or thread.name == ACCOUNT_CHECK_THREAD:
        return "main"
    return "unattributed"


def _labelled(fn, label_of):
    """fn, with the calls made inside it labelled label_of(*args) (the outermost label wins)."""
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        if _label.get():
            return fn(*args, **kwargs)
        token = _label.set(label_of(*args))
        try:
            return fn(*args, **kwargs)
        finally:
            _label.reset(token)
    return inner


def _items_labelled(ctx_map):
    """Ctx.map, with each read labelled: `discover:<kind>#<i>` in a discovery (one map per kind),
    `<address>|<phase>#<n>.<i>` in an executor step (its n-th map). The reads run side by side,
    so each one is its own chain of calls."""
    maps = itertools.count()

    @functools.wraps(ctx_map)
    def inner(ctx, read, items):
        label = _label.get()
        if not label or "#" in label or not (label.startswith("discover:") or "|" in label):
            return ctx_map(ctx, read, items)             # a map inside a read runs one by one
        prefix = label if label.startswith("discover:") else f"{label}#{next(maps)}."

        def labelled(pair):
            token = _label.set(f"{prefix}#{pair[0]}" if prefix == label else f"{prefix}{pair[0]}")
            try:
                return read(pair[1])
            finally:
                _label.reset(token)

        return ctx_map(ctx, labelled, list(enumerate(items)))
    return inner


def _listed(fn):
    """A discover that may be a generator, run to the end inside the call (so inside its label)."""
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return list(fn(*args, **kwargs))
    return inner


def _timed_phase(name: str, fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        start = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            _phases.append({"phase": name, "start": start, "end": time.time()})
    return inner


def install() -> None:
    from botocore.client import BaseClient

    from envctl.aws.session import AwsSession
    from envctl.engine import executor, observe
    from envctl.provisioners import REGISTRY
    from envctl.provisioners.base import Ctx

    make_api_call = BaseClient._make_api_call

    def traced_call(client, operation_name, api_params):
        record = {"label": _current(), "service": client.meta.service_model.service_name,
                  "signing": client.meta.service_model.signing_name,     # the rate limits' name
                  "operation": operation_name, "start": time.time()}
        try:
            return make_api_call(client, operation_name, api_params)
        except Exception as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code")    # botocore's ClientError
            record["error"] = code or type(e).__name__
            raise
        finally:
            record["end"] = time.time()
            _calls.append(record)

    BaseClient._make_api_call = traced_call
    for cls in REGISTRY:
        cls.discover = _labelled(_listed(cls.discover), lambda p, *_: f"discover:{p.kind}")
    Ctx.map = _items_labelled(Ctx.map)
    if hasattr(getattr(executor, "_Run", None), "_run"):
        executor._Run._run = _labelled(executor._Run._run, lambda _, step, *__: f"{step.change.address}|{step.phase}")
    tagged_arns = AwsSession.tagged_arns

    def traced_tagged_arns(session, resource_type):
        _tag_scan_asked.setdefault(_current(), []).append(time.time())    # from here it waits for the scan
        return tagged_arns(session, resource_type)

    AwsSession.tagged_arns = traced_tagged_arns
    observe.observe = _timed_phase("observe", observe.observe)
    executor.execute = _timed_phase("execute", executor.execute)


def write(path: str) -> None:
    with open(path, "w") as f:
        json.dump({"phases": _phases, "calls": _calls, "tag_scan_users": sorted(_tag_scan_asked),
                   "tag_scan_asked": _tag_scan_asked}, f)


def main() -> None:
    path = os.environ.get("ENVCTL_BENCH_TRACE")
    from envctl.cli import main as envctl_main

    if path:
        install()
    sys.argv[0] = "envctl"
    try:
        envctl_main()
    finally:
        if path:
            write(path)


if __name__ == "__main__":
    main()
