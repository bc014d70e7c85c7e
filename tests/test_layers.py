"""The layering contract (STYLE.md), checked on the source with the ast module.

Layers, bottom to top: spec < model < aws < provisioners < expand < plan < engine < render < cli.
A module may import its own layer and those below, never above. boto3/botocore only in
aws/, engine/observe.py, provisioners/ and sandbox/ (and provisioners only inside
functions, so importing them stays cheap); rich/click only in render/ and cli/.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "envctl"
LAYERS = ["spec", "model", "aws", "provisioners", "expand", "plan", "engine", "render", "cli"]
BOTO_ALLOWED = ("aws", "engine/observe.py", "provisioners", "sandbox")
UI_ALLOWED = ("render", "cli")


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        yield rel, ast.parse(path.read_text(), filename=str(path))


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module


def _layer(rel: str) -> str | None:
    top = rel.split("/")[0].removesuffix(".py")
    return top if top in LAYERS else None


def _top_level(tree) -> set[int]:
    """Line numbers of imports executed at import time (module level, not inside functions)."""
    lines = set()
    for node in tree.body:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                break
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                lines.add(sub.lineno)
    return lines


@pytest.mark.parametrize("rel,tree", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_layering(rel, tree):
    mine = _layer(rel)
    top_level = _top_level(tree)
    for node, name in _imports(tree):
        root = name.split(".")[0]
        if root in ("boto3", "botocore"):
            assert rel.startswith(BOTO_ALLOWED), f"{rel}:{node.lineno} imports {name}"
            if rel.startswith("provisioners"):
                assert node.lineno not in top_level, f"{rel}:{node.lineno}: import boto3 inside functions only"
        if root in ("rich", "click"):
            assert rel.startswith(UI_ALLOWED), f"{rel}:{node.lineno} imports {name}"
        if root == "envctl" and mine and name.count(".") >= 1:
            theirs = name.split(".")[1]
            if theirs in LAYERS:
                assert LAYERS.index(theirs) <= LAYERS.index(mine), \
                    f"{rel}:{node.lineno}: layer {mine} imports {name} from the higher layer {theirs}"
