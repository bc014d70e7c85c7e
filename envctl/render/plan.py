"""Plan → text a person reads (grouped by action, aligned, coloured) or JSON for machines."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from envctl.plan.changes import Action, Plan, ResourceChange
from envctl.render.values import show

STYLE = {Action.CREATE: ("+", "green", "create"), Action.UPDATE: ("~", "yellow", "update"),
         Action.REPLACE: ("±", "magenta", "replace"), Action.DELETE: ("-", "red", "delete"),
         Action.ORPHAN: ("?", "cyan", "not in spec")}
ORDER = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ORPHAN)


def render_plan(console: Console, plan: Plan, *, verbose: bool = False, verb: str = "create") -> None:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    shown = 0
    for action in ORDER:
        for change in (c for c in plan if c.action == action):
            shown += 1
            _add_change(table, change, verbose)
    if shown:
        console.print(table)
        console.print()
    console.print(summary(plan, verb))
    for change in plan.blocked:
        console.print(f"[bold red]blocked:[/] {change.address}: {change.blocked}")


def _add_change(table: Table, change: ResourceChange, verbose: bool) -> None:
    sign, color, word = STYLE[change.action]
    note = change.physical_name or ""
    if change.action == Action.REPLACE and change.replace_because:
        note = f"{note}  ({', '.join(change.replace_because)} forces replacement)"
    if change.action == Action.ORPHAN:
        note = f"{note}  (create --prune deletes it)"
    if change.blocked:
        word = f"{word} [blocked]"
    table.add_row(Text(sign, style=f"bold {color}"), Text(str(change.address), style=color), Text(word, style=color),
                  Text(note, style="dim"))
    if change.action == Action.CREATE and not verbose:
        return
    for attr in change.changes:
        before = "" if change.action == Action.CREATE else f"{show(attr.before)} → "
        forces = "  [forces replacement]" if attr.forces_replace and change.action == Action.REPLACE else ""
        table.add_row("", Text(f"  {attr.path}", style="dim"), "", Text(f"{before}{show(attr.after)}{forces}"))


def summary(plan: Plan, verb: str = "create") -> str:
    counts = plan.counts()
    if plan.is_empty:
        extra = f"; {counts[Action.ORPHAN]} not in the spec" if counts[Action.ORPHAN] else ""
        return f"[green]No changes.[/] {plan.project}/{plan.environment} matches the spec " \
               f"({counts[Action.NOOP]} resources{extra})."
    parts = [f"{counts[Action.CREATE]} to create", f"{counts[Action.UPDATE]} to update",
             f"{counts[Action.REPLACE]} to replace", f"{counts[Action.DELETE]} to delete"]
    tail = f"; {counts[Action.NOOP]} unchanged"
    if counts[Action.ORPHAN]:
        tail += f"; {counts[Action.ORPHAN]} not in the spec (kept)"
    return f"[bold]Plan:[/] {', '.join(parts)}{tail}."
