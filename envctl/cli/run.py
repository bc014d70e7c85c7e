"""Executing a plan with live progress, Ctrl-C handling and the closing summary."""
from __future__ import annotations

import signal
import threading
from collections import Counter

from envctl.cli.app import App


def apply(app: App, planned, parallelism: int):
    """Execute `planned.plan`; print progress and a summary; return the executor's Result
    (`.ok`: every change succeeded).

    The first Ctrl-C stops starting new work and lets calls in flight finish; a second one
    interrupts at once.
    """
    from envctl.engine.executor import execute
    from envctl.render.progress import Progress

    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        app.err.print("[yellow]stopping: no new work is started; waiting for the calls in flight…[/]")

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        width = max((len(str(c.address)) for c in planned.plan if c.mutating), default=0)
        quiet = app.options.quiet
        with Progress(app.console, live=app.console.is_terminal and not quiet, width=width, quiet=quiet) as progress:
            result = execute(planned.plan, planned.desired, planned.observed, planned.ctx,
                             parallelism=parallelism, on_event=progress, stop=stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    show_result(app, result)
    return result


def show_result(app: App, result) -> None:
    """The closing line: what happened to how many resources, and how long it took (-q: only
    when something went wrong)."""
    if app.options.quiet and result.ok:
        return
    counts = Counter(o.state for o in result.outcomes.values())
    order = ("created", "updated", "replaced", "deleted", "unchanged", "failed", "skipped", "not started")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    color = "green" if result.ok else "red"
    head = "Interrupted" if result.interrupted else ("Done" if result.ok else "Failed")
    app.console.print(f"[bold {color}]{head}:[/] {', '.join(parts) or 'nothing to do'} "
                      f"in {result.elapsed:.1f}s.")
