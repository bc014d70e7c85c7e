"""Read spec files with line marks, and merge an environment over the file it extends.

The merge is a deep overlay: maps merge key by key, lists replace, and `null` removes a
key (or a whole resource). Every value keeps the file and line it came from, so that a
problem found after merging still points at the line the user wrote.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from envctl.spec.errors import Problem, SpecError

Mark = tuple[str, int]          # (file as shown to the user, 1-based line)
Path_ = tuple[Any, ...]         # ("queues", "work-units", "visibility_timeout_s")


@dataclass
class Document:
    """The merged data of one environment and where each of its values was written."""

    name: str
    file: str
    data: dict[str, Any]
    marks: dict[Path_, Mark] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)   # the chain, environment first

    def mark(self, path: Path_) -> Mark:
        """The mark of the longest prefix of `path` that has one."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (self.file, 1))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# libyaml's composer is about 6x faster than PyYAML's pure-Python one and gives the same nodes
# and line marks. Its error messages differ, so a file it refuses is composed again by the
# pure-Python loader, whose messages (and lines) are the ones users see and tests pin. The two
# disagree only on rare malformed text, where libyaml is the more lenient; of that, a tab
# inside a line is the one a spec may well hold, so a file with a tab keeps PyYAML's verdict.
_FastLoader = getattr(yaml, "CSafeLoader", None)


def _compose(text: str, shown: str):
    if _FastLoader is not None and "\t" not in text:
        fast = _FastLoader(text)
        try:
            return fast.get_single_node()
        except yaml.YAMLError:
            pass
        finally:
            fast.dispose()
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        problem = (e.problem or "invalid YAML").strip()
        if e.context and e.context_mark and e.context_mark.line + 1 != line:
            # "found unexpected end of stream" is found far from its cause: say where that began.
            problem += f" ({e.context.strip()} at line {e.context_mark.line + 1})"
        raise SpecError([Problem(shown, line, "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as e:
        raise SpecError([Problem(shown, 1, "", f"invalid YAML: {e}")]) from None
    finally:
        loader.dispose()


def _to_python(node, shown: str, path: Path_, marks: dict, problems: list[Problem], scalar):
    """Convert a composed YAML node into plain Python, recording a mark for every path.

    Duplicate keys are refused here (PyYAML silently keeps the last one). `scalar` turns a
    scalar node into its Python value.
    """
    marks[path] = (shown, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(shown, key_node.start_mark.line + 1, _dotted(path),
                                        "YAML merge keys (<<) are not supported; use extends:"))
                continue
            key = scalar(key_node)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)
            if key in out:
                problems.append(Problem(shown, key_node.start_mark.line + 1, _dotted(path + (key,)),
                                        "duplicate key (already set above)"))
            out[key] = _to_python(value_node, shown, path + (key,), marks, problems, scalar)
            marks[path + (key,)] = (shown, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, shown, path + (i,), marks, problems, scalar) for i, item in enumerate(node.value)]
    return scalar(node)


def _scalar_constructor():
    """What turns one file's scalar nodes into Python values: PyYAML's safe constructor, made
    once per file (making one per scalar cost more than the rest of the conversion)."""
    constructor = yaml.constructor.SafeConstructor()
    return lambda node: constructor.construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_file(path: Path) -> tuple[dict[str, Any], dict[Path_, Mark]]:
    """(data, marks) of one spec file. The result may be shared with other calls that read the
    same text (see _parse): read it, never change it."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(shown, 0, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError([Problem(shown, 0, "", f"cannot read: {e}")]) from None
    return _parse(text, shown)


# `validate` reads every file once to find which ones are extended, then again for each
# environment, and a base file again for every environment that extends it. Parsing is the
# costly part, so the last few files' results are kept, keyed by their text and name
# (a changed file is parsed again). Errors are not kept: a broken file raises every time.
@functools.lru_cache(maxsize=16)
def _parse(text: str, shown: str) -> tuple[dict[str, Any], dict[Path_, Mark]]:
    node = _compose(text, shown)
    if node is None:
        raise SpecError([Problem(shown, 1, "", "the file is empty; a spec is a YAML mapping")])
    marks: dict[Path_, Mark] = {}
    problems: list[Problem] = []
    data = _to_python(node, shown, (), marks, problems, _scalar_constructor())
    if problems:
        raise SpecError(problems)
    if not isinstance(data, dict):
        raise SpecError([Problem(shown, 1, "", "a spec must be a YAML mapping of sections")])
    return data, marks


def merge(base: Any, over: Any, base_marks: dict, over_marks: dict, path: Path_ = ()) -> Any:
    """Deep overlay of `over` onto `base`; marks of overridden paths come from `over`."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            sub = path + (key,)
            if value is None:
                out.pop(key, None)
                _drop_marks(base_marks, sub)
            elif key in out:
                out[key] = merge(out[key], value, base_marks, over_marks, sub)
            else:
                out[key] = value
                _copy_marks(over_marks, base_marks, sub)
        if path in over_marks:
            base_marks[path] = over_marks[path]
        return out
    _drop_marks(base_marks, path)
    _copy_marks(over_marks, base_marks, path)
    return over


def _drop_marks(marks: dict, prefix: Path_) -> None:
    for p in [p for p in marks if p[: len(prefix)] == prefix]:
        del marks[p]


def _copy_marks(src: dict, dst: dict, prefix: Path_) -> None:
    for p, m in src.items():
        if p[: len(prefix)] == prefix:
            dst[p] = m


def load_environment(path: Path) -> Document:
    """Load an environment file, following `extends:` to the root, and merge the chain."""
    name = path.stem
    chain: list[tuple[Path, dict, dict]] = []
    seen: list[Path] = []
    current = path
    while True:
        resolved = current.resolve()
        if resolved in seen:
            cycle = " -> ".join(display_path(p) for p in seen + [resolved])
            last_file, _, last_marks = chain[-1]
            line = last_marks.get(("extends",), ("", 1))[1]
            raise SpecError([Problem(display_path(last_file), line, "extends", f"extends cycle: {cycle}")])
        seen.append(resolved)
        data, marks = read_file(current)
        chain.append((current, data, marks))
        parent = data.get("extends")
        if parent is None:
            break
        shown = display_path(current)
        line = marks.get(("extends",), (shown, 1))[1]
        if not isinstance(parent, str) or not parent:
            raise SpecError([Problem(shown, line, "extends", "must be the path of another spec file")])
        target = (current.parent / parent)
        if not target.is_file():
            raise SpecError([Problem(shown, line, "extends", f"file {parent!r} not found next to {current.name}")])
        current = target

    # Merge from the root down so that the environment file has the last word.
    _, data, marks = chain[-1]
    data = dict(data)
    marks = dict(marks)
    for _, over, over_marks in reversed(chain[:-1]):
        data = merge(data, over, marks, over_marks)
    data.pop("extends", None)
    _drop_marks(marks, ("extends",))
    marks[()] = (display_path(path), 1)
    return Document(name=name, file=display_path(path), data=data, marks=marks,
                    files=[display_path(p) for p, _, _ in chain])
