"""IAM role: trust policy, one inline policy named `envctl`, managed policy attachments.

The inline policy is a field of the role (a sub-resource AWS cannot tag): its statements are
compared by meaning (actions and resources sorted and de-duplicated, statements sorted), so
AWS's own spelling of a document never shows as a change. Roles live under the path
`/envctl/<project>/<environment>/`, which is how discovery finds them: IAM is not in the
Resource Groups Tagging API.

Discovery reads every role of the account, with its inline and attached policies and its
tags, from one paginated GetAccountAuthorizationDetails listing (it has no path filter: roles
under other paths are skipped). Reading a role alone (`read`) takes four calls, two one after
the other: GetRole, ListRolePolicies then GetRolePolicy, and ListAttachedRolePolicies, side by side.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from envctl.model.address import Address
from envctl.model.diff import AttrChange, diff_props, plain
from envctl.model.graph import Node, has_unknown
from envctl.provisioners.base import (NotOurs, Observed, Props, Provisioner, Value, address_of, tag_changes, tag_dict,
                                      tag_list, with_live_tags)

POLICY_NAME = "envctl"
VERSION = "2012-10-17"


class Statement(Props):
    """One Allow statement of the inline policy: exact actions on exact resources."""

    actions: tuple[str, ...]
    resources: tuple[Value, ...]
    effect: str = "Allow"
    other: str | None = None      # canonical JSON of anything else found live (Condition, NotAction, …)


class RoleProps(Props):
    path: str = "/"
    assume_role_policy: str                      # canonical JSON (see canonical_policy)
    statements: tuple[Statement, ...] = ()       # the inline policy named "envctl"; () = none
    managed_policies: tuple[str, ...] = ()       # ARNs of attached managed policies
    other_inline_policies: tuple[str, ...] = ()  # names of inline policies envctl did not write


class Role(Provisioner[RoleProps]):
    kind = "role"
    services = ("iam",)
    props = RoleProps
    replace_on = frozenset({"path"})             # IAM cannot move a role to another path
    set_fields = frozenset({"managed_policies", "other_inline_policies"})
    uses = frozenset({"queue", "table", "bucket", "log_group", "topic", "function"})

    def discover(self, ctx) -> Iterable[Observed[RoleProps]]:
        # One listing of the account's roles with their policies and tags, instead of four calls
        # per role (IAM has no describe of several roles, and ListRoles carries no tags).
        iam = ctx.client("iam")
        path = role_path(ctx.project, ctx.environment)
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["Role"], PaginationConfig={"PageSize": 1000})
        for page in pages:
            for role in page.get("RoleDetailList", []):
                if not role["Path"].startswith(path):
                    continue
                inline = {p["PolicyName"]: p["PolicyDocument"] for p in role.get("RolePolicyList", [])}
                obs = self._observed(role, inline, role.get("AttachedManagedPolicies", []))
                if ctx.is_ours(obs.tags) and obs.address.kind == self.kind:
                    yield obs

    def read(self, ctx, id: str) -> Observed[RoleProps] | None:
        iam = ctx.client("iam")
        try:        # the role, its inline policies and its attached ones side by side
            role, inline, attached = ctx.read_all([
                partial(_get_role, iam, id), partial(_inline_policies, iam, id),
                partial(_all, iam, "list_attached_role_policies", "AttachedPolicies", RoleName=id)])
        except _Gone:
            return None
        if role is None:
            return None
        return self._observed(role, inline, attached)

    def read_for_delete(self, ctx, observed: Observed[RoleProps]) -> Observed[RoleProps] | None:
        # The delete removes the policies the plan saw, and lists them afresh if IAM still refuses.
        iam = ctx.client("iam")
        return with_live_tags(observed, lambda: tag_dict(iam.list_role_tags(RoleName=observed.id).get("Tags")))

    def find(self, ctx, node: Node) -> Observed[RoleProps] | None:
        return self.read(ctx, node.physical_name)

    def diff(self, desired: RoleProps, observed: Observed[RoleProps]) -> list[AttrChange]:
        changes = diff_props(desired, observed.props, self.replace_on, self.set_fields,
                             ignore=frozenset({"assume_role_policy", "statements"}))
        if canonical_policy(desired.assume_role_policy) != observed.props.assume_role_policy:
            changes.append(AttrChange("assume_role_policy", observed.props.assume_role_policy,
                                      desired.assume_role_policy))
        if has_unknown(desired.statements) or \
                canonical_statements(desired.statements) != canonical_statements(observed.props.statements):
            changes.append(AttrChange("statements", plain(observed.props.statements), plain(desired.statements)))
        return changes

    def create(self, ctx, node: Node) -> str:
        from envctl.aws import errors

        p: RoleProps = node.props
        iam = ctx.client("iam")
        name = node.physical_name
        try:
            iam.create_role(RoleName=name, Path=p.path, AssumeRolePolicyDocument=p.assume_role_policy,
                            Tags=tag_list(node.tags))
        except Exception as e:
            if not errors.is_already_exists(e):
                raise
            existing = self.read(ctx, name)
            if existing is None or not ctx.is_ours(existing.tags):
                raise NotOurs(node.address, f"IAM role {name}") from None
        # Idempotent puts: a re-run after a crash between these calls completes the role.
        if p.statements:
            iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=policy_document(p.statements))
        for arn in p.managed_policies:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name

    def update(self, ctx, observed: Observed[RoleProps], node: Node, changes: list[AttrChange]) -> None:
        want: RoleProps = node.props
        have = observed.props
        changed = {c.path for c in changes}
        iam = ctx.client("iam")
        name = observed.id
        if "assume_role_policy" in changed:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=want.assume_role_policy)
        if "statements" in changed:
            if want.statements:
                iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME,
                                    PolicyDocument=policy_document(want.statements))
            else:
                _ignore_not_found(iam.delete_role_policy, RoleName=name, PolicyName=POLICY_NAME)
        if "managed_policies" in changed:
            for arn in sorted(set(want.managed_policies) - set(have.managed_policies)):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            for arn in sorted(set(have.managed_policies) - set(want.managed_policies)):
                _ignore_not_found(iam.detach_role_policy, RoleName=name, PolicyArn=arn)
        if "other_inline_policies" in changed:
            for policy in sorted(set(have.other_inline_policies) - set(want.other_inline_policies)):
                _ignore_not_found(iam.delete_role_policy, RoleName=name, PolicyName=policy)
        if "tags" in changed:
            self.update_tags(ctx, observed, node.tags)

    def update_tags(self, ctx, observed: Observed[RoleProps], tags: Mapping[str, str]) -> None:
        to_set, to_remove = tag_changes(observed.tags, tags)
        iam = ctx.client("iam")
        if to_set:
            iam.tag_role(RoleName=observed.id, Tags=tag_list(to_set))
        if to_remove:
            iam.untag_role(RoleName=observed.id, TagKeys=to_remove)

    def delete(self, ctx, observed: Observed[RoleProps]) -> None:
        # IAM deletes a role only once it is bare: out of every instance profile, no policies.
        # `observed` was read just before (the executor's re-read) and names the policies: they
        # go, then the role (its instance profiles are envctl's and were deleted before it). If
        # IAM still refuses (DeleteConflict: a profile holds it, a policy came since), everything
        # is listed afresh and removed, and the role deleted again.
        from envctl.aws import errors

        iam = ctx.client("iam")
        name = observed.id
        inline = ([POLICY_NAME] if observed.props.statements else []) + list(observed.props.other_inline_policies)
        try:
            for policy in inline:
                _ignore_not_found(iam.delete_role_policy, RoleName=name, PolicyName=policy)
            for arn in observed.props.managed_policies:
                _ignore_not_found(iam.detach_role_policy, RoleName=name, PolicyArn=arn)
            iam.delete_role(RoleName=name)
            return
        except Exception as e:
            if errors.is_not_found(e):
                return
        try:
            for profile in _all(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name):
                _ignore_not_found(iam.remove_role_from_instance_profile,
                                  InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
            for policy in _all(iam, "list_role_policies", "PolicyNames", RoleName=name):
                _ignore_not_found(iam.delete_role_policy, RoleName=name, PolicyName=policy)
            for attached in _all(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
                _ignore_not_found(iam.detach_role_policy, RoleName=name, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=name)
        except _Gone:
            return
        except Exception as e:
            if not errors.is_not_found(e):
                raise

    def outputs(self, observed: Observed[RoleProps]) -> Mapping[str, str]:
        return observed.outputs

    def _observed(self, role: Mapping, inline: Mapping[str, Any], attached: Iterable[Mapping]) -> Observed[RoleProps]:
        """A role from GetRole or GetAccountAuthorizationDetails (same fields), with its inline
        policies ({name: document}; only envctl's document is used) and attached policies."""
        tags = tag_dict(role.get("Tags"))
        props = RoleProps(path=role["Path"],
                          assume_role_policy=canonical_policy(role["AssumeRolePolicyDocument"]),
                          statements=_statements(inline[POLICY_NAME]) if POLICY_NAME in inline else (),
                          managed_policies=tuple(sorted(a["PolicyArn"] for a in attached)),
                          other_inline_policies=tuple(sorted(n for n in inline if n != POLICY_NAME)))
        name = role["RoleName"]
        return Observed(address=address_of(tags) or Address(self.kind, name), id=name, props=props, tags=tags,
                        outputs={"arn": role["Arn"], "name": name, "id": role["RoleId"]})


# ------------------------------------------------------------------ policy documents

def role_path(project: str, environment: str) -> str:
    return f"/envctl/{project}/{environment}/"


def trust_policy(service: str) -> str:
    """The trust policy letting one AWS service principal assume the role, canonical."""
    return canonical_policy({"Version": VERSION, "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def policy_document(statements: Iterable[Statement]) -> str:
    """The inline policy JSON for resolved statements (every resource a string by now)."""
    return json.dumps({"Version": VERSION, "Statement": [_statement_json(s) for s in canonical_statements(statements)]},
                      sort_keys=True, separators=(",", ":"))


def canonical_statements(statements: Iterable[Statement]) -> tuple[Statement, ...]:
    """Same meaning, one spelling: actions and resources sorted and unique, statements sorted and unique."""
    unique = {}
    for s in statements:
        c = s.model_copy(update={"actions": tuple(sorted(set(s.actions))),
                                 "resources": tuple(sorted(set(map(str, s.resources))))})
        unique[json.dumps(plain(c), sort_keys=True, default=str)] = c
    return tuple(unique[k] for k in sorted(unique))


_LISTS = ("Action", "NotAction", "Resource", "NotResource")


def canonical_policy(document: Any) -> str:
    """A policy document (dict or JSON) as canonical JSON: list-or-string fields as sorted unique lists,
    statements sorted and unique. Two documents that mean the same give the same string."""
    doc = json.loads(document) if isinstance(document, str) else dict(document)
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    canonical = set()
    for s in statements:
        s = dict(s)
        for key in _LISTS:
            if key in s:
                s[key] = _sorted_list(s[key])
        if isinstance(s.get("Principal"), dict):
            s["Principal"] = {k: _sorted_list(v) for k, v in s["Principal"].items()}
        s.pop("Sid", None)                         # a label, not meaning
        canonical.add(json.dumps(s, sort_keys=True, separators=(",", ":")))
    doc["Statement"] = [json.loads(s) for s in sorted(canonical)]
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _sorted_list(value: Any) -> list:
    return sorted(set([value] if isinstance(value, str) else value))


def _statement_json(s: Statement) -> dict:
    body = json.loads(s.other) if s.other else {}
    body.update({"Effect": s.effect, "Action": list(s.actions), "Resource": [str(r) for r in s.resources]})
    return body


def _statements(document: Any) -> tuple[Statement, ...]:
    """Live policy → Statements; anything beyond Effect/Action/Resource is kept as `other`."""
    doc = json.loads(canonical_policy(document))
    out = []
    for s in doc["Statement"]:
        rest = {k: v for k, v in s.items() if k not in ("Effect", "Action", "Resource")}
        out.append(Statement(actions=tuple(s.get("Action", ())), resources=tuple(s.get("Resource", ())),
                             effect=s.get("Effect", "Allow"),
                             other=json.dumps(rest, sort_keys=True, separators=(",", ":")) if rest else None))
    return canonical_statements(out)


# ------------------------------------------------------------------ private helpers

class _Gone(Exception):
    """The role vanished between two calls of one read or delete."""


def _get_role(iam, name: str) -> dict | None:
    from envctl.aws import errors

    try:
        return iam.get_role(RoleName=name)["Role"]
    except Exception as e:
        if errors.is_not_found(e):
            return None
        raise


def _inline_policies(iam, name: str) -> dict[str, Any]:
    """{policy name: document} of the role's inline policies. Only envctl's own document is read;
    of the others, the names are enough (None)."""
    names = _all(iam, "list_role_policies", "PolicyNames", RoleName=name)
    return {n: _get_policy(iam, name) if n == POLICY_NAME else None for n in names}


def _get_policy(iam, name: str) -> Any:
    from envctl.aws import errors

    try:
        return iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except Exception as e:
        if errors.is_not_found(e):
            return {"Statement": []}
        raise


def _all(iam, operation: str, key: str, **kwargs) -> list:
    from envctl.aws import errors

    try:
        return [item for page in iam.get_paginator(operation).paginate(**kwargs) for item in page[key]]
    except Exception as e:
        if errors.is_not_found(e):
            raise _Gone() from None
        raise


def _ignore_not_found(call, **kwargs) -> None:
    from envctl.aws import errors

    try:
        call(**kwargs)
    except Exception as e:
        if not errors.is_not_found(e):
            raise
