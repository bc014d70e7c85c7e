"""Plan → text a person reads (grouped by action, aligned, coloured) or JSON for machines.

Rows are rendered as aligned lines of Text rather than a rich Table, so that no line
carries trailing padding and nothing is wrapped: a plan pasted from a CI log reads the same.

    acme/qa · eu-north-1 · account 123456789012

    + queue/work-units     create       acme-qa-work-units
    ~ security_group/app   update       acme-qa-app
        ingress            - {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "10.0.0.0/8"}
    ± subnet/data-a        replace      acme-qa-data-a  (cidr_block forces replacement)
        cidr_block         "10.30.48.0/24" → "10.30.48.0/25"
    ? security_group/db    not in spec  sg-0123  (create --prune deletes it)

    Plan: 1 to create, 1 to update, 1 to replace, 0 to delete; 12 unchanged; 1 not in the spec (kept).
"""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from envctl.plan.changes import Action, Plan, ResourceChange
from envctl.render.values import attribute_lines

STYLE = {Action.CREATE: ("+", "green", "create"), Action.UPDATE: ("~", "yellow", "update"),
         Action.REPLACE: ("±", "magenta", "replace"), Action.DELETE: ("-", "red", "delete"),
         Action.ORPHAN: ("?", "cyan", "not in spec")}
ORDER = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ORPHAN)
INDENT = "    "         # attribute lines, under the address column


def render_plan(console: Console, plan: Plan, *, verbose: bool = False, verb: str = "create",
                header: str | None = None) -> None:
    """Print `header` (where the plan was made), the changes grouped by action, and the summary.

    Creations list their attributes only when `verbose`; updates and replacements always
    show each attribute that differs.
    """
    if header:
        console.print(Text(header, style="bold"))
        console.print()
    shown = [c for action in ORDER for c in plan if c.action == action]
    if shown:
        for line in plan_lines(shown, verbose=verbose):
            console.print(line)
        console.print()
    console.print(summary(plan, verb))
    reasons: dict[str, list[str]] = {}
    for change in plan.blocked:
        reasons.setdefault(change.blocked, []).append(str(change.address))
    for reason, addresses in reasons.items():
        which = addresses[0] if len(addresses) == 1 else f"{len(addresses)} resources"
        console.print(Text.assemble(("blocked: ", "bold red"), f"{which}: {reason}"))


def plan_lines(changes: list[ResourceChange], *, verbose: bool = False) -> list[Text]:
    """One line per resource, then its attribute lines; columns aligned over all of them."""
    details = {c.address: _details(c, verbose) for c in changes}
    # The address column starts after "± "; an indented attribute path may use those 2 too.
    width = max([len(str(c.address)) for c in changes]
                + [len(path) - 2 for rows in details.values() for path, _ in rows])
    words = {c.address: _word(c) for c in changes}
    word_width = max(len(w) for w in words.values())
    lines = []
    for change in changes:
        sign, color, _ = STYLE[change.action]
        word, note = words[change.address], _note(change)
        line = Text.assemble((sign, f"bold {color}"), " ", (f"{str(change.address):<{width}}", color), "  ",
                             (f"{word:<{word_width}}" if note else word, color))
        if note:
            line.append(f"  {note}", style="dim")
        lines.append(line)
        for path, value in details[change.address]:
            lines.append(Text.assemble((f"{path:<{width + 2}}", "dim"), "  ", value))
    return lines


def summary(plan: Plan, verb: str = "create") -> str:
    counts = plan.counts()
    if plan.is_empty:
        extra = f"; {counts[Action.ORPHAN]} not in the spec" if counts[Action.ORPHAN] else ""
        return f"[green]No changes.[/] {plan.project}/{plan.environment} matches the spec " \
               f"({counts[Action.NOOP]} resources{extra})."
    if verb == "destroy":
        return f"[bold]Plan:[/] {counts[Action.DELETE]} to destroy."
    parts = [f"{counts[Action.CREATE]} to create", f"{counts[Action.UPDATE]} to update",
             f"{counts[Action.REPLACE]} to replace", f"{counts[Action.DELETE]} to delete"]
    tail = f"; {counts[Action.NOOP]} unchanged"
    if counts[Action.ORPHAN]:
        tail += f"; {counts[Action.ORPHAN]} not in the spec (kept)"
    return f"[bold]Plan:[/] {', '.join(parts)}{tail}."


# ------------------------------------------------------------------ helpers

def _word(change: ResourceChange) -> str:
    word = STYLE[change.action][2]
    return f"{word} [blocked]" if change.blocked else word


def _note(change: ResourceChange) -> str:
    """The physical name (an orphan's id), and why a replacement or an orphan."""
    note = change.physical_name or change.id or ""
    if change.action == Action.REPLACE and change.replace_because:
        note = f"{note}  ({', '.join(change.replace_because)} forces replacement)"
    if change.action == Action.ORPHAN:
        note = f"{note}  (create --prune deletes it)"
    return note.strip()


def _details(change: ResourceChange, verbose: bool) -> list[tuple[str, Text]]:
    """(indented path or blank, value text) rows under a resource line."""
    if change.action in (Action.DELETE, Action.ORPHAN) or (change.action == Action.CREATE and not verbose):
        return []
    rows = []
    for attr in change.changes:
        before = None if change.action == Action.CREATE else attr.before
        for i, value in enumerate(attribute_lines(before, attr.after, created=change.action == Action.CREATE)):
            rows.append((f"{INDENT}{attr.path}" if i == 0 else "", Text(value)))
    return rows
