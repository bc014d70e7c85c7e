"""Lambda function (zip package), with its resource policy: who may invoke it (sub-resource).

The id is the function's name. The code is a deterministic zip of the spec's source folder
(envctl.model.package): expand records its hash, create and update rebuild the same bytes.
The function's log group is a log_group node of its own, made first so Lambda never makes
it untagged.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from envctl.aws import errors
from envctl.aws.waiters import GONE, wait_for
from envctl.model import package
from envctl.model.address import Address
from envctl.model.diff import AttrChange, diff_props
from envctl.model.graph import Node
from envctl.provisioners.base import Ctx, NotOurs, Observed, Props, Provisioner, Timeouts, Value, address_of, tag_changes

INVOKERS = {"s3": "s3.amazonaws.com", "sns": "sns.amazonaws.com"}   # invoke_from service → principal


class FunctionProps(Props):
    runtime: str
    handler: str
    role: Value                                   # the execution role's ARN
    code_sha256: str                              # base64 SHA-256 of the zip, as Lambda reports CodeSha256
    # The folder the zip is built from. AWS does not know it (code_sha256 stands for the code),
    # so read leaves it empty and diff ignores it.
    source: str = ""
    memory_size: int = 128
    timeout: int = 3
    environment: dict[str, Value] = {}
    # Who may invoke it: (service, source name), service s3 (a bucket) or sns (a topic). Each is
    # one statement of the function's resource policy, made with add_permission.
    invoke_from: tuple[tuple[str, str], ...] = ()


# Props field → UpdateFunctionConfiguration parameter.
_CONFIGURATION = {"runtime": "Runtime", "handler": "Handler", "role": "Role", "memory_size": "MemorySize",
                  "timeout": "Timeout", "environment": "Environment"}


class Function(Provisioner[FunctionProps]):
    kind = "function"
    services = ("lambda",)
    props = FunctionProps
    set_fields = frozenset({"invoke_from"})
    timeouts = Timeouts(create=300, update=300, delete=60)
    # Delete before its log group (a live function could recreate it untagged). The role and the
    # kinds environment values name are left out: AWS does not care about that order, and the
    # kind table must stay acyclic (role, topic and bucket list function).
    uses = frozenset({"log_group"})
    tag_scan = "lambda"

    def discover(self, ctx: Ctx) -> Iterable[Observed[FunctionProps]]:
        names = []
        for arn, tags in ctx.aws.tagged_arns(self.tag_scan):
            address = address_of(tags)
            if ":function:" in arn and ctx.is_ours(tags) and address is not None and address.kind == self.kind:
                names.append(arn.split(":function:", 1)[1].split(":")[0])
        yield from filter(None, ctx.map(lambda name: self.read(ctx, name), names))

    def read(self, ctx: Ctx, id: str) -> Observed[FunctionProps] | None:
        lam = ctx.client("lambda")
        try:        # side by side: the function and its policy
            found, statements = ctx.read_all([partial(lam.get_function, FunctionName=id),
                                              partial(_statements, lam, id)])
        except Exception as e:
            if errors.is_not_found(e):
                return None
            raise
        return self._read(lam, id, found, statements)

    def _read(self, lam: Any, id: str, found: dict, statements: list[dict] | None = None) -> Observed[FunctionProps]:
        """The function `id`, from its GetFunction answer (`found`) and policy (read here when not
        given; `_statements` answers [] for a policy not found)."""
        if statements is None:
            statements = _statements(lam, id)
        config = found["Configuration"]
        tags = found.get("Tags", {})
        props = FunctionProps(
            runtime=config.get("Runtime", ""), handler=config.get("Handler", ""), role=config["Role"],
            code_sha256=config["CodeSha256"], memory_size=config["MemorySize"], timeout=config["Timeout"],
            environment=(config.get("Environment") or {}).get("Variables", {}),
            invoke_from=tuple(sorted(_invoker(s) for s in statements)))
        return Observed(address=address_of(tags) or Address(self.kind, id), id=config["FunctionName"], props=props,
                        tags=tags, outputs={"name": config["FunctionName"], "arn": config["FunctionArn"]})

    def find(self, ctx: Ctx, node: Node) -> Observed[FunctionProps] | None:
        return self.read(ctx, node.physical_name)

    def diff(self, desired: FunctionProps, observed: Observed[FunctionProps]) -> list[AttrChange]:
        return diff_props(desired, observed.props, self.replace_on, self.set_fields, ignore=frozenset({"source"}))

    def create(self, ctx: Ctx, node: Node) -> str:
        lam = ctx.client("lambda")
        name = node.physical_name
        # Lambda has no client token, and a taken name is an error only after the upload (moto
        # even replaces the function): look first. (A new role not yet assumable fails here with
        # InvalidParameterValueException, which the engine retries; we do not loop.)
        existing = self.read(ctx, name)
        if existing is not None:
            return self._adopt(ctx, node, existing)
        p = node.props
        arn = lam.create_function(
            FunctionName=name, Runtime=p.runtime, Handler=p.handler, Role=p.role, PackageType="Zip",
            Code={"ZipFile": _package(p)}, MemorySize=p.memory_size, Timeout=p.timeout,
            Environment={"Variables": dict(p.environment)}, Tags=dict(node.tags), Publish=False)["FunctionArn"]
        for service, source in p.invoke_from:
            _add_permission(lam, arn, service, source)
        return name

    def update(self, ctx: Ctx, observed: Observed[FunctionProps], node: Node, changes: list[AttrChange]) -> None:
        lam = ctx.client("lambda")
        name = observed.id
        fields = {c.path for c in changes}
        # One update at a time: Lambda refuses a second while LastUpdateStatus is InProgress.
        if "code_sha256" in fields:
            lam.update_function_code(FunctionName=name, ZipFile=_package(node.props))
            self._wait_ready(lam, name, self.timeouts.update)
        configuration = {param: _request_value(field, getattr(node.props, field))
                         for field, param in _CONFIGURATION.items() if field in fields}
        if configuration:
            lam.update_function_configuration(FunctionName=name, **configuration)
            self._wait_ready(lam, name, self.timeouts.update)
        if "invoke_from" in fields:
            self._reconcile_permissions(lam, observed.outputs["arn"], node.props.invoke_from)

    def update_tags(self, ctx: Ctx, observed: Observed[FunctionProps], tags: Mapping[str, str]) -> None:
        lam = ctx.client("lambda")
        arn = observed.outputs["arn"]
        to_set, to_remove = tag_changes(observed.tags, tags)
        if to_set:
            lam.tag_resource(Resource=arn, Tags=to_set)
        if to_remove:
            lam.untag_resource(Resource=arn, TagKeys=to_remove)

    def delete(self, ctx: Ctx, observed: Observed[FunctionProps]) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=observed.id)
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def wait(self, ctx: Ctx, id: str, until: str) -> Observed[FunctionProps] | None:
        if until == "gone":
            return None                            # delete_function is synchronous
        # Polled with GetFunction, the read's own call: the answer that says Active is read on.
        # The policy is read side by side with the wait: only create and update change it, and
        # both did so before waiting. A create's read-back is then one call's time, not two.
        lam = ctx.client("lambda")
        found, statements = ctx.read_all([partial(self._wait_ready, lam, id, self.timeouts.create,
                                                  describe=lam.get_function),
                                          partial(_statements, lam, id)])
        return None if found is None else self._read(lam, id, found, statements)

    def outputs(self, observed: Observed[FunctionProps]) -> Mapping[str, str]:
        return observed.outputs

    # ------------------------------------------------------------------ helpers

    def _adopt(self, ctx: Ctx, node: Node, existing: Observed[FunctionProps]) -> str:
        """The name is taken: ours (same address) → bring it to the spec; anything else → NotOurs."""
        if not ctx.is_ours(existing.tags) or existing.address != node.address:
            raise NotOurs(node.address, f"Lambda function {node.physical_name}")
        changes = self.diff(node.props, existing)
        if changes:
            self.update(ctx, existing, node, changes)
        return existing.id

    def _wait_ready(self, lam: Any, name: str, timeout: float, describe: Any = None) -> dict | None:
        """Until State is Active and LastUpdateStatus Successful; None if the function is gone.

        Polls `describe` (GetFunctionConfiguration unless told; GetFunction answers the
        configuration under "Configuration") and returns its last answer."""
        describe = describe or lam.get_function_configuration

        def answer() -> dict | None:
            try:
                return describe(FunctionName=name)
            except Exception as e:
                if errors.is_not_found(e):
                    return None
                raise

        return wait_for(answer, lambda a: _status(a.get("Configuration", a)), pending={"Pending", "Updating"},
                        target={"Active", GONE}, timeout=timeout, describe=f"Lambda function {name}")

    def _reconcile_permissions(self, lam: Any, arn: str, desired: tuple[tuple[str, str], ...]) -> None:
        """Read the resource policy now; remove statements not wanted, add those missing."""
        current = {s.get("Sid", ""): _invoker(s) for s in _statements(lam, arn)}
        wanted = {_statement_id(service, source): (service, source) for service, source in desired}
        for sid, invoker in sorted(current.items()):
            if wanted.get(sid) != invoker:
                lam.remove_permission(FunctionName=arn, StatementId=sid)
        for sid, (service, source) in sorted(wanted.items()):
            if current.get(sid) != (service, source):
                _add_permission(lam, arn, service, source)


def _package(p: FunctionProps) -> bytes:
    """The zip of the source folder; refused if the folder changed since expand hashed it."""
    data = package.zip_folder(Path(p.source))
    actual = package.code_sha256(data)
    if actual != p.code_sha256:
        raise RuntimeError(f"the function source {p.source} changed since the plan was made (code hash "
                           f"{actual}, the plan's {p.code_sha256}); run diff again")
    return data


def _request_value(field: str, value: Any) -> Any:
    return {"Variables": dict(value)} if field == "environment" else value


def _statement_id(service: str, source: str) -> str:
    return f"envctl-{service}-{re.sub(r'[^A-Za-z0-9_-]', '_', source)}"[:100]


def _add_permission(lam: Any, function_arn: str, service: str, source: str) -> None:
    _, partition, _, region, account = function_arn.split(":")[:5]
    request = {"FunctionName": function_arn, "StatementId": _statement_id(service, source),
               "Action": "lambda:InvokeFunction", "Principal": INVOKERS[service]}
    if service == "s3":
        # Bucket ARNs carry no account: SourceAccount stops another account's same-named bucket.
        request.update(SourceArn=f"arn:{partition}:s3:::{source}", SourceAccount=account)
    else:
        request.update(SourceArn=f"arn:{partition}:sns:{region}:{account}:{source}")
    lam.add_permission(**request)


def _statements(lam: Any, function: str) -> list[dict]:
    """The statements of the function's resource policy ([] when it has none)."""
    try:
        return json.loads(lam.get_policy(FunctionName=function)["Policy"]).get("Statement", [])
    except Exception as e:
        if errors.is_not_found(e):
            return []
        raise


def _invoker(statement: dict) -> tuple[str, str]:
    """(service, source name) of a policy statement: ("s3", bucket), ("sns", topic).

    Statements envctl did not make read as well as they can (the principal, the last part of
    the source ARN), so that they show in diff and update removes them.
    """
    principal = statement.get("Principal", {})
    if isinstance(principal, dict):
        principal = principal.get("Service") or principal.get("AWS") or ""
    service = next((s for s, p in INVOKERS.items() if p == principal), str(principal).removesuffix(".amazonaws.com"))
    source_arn = ""
    for condition in statement.get("Condition", {}).values():
        source_arn = condition.get("AWS:SourceArn") or condition.get("aws:SourceArn") or source_arn
    return service, source_arn.rsplit(":", 1)[-1] if source_arn else ""


def _status(config: dict) -> tuple[str, str | None]:
    """(status, AWS's reason) of a function: Pending, Updating, Active, Failed or UpdateFailed."""
    state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
    if state == "Failed":
        return "Failed", config.get("StateReason")
    if update == "Failed":
        return "UpdateFailed", config.get("LastUpdateStatusReason")
    if state == "Pending":
        return "Pending", config.get("StateReason")
    if update == "InProgress":
        return "Updating", config.get("LastUpdateStatusReason")
    return "Active", None                          # Active, or Inactive (idle; it wakes on use)
