"""envctl compare A B: how two environments differ, in their specs or (--live) in AWS.

Environments are meant to be copies of each other but for their parameters; compare shows
exactly where they are not. Exit codes as `diff`: 0 identical, 2 differences, 1 error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from envctl.cli import cli
from envctl.cli.app import Abort, App
from envctl.cli.workflow import complete_env

CHANGED, ADDED, REMOVED = "changed", "added", "removed"     # A → B: added = only in B, removed = only in A


@dataclass(frozen=True)
class Difference:
    path: str
    change: str
    a: Any = None
    b: Any = None

    def to_json(self) -> dict:
        return {"path": self.path, "change": self.change, "a": self.a, "b": self.b}


@cli.command()
@click.argument("a", shell_complete=complete_env)
@click.argument("b", shell_complete=complete_env)
@click.option("--live", is_flag=True, envvar="ENVCTL_LIVE",
              help="Compare the live resources (read-only) instead of the specs.")
@click.option("--from-a", "source_a", metavar="SPEC", envvar="ENVCTL_FROM_A", shell_complete=complete_env,
              help="Build A from specs/SPEC.yaml (default: specs/A.yaml).")
@click.option("--from-b", "source_b", metavar="SPEC", envvar="ENVCTL_FROM_B", shell_complete=complete_env,
              help="Build B from specs/SPEC.yaml (default: specs/B.yaml).")
@click.option("--json", "as_json", is_flag=True, envvar="ENVCTL_JSON", help="As JSON (version 1).")
@click.pass_obj
def compare(app: App, a: str, b: str, live: bool, source_a: str | None, source_b: str | None,
            as_json: bool) -> None:
    """Show how environments A and B differ: their resolved specs (every default filled in),
    or with --live their resources in AWS, by address.

    Live values are compared with ids, ARNs, URLs and names of the environment's own
    resources replaced by their addresses (`<vpc/main.id>`), and the environment's name and
    account taken out, so only real differences remain. --live reads both environments
    with the same credentials. Exit 0 identical, 2 differences, 1 error.

    JSON: {"version": 1, "live": bool, "a": {"project", "environment"}, "b": {…},
    "differences": [{"path", "change": "changed" | "added" | "removed", "a", "b"}]};
    added means only in B, removed only in A.
    """
    from envctl.cli.offline import resolved

    data_a, _ = resolved(app, a, defaults=True, source=source_a)
    data_b, _ = resolved(app, b, defaults=True, source=source_b)
    found = _live_differences(app, (a, source_a), (b, source_b)) if live else differences(data_a, data_b)
    names = (f"{data_a['project']}/{a}", f"{data_b['project']}/{b}")
    if as_json:
        click.echo(json.dumps({"version": 1, "live": live,
                               "a": {"project": data_a["project"], "environment": a},
                               "b": {"project": data_b["project"], "environment": b},
                               "differences": [d.to_json() for d in found]}, indent=2, ensure_ascii=False))
    else:
        _show(app, names, live, found)
    if found:
        raise Abort(2)


def differences(a: Any, b: Any, path: str = "") -> list[Difference]:
    """Every place two JSON-like values differ, as paths (`network.cidr`, `topics.alarms.subscriptions[2]`).

    Maps are compared key by key; lists of the same length item by item; lists of different
    lengths by membership (what one holds and the other does not).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(Difference(sub, REMOVED, a=a[key]))
            elif key not in a:
                out.append(Difference(sub, ADDED, b=b[key]))
            else:
                out.extend(differences(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
        return ([Difference(f"{path}[{i}]", REMOVED, a=x) for i, x in enumerate(a) if x not in b] +
                [Difference(f"{path}[{i}]", ADDED, b=y) for i, y in enumerate(b) if y not in a])
    return [] if a == b else [Difference(path, CHANGED, a=a, b=b)]


# ------------------------------------------------------------------ live

def _live_differences(app: App, *environments: tuple[str, str | None]) -> list[Difference]:
    from envctl.cli.workflow import load_spec, observe

    views = []
    for env, source in environments:
        spec = load_spec(app, env, source)
        session, _, observed = observe(app, spec)
        views.append(normalised(observed, spec.model.project, spec.name, session.account_id()))
    return differences(*views)


def normalised(observed: dict, project: str, environment: str, account: str) -> dict[str, dict]:
    """address → {props…, "tags": {…}} with what names this environment taken out: every id,
    ARN, URL and name of its own resources becomes `<address.attr>`, then the environment's
    name as a word (`acme-qa-app`, `/envctl/acme/qa/` → `<env>`) and the account id
    (`<account>`). Fields the kind compares without order are sorted after that."""
    import re

    from envctl.plan.changes import jsonable
    from envctl.provisioners import by_kind

    labels: dict[str, str] = {}
    for address, obs in sorted(observed.items()):
        for attr, value in sorted(by_kind(address.kind).outputs(obs).items()):
            if value and len(value) > 3:
                labels.setdefault(value, f"<{address}.{attr}>")
        labels.setdefault(obs.id, f"<{address}.id>")
    by_length = sorted(labels, key=len, reverse=True)     # an ARN before the name inside it
    env_word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(environment)}(?![A-Za-z0-9])")

    def text(value: str) -> str:
        if value in labels:
            return labels[value]
        for known in by_length:
            if known in value:
                value = value.replace(known, labels[known])
        value = env_word.sub("<env>", value)
        return value.replace(account, "<account>") if account else value

    def clean(value):
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {text(str(k)): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    out = {}
    for address, obs in sorted(observed.items()):
        tags = {k: v for k, v in sorted(obs.tags.items()) if not k.startswith(("envctl:", "aws:"))}
        view = clean({**jsonable(obs.props), "tags": tags})
        for name in by_kind(address.kind).set_fields:
            if isinstance(view.get(name), list):
                view[name] = sorted(view[name], key=lambda v: json.dumps(v, sort_keys=True))
        out[str(address)] = view
    return out


# ------------------------------------------------------------------ output

def _show(app: App, names: tuple[str, str], live: bool, found: list[Difference]) -> None:
    what = "live resources" if live else "specs"
    if not found:
        app.console.print(f"The {what} of {names[0]} and {names[1]} are the same.", markup=False, highlight=False)
        return
    app.console.print(f"{names[0]} → {names[1]}: {len(found)} difference(s) in their {what}", markup=False,
                      highlight=False, style="bold")
    for d in found:
        if d.change == CHANGED:
            line = f"  ~ {d.path}: {_value(d.a)} → {_value(d.b)}"
        elif d.change == ADDED:
            line = f"  + {d.path}{_shown(d.b, live, d.path)} (only in {names[1]})"
        else:
            line = f"  - {d.path}{_shown(d.a, live, d.path)} (only in {names[0]})"
        app.console.print(line, markup=False, highlight=False)


def _shown(value: Any, live: bool, path: str) -> str:
    """`: value` of what only one side has; nothing for a whole live resource (path = its address)."""
    return "" if live and "." not in path else f": {_value(value)}"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(_set_only(value), ensure_ascii=False,
                                                           separators=(", ", ": "))


def _set_only(value: Any) -> Any:
    """A value to show, without the keys that are not set (null)."""
    if isinstance(value, dict):
        return {k: _set_only(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_set_only(v) for v in value]
    return value
