"""Executor events → live progress: a rich live view on a terminal, plain lines otherwise.

Finished resources are printed as lines (so logs keep them); on a terminal the resources
in flight are shown below them with their state and elapsed time.
"""
from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from envctl.engine import events

VERB_ING = {"create": "creating", "update": "updating", "replace": "replacing", "delete": "deleting"}
VERB_ED = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
MIN_ROWS = 5             # of resources in flight shown, however small the terminal


class Progress:
    def __init__(self, console: Console, *, live: bool, width: int = 0, quiet: bool = False):
        """`width`: of the address column (the longest address of the plan), so ids line up;
        `quiet`: print failures only."""
        self.console = console
        self.width = width
        self.quiet = quiet
        self._lock = threading.Lock()
        self._inflight: dict[str, tuple[str, float]] = {}      # address → (state, started)
        self._live = Live(console=console, refresh_per_second=8, transient=True,
                          get_renderable=self._renderable) if live else None

    def __enter__(self) -> "Progress":
        if self._live:
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live:
            self._live.stop()

    def __call__(self, event) -> None:
        with self._lock:
            if not self.quiet or isinstance(event, events.Failed):
                self._handle(event)

    def _handle(self, event) -> None:
        address = str(event.address)
        padded = f"{address:<{self.width}}"
        if isinstance(event, events.Started):
            action = str(getattr(event.action, "value", event.action))
            state = VERB_ING.get(action, action)
            self._inflight[address] = (state, time.monotonic())
            if not self._live:
                self.console.print(f"  {state:<10} {address}")
        elif isinstance(event, events.Waiting):
            _, started = self._inflight.get(address, ("", time.monotonic()))
            self._inflight[address] = (f"waiting: {event.status}", started)
            if not self._live:
                self.console.print(f"  {'waiting':<10} {padded}  ({event.status})")
        elif isinstance(event, events.Done):
            self._inflight.pop(address, None)
            action = str(getattr(event.action, "value", event.action))
            ident = f"{event.id}  " if event.id else ""
            self.console.print(Text.assemble(("✓ ", "green"), (f"{VERB_ED.get(action, action):<10}", "green"),
                                             f" {padded}  ", (f"{ident}({event.seconds:.1f}s)", "dim")))
        elif isinstance(event, events.Failed):
            self._inflight.pop(address, None)
            self.console.print(Text.assemble(("✗ ", "bold red"), (f"{'failed':<10}", "bold red"),
                                             f" {padded}  ", (event.message, "red")))
        elif isinstance(event, events.Skipped):
            self._inflight.pop(address, None)
            self.console.print(Text.assemble(("- ", "yellow"), (f"{'skipped':<10}", "yellow"),
                                             f" {padded}  ", (event.reason, "dim")))

    def _renderable(self):
        """The resources in flight, longest running first, as many as leave the terminal room
        for the lines above (100 alarms deleted in one call are 100 in flight at once)."""
        with self._lock:
            rows = sorted(self._inflight.items(), key=lambda row: (row[1][1], row[0]))
        room = max(MIN_ROWS, self.console.size.height - 4)
        shown = rows if len(rows) <= room else rows[:room - 1]
        table = Table(box=None, show_header=False, pad_edge=False)
        now = time.monotonic()
        for address, (state, started) in shown:
            table.add_row(Spinner("dots", style="cyan"), Text(state, style="cyan"), address,
                          Text(f"{now - started:.0f}s", style="dim"))
        if len(shown) < len(rows):
            table.add_row("", Text(f"… and {len(rows) - len(shown)} more", style="dim"), "", "")
        return Group(table)
