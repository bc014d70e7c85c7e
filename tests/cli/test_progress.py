"""The live progress view: the resources in flight fit the terminal, however many there are."""
from __future__ import annotations

import io

from rich.console import Console

from envctl.engine import events
from envctl.model.address import Address
from envctl.plan.changes import Action
from envctl.render.progress import Progress


def in_flight_view(n: int, height: int) -> list[str]:
    progress = Progress(Console(file=io.StringIO(), width=80, height=height), live=False, width=12)
    for i in range(n):
        progress(events.Started(Address("alarm", f"a{i:03d}"), Action.DELETE))
    out = Console(file=io.StringIO(), width=80, height=200)
    out.print(progress._renderable())
    return out.file.getvalue().rstrip().splitlines()


def test_a_hundred_alarms_in_flight_are_summed_up_below_what_fits():
    lines = in_flight_view(100, height=24)
    assert len(lines) == 20
    assert "alarm/a000" in lines[0] and "alarm/a018" in lines[18]
    assert lines[-1].split() == ["…", "and", "81", "more"]


def test_what_fits_is_shown_whole():
    lines = in_flight_view(3, height=24)
    assert len(lines) == 3 and all("deleting" in line for line in lines)
