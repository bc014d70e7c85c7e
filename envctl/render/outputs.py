"""Outputs → aligned lines: resource, output, value; values in full (they are copied)."""
from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text


def output_lines(resources: Mapping[str, Mapping[str, str]]) -> list[Text]:
    """A header and one line per output, the resource named on its first; empty values left out."""
    rows = [(address, key, value) for address, outs in resources.items()
            for key, value in sorted(outs.items()) if value not in ("", None)]
    width_address = max([len("resource")] + [len(a) for a, _, _ in rows])
    width_key = max([len("output")] + [len(k) for _, k, _ in rows])
    lines = [Text(f"{'resource':<{width_address}}  {'output':<{width_key}}  value", style="bold")]
    last = None
    for address, key, value in rows:
        shown = address if address != last else ""
        last = address
        lines.append(Text.assemble(f"{shown:<{width_address}}  ", (f"{key:<{width_key}}", "dim"), f"  {value}"))
    return lines
