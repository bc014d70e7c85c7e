"""The JSON Schema of a spec file, for editors (yaml-language-server) and other tools.

A file without `extends:` is a whole spec: it must match EnvironmentSpec as pydantic
describes it. A file with `extends:` is an overlay: every key is optional and may be
`null` (which removes it), because the rest comes from the file it extends. Lists are
replaced whole by an overlay, so list items are always checked in full.

The schema checks shapes and types only; cross-section rules (references, names, the
network's carving) are `envctl validate`'s job.
"""
from __future__ import annotations

import copy
from typing import Any

from envctl.spec.models import EnvironmentSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "envctl environment spec"
OVERLAY = "Overlay"             # suffix of the lenient copy of each definition

EXTENDS = {
    "type": "string",
    "description": "the spec file this one overlays, relative to this file (e.g. base.yaml)",
}


def json_schema() -> dict[str, Any]:
    full = EnvironmentSpec.model_json_schema(by_alias=True)
    defs: dict[str, Any] = full.pop("$defs", {})
    full["properties"] = {"extends": EXTENDS, **full["properties"]}

    overlay_defs = {name + OVERLAY: _overlay(schema) for name, schema in defs.items()}
    overlay_root = _overlay(full)
    defs = {**defs, "EnvironmentSpec": full, **overlay_defs, "EnvironmentSpec" + OVERLAY: overlay_root}
    return {
        "$schema": DIALECT,
        "title": TITLE,
        "description": "An envctl environment (specs/<environment>.yaml). A file with extends: is an overlay "
                       "of the file it names: any key may be left out, and null removes it.",
        "type": "object",
        "if": {"required": ["extends"]},
        "then": {"$ref": f"#/$defs/EnvironmentSpec{OVERLAY}"},
        "else": {"$ref": "#/$defs/EnvironmentSpec"},
        "$defs": defs,
    }


def _overlay(schema: Any, in_items: bool = False) -> Any:
    """A copy of `schema` where nothing is required and every mapping value may be null.

    Items of a list keep pointing at the full definitions: an overlay replaces a list whole.
    """
    if in_items:
        return copy.deepcopy(schema)
    if isinstance(schema, list):
        return [_overlay(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required":
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = value + OVERLAY
        elif key == "properties":
            out[key] = {name: _nullable(_overlay(sub)) for name, sub in value.items()}
        elif key == "patternProperties":
            out[key] = {pattern: _nullable(_overlay(sub)) for pattern, sub in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _nullable(_overlay(value))
        elif key in ("items", "prefixItems"):
            out[key] = _overlay(value, in_items=True)
        elif key in ("anyOf", "oneOf", "allOf"):
            out[key] = [_overlay(s) for s in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _nullable(schema: dict) -> dict:
    if {"type": "null"} in schema.get("anyOf", []):
        return schema
    # Keep the words an editor shows (title, description, default) beside the anyOf.
    shown = {k: schema[k] for k in ("title", "description", "default") if k in schema}
    return {**shown, "anyOf": [schema, {"type": "null"}]}
