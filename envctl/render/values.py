"""How attribute values read in a plan: short, one line, unknowns spelled out."""
from __future__ import annotations

import json
from typing import Any

from envctl.plan.changes import jsonable


def show(value: Any, width: int = 60) -> str:
    plain = jsonable(value)
    text = plain if isinstance(plain, str) and plain == "(known after create)" else \
        json.dumps(plain, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"
