"""Load and validate one environment: YAML → merged document → pydantic → cross-section checks.

Every problem is collected and reported as `file:line: key.path: what is wrong`; nothing
here talks to AWS or imports boto3.
"""
from __future__ import annotations

import difflib
import ipaddress
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from envctl.spec import names, network, refs
from envctl.spec.errors import Problem, SpecError
from envctl.spec.loader import Document, _dotted, display_path, load_environment, read_file
from envctl.spec.models import EnvironmentSpec, IngressRule

RESERVED_LAMBDA_ENV = {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
                       "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                       "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                       "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                       "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}


@dataclass(frozen=True)
class Spec:
    """A validated environment: its name, the model, and where each value was written."""

    name: str
    model: EnvironmentSpec
    document: Document

    @property
    def file(self) -> str:
        return self.document.file

    def source_dir(self, path: tuple) -> Path:
        """The folder of the file that wrote `path` (function sources are relative to it)."""
        return Path(self.document.mark(path)[0]).parent


def environments(specs_dir: Path) -> list[str]:
    """Every environment in a folder: each *.yaml that no other file extends.

    Files that extend each other in a cycle are all "extended"; the first of each cycle is
    listed anyway, so that validating the folder reports the cycle instead of nothing.
    """
    files = sorted(specs_dir.glob("*.yaml")) + sorted(specs_dir.glob("*.yml"))
    parents: dict[Path, Path] = {}
    for f in files:
        try:
            data, _ = read_file(f)
        except SpecError:
            continue
        parent = data.get("extends")
        if isinstance(parent, str):
            parents[f.resolve()] = (f.parent / parent).resolve()
    extended = set(parents.values())

    def chain(f: Path) -> list[Path]:
        seen = [f]
        while seen[-1] in parents and parents[seen[-1]] not in seen:
            seen.append(parents[seen[-1]])
        return seen

    listed = [f.resolve() for f in files if f.resolve() not in extended]
    reached = {p for f in listed for p in chain(f)}
    for f in files:
        seen = chain(f.resolve())
        if seen[0] not in reached and parents.get(seen[-1]) == seen[0]:   # f starts a cycle nobody reaches
            listed.append(seen[0])
            reached.update(seen)
    return [f.stem for f in files if f.resolve() in listed]


def spec_path(specs_dir: Path, env: str) -> Path:
    for suffix in (".yaml", ".yml"):
        p = specs_dir / f"{env}{suffix}"
        if p.is_file():
            return p
    known = environments(specs_dir) if specs_dir.is_dir() else []
    hint = _did_you_mean(env, known) or (f"; environments here: {', '.join(known)}" if known else "")
    where = display_path(specs_dir / f"{env}.yaml")
    raise SpecError([Problem(where, 0, "", f"no spec for environment {env!r}{hint}")])


def load(specs_dir: Path, env: str, name: str | None = None) -> Spec:
    """Load, merge and validate the spec of `env`; raise SpecError listing every problem.

    `name` is the environment's name when it differs from the spec file's (issue 8's --from).
    """
    document = load_environment(spec_path(specs_dir, env))
    try:
        model = EnvironmentSpec.model_validate(document.data)
    except ValidationError as e:
        raise SpecError(_problems(document, e.errors())) from None
    spec = Spec(name=name or document.name, model=model, document=document)
    problems = list(_cross_checks(spec))
    if problems:
        raise SpecError(problems)
    return spec


# ---------------------------------------------------------------- pydantic → Problem

def _problems(doc: Document, errors: list[dict]) -> list[Problem]:
    problems = [_problem(doc, err) for err in errors]
    # "form: unknown key; did you mean 'from'?" already says it: drop "from: required key is missing".
    suggested = {_sibling(p.path, p.message.split("'")[1]) for p in problems
                 if p.message.startswith("unknown key; did you mean")}
    return [p for p in problems if not (p.message == "required key is missing" and p.path in suggested)]


def _sibling(path: str, name: str) -> str:
    parent = path.rpartition(".")[0]
    return f"{parent}.{name}" if parent else name


def _problem(doc: Document, err: dict) -> Problem:
    kind = err["type"]
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    loc = _data_path(doc.data, tuple(err["loc"]))
    file, line = doc.mark(loc)
    if loc and loc[-1] == "[key]":
        # A mapping key (a resource's name, a tag key) was refused: point at the key itself.
        loc = loc[:-1]
        file, line = doc.mark(loc)
        bad = loc[-1] if loc else "?"
        if kind == "string_pattern_mismatch" and "a-z0-9" in str(err.get("ctx", {}).get("pattern", "")):
            return Problem(file, line, _dotted(loc), f"invalid name {bad!r}: use lowercase letters, digits and "
                                                     "dashes, starting and ending with a letter or digit")
        if kind == "string_too_long":
            return Problem(file, line, _dotted(loc), f"the name {bad!r} is {len(str(bad))} characters, "
                                                     f"over the limit of {err['ctx']['max_length']}")
        if kind == "value_error":
            return Problem(file, line, _dotted(loc), msg)
        return Problem(file, line, _dotted(loc), f"invalid key {bad!r}: {_sentence(msg)}")
    if kind == "extra_forbidden":
        siblings = _fields_at(loc[:-1])
        hint = _did_you_mean(str(loc[-1]), siblings)
        return Problem(file, line, _dotted(loc), f"unknown key{hint}" if hint else
                       f"unknown key; allowed here: {', '.join(siblings)}")
    if kind == "missing":
        return Problem(file, line, _dotted(loc), "required key is missing")
    if kind == "string_pattern_mismatch" and "a-z0-9" in str(err.get("ctx", {}).get("pattern", "")):
        return Problem(file, line, _dotted(loc), f"{err['input']!r} is not a valid name: use lowercase "
                                                 "letters, digits and dashes, starting and ending with one")
    if kind == "string_pattern_mismatch":
        field = _dotted(loc[-1:])
        return Problem(file, line, _dotted(loc), f"{err['input']!r} is not a valid {field}")
    if kind == "literal_error":
        return Problem(file, line, _dotted(loc), f"{err['input']!r} is not allowed; {_sentence(msg)}")
    return Problem(file, line, _dotted(loc), _sentence(msg) if msg else kind)


def _data_path(data: Any, loc: tuple) -> tuple:
    """pydantic's error location without the type tags it adds for unions ("int", "function-after[…]").

    Each part is kept if it names a key or index of the user's data; a part the data does
    not have is kept only at the end (a missing or unknown key), or when it is a key marker.
    """
    path: list = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif part == "[key]" or i == len(loc) - 1:
            node = None
        else:
            continue                                  # a type tag of a union: not the user's key
        path.append(part)
    return tuple(path)


def _sentence(msg: str) -> str:
    """pydantic's "Input should be …" reads better mid-line as "input should be …"; keep "SSH …"."""
    pydantic_words = ("Input ", "Field ", "String ", "List ", "Dictionary ", "Value ", "Object ", "Tuple ")
    return msg[0].lower() + msg[1:] if msg.startswith(pydantic_words) else msg


def _fields_at(loc: tuple) -> list[str]:
    """The keys a mapping at `loc` may hold, found by walking the models' annotations."""
    model: Any = EnvironmentSpec
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part) or next(
                (f for f in model.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            model = field.annotation
        else:
            model = _container_item(model)
        model = _unwrap(model)
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _unwrap(tp):
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        elif origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        else:
            return tp


def _container_item(tp):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return args[1]
    if origin in (list, tuple):
        return args[0]
    return None


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# ---------------------------------------------------------------- cross-section checks

def _cross_checks(spec: Spec):
    m = spec.model
    doc = spec.document

    def problem(path: tuple, message: str) -> Problem:
        file, line = doc.mark(path)
        return Problem(file, line, _dotted(path), message)

    def ref(path: tuple, section: str, name: str | None, what: str):
        """A name reference into another section; None when it resolves."""
        if name is None:
            return None
        pool = getattr(m, section)
        if name in pool:
            return None
        hint = _did_you_mean(name, pool) or (f"; defined: {', '.join(pool)}" if pool else f"; {section} is empty")
        return problem(path, f"no {what} named {name!r}{hint}")

    # network
    tiers = m.network.tiers if m.network else {}
    if m.network:
        try:
            network.carve(m.network.cidr, m.network.zones, m.network.tiers)
        except ValueError as e:
            yield problem(("network", "tiers"), str(e))
        if m.network.nat != "none" and not any(t.internet for t in tiers.values()):
            yield problem(("network", "nat"), f"nat: {m.network.nat} needs a tier with internet: true "
                                              "for the NAT gateways")

    def tier(path: tuple, name: str):
        if m.network is None:
            return problem(path, "a tier needs a network: section")
        if name not in tiers:
            return problem(path, f"no tier named {name!r}{_did_you_mean(name, tiers) or '; tiers: ' + ', '.join(tiers)}")
        return None

    def groups(path: tuple, group_names):
        for i, g in enumerate(group_names):
            p = ref(path + (i,), "security_groups", g, "security group")
            if p:
                yield p

    # security groups: they live in the VPC; sources/targets are CIDRs, group names or self; no cycles
    if m.security_groups and m.network is None:
        yield problem(("security_groups",), "security groups live in the VPC: add a network: section")
    edges: dict[str, set[str]] = {}
    for gname, group in m.security_groups.items():
        edges[gname] = set()
        for direction in ("ingress", "egress"):
            for i, rule in enumerate(getattr(group, direction) or []):
                other = rule.source if isinstance(rule, IngressRule) else rule.target
                key = "from" if isinstance(rule, IngressRule) else "to"
                path = ("security_groups", gname, direction, i, key)
                if other == "self" or _is_cidr(other):
                    continue
                if any(c.isdigit() for c in other.split("/")[0].split(".")[0][:1]) and "/" in other:
                    yield problem(path, f"{other!r} is not a valid CIDR")
                    continue
                p = ref(path, "security_groups", other, "security group")
                if p:
                    yield p
                else:
                    edges[gname].add(other)
    cycle = _find_cycle(edges)
    if cycle:
        yield problem(("security_groups", cycle[0]),
                      "security groups reference each other in a cycle (" + " -> ".join(cycle) +
                      "); put the shared rule on one side only")

    # roles
    for rname, role in m.roles.items():
        for i, grant in enumerate(role.allow):
            kind, target = grant.target
            section = {"queue": "queues", "table": "tables", "bucket": "buckets", "log_group": "log_groups",
                       "topic": "topics", "function": "functions"}[kind]
            p = ref(("roles", rname, "allow", i, kind), section, target, kind.replace("_", " "))
            if p:
                yield p

    def role_for(path: tuple, role_name: str | None, principal: str):
        if role_name is None:
            return None
        p = ref(path, "roles", role_name, "role")
        if p:
            return p
        if m.roles[role_name].assumed_by != principal:
            return problem(path, f"role {role_name!r} is assumed_by {m.roles[role_name].assumed_by}, "
                                 f"but this needs a role assumed_by {principal}")
        return None

    for section in ("instances", "applications"):
        for name, item in getattr(m, section).items():
            base = (section, name)
            for p in (tier(base + ("tier",), item.tier), role_for(base + ("role",), item.role, "ec2")):
                if p:
                    yield p
            yield from groups(base + ("security_groups",), item.security_groups)

    for name, db in m.databases.items():
        p = tier(("databases", name, "tier"), db.tier)
        if p:
            yield p
        elif m.network and m.network.zones < 2:
            yield problem(("network", "zones"), f"database {name!r} needs a subnet group in at least 2 zones; "
                                                "set zones: 2 or more")
        yield from groups(("databases", name, "security_groups"), db.security_groups)

    for qname, queue in m.queues.items():
        if queue.dead_letter is not None and f"{qname}-dlq" in m.queues:
            yield problem(("queues", f"{qname}-dlq"), f"the name is taken by queue {qname!r}'s dead-letter queue; "
                                                      "rename one of them")
        if queue.dead_letter is not None:
            dlq = names.physical_name(m.project, spec.name, f"{qname}-dlq") + (".fifo" if queue.fifo else "")
            msg = names.check("queue", dlq)
            if msg:
                yield problem(("queues", qname, "dead_letter"), msg)

    for tname, topic in m.topics.items():
        for i, sub in enumerate(topic.subscriptions):
            kind, target = sub.protocol_endpoint
            if kind in ("queue", "function"):
                p = ref(("topics", tname, "subscriptions", i, kind), kind + "s", target, kind)
                if p:
                    yield p

    for bname, bucket in m.buckets.items():
        for i, n in enumerate(bucket.notify):
            for kind in ("function", "queue"):
                p = ref(("buckets", bname, "notify", i, kind), kind + "s", getattr(n, kind), kind)
                if p:
                    yield p
            if n.queue and m.queues.get(n.queue) and m.queues[n.queue].fifo:
                yield problem(("buckets", bname, "notify", i, "queue"), "S3 cannot notify a FIFO queue")

    for fname, fn in m.functions.items():
        base = ("functions", fname)
        p = role_for(base + ("role",), fn.role, "lambda")
        if p:
            yield p
        folder = spec.source_dir(base + ("source",)) / fn.source
        if not folder.is_dir():
            yield problem(base + ("source",), f"source folder {display_path(folder)} does not exist")
        for key, value in fn.environment.items():
            path = base + ("environment", key)
            if key in RESERVED_LAMBDA_ENV:
                yield problem(path, f"{key} is reserved by Lambda")
            yield from _spec_refs(spec, path, value, problem)

    for aname, alarm in m.alarms.items():
        base = ("alarms", aname)
        for i, topic in enumerate(alarm.notify):
            p = ref(base + ("notify", i), "topics", topic, "topic")
            if p:
                yield p
        metric = alarm.metric
        if metric.log_filter:
            group_name, _, filter_name = metric.log_filter.partition(".")
            p = ref(base + ("metric", "log_filter"), "log_groups", group_name, "log group")
            if p:
                yield p
            elif filter_name not in m.log_groups[group_name].metric_filters:
                filters = m.log_groups[group_name].metric_filters
                yield problem(base + ("metric", "log_filter"),
                              f"log group {group_name!r} has no metric filter {filter_name!r}"
                              f"{_did_you_mean(filter_name, filters)}")
        for key, value in metric.resource_keys.items():
            p = ref(base + ("metric", key), key + "s" if key != "database" else "databases", value,
                    key.replace("_", " "))
            if p:
                yield p

    for sname, schedule in m.schedules.items():
        path = ("schedules", sname, "send", "queue")
        p = ref(path, "queues", schedule.send.queue, "queue")
        if p:
            yield p
        elif m.queues[schedule.send.queue].fifo:
            yield problem(path, "a schedule sends to standard queues only (FIFO needs a message group)")

    # physical names each service accepts
    for section, kind in (("queues", "queue"), ("topics", "topic"), ("tables", "table"), ("buckets", "bucket"),
                          ("functions", "function"), ("log_groups", "log_group"), ("databases", "db_instance"),
                          ("roles", "role"), ("applications", "autoscaling_group"), ("alarms", "alarm"),
                          ("schedules", "schedule"), ("security_groups", "security_group")):
        for name, item in getattr(m, section).items():
            physical = names.physical_name(m.project, spec.name, name)
            if section == "buckets" and item.name:
                physical = item.name
            if section == "queues" and item.fifo:
                physical += ".fifo"
            msg = names.check(kind, physical)
            if msg:
                yield problem((section, name), msg + (" (set name: to choose another)" if section == "buckets" else
                                                      "; use a shorter project, environment or resource name"))


def _spec_refs(spec: Spec, path: tuple, value: str, problem):
    for inner in refs.find(value):
        try:
            r = refs.parse(inner)
        except ValueError as e:
            yield problem(path, str(e))
            continue
        pool = getattr(spec.model, r.section)
        if r.name not in pool:
            hint = _did_you_mean(r.name, pool)
            yield problem(path, f"${{{inner}}}: no {r.section[:-1].replace('_', ' ')} named {r.name!r}{hint}")


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
        return True
    except ValueError:
        return False


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None
