"""envctl schema, show and graph: views of the specs that need no AWS."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.spec.specfiles import HEAD, envctl, no_traceback, write_specs

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("network", "security_groups", "roles", "instances", "applications", "databases", "tables", "queues",
            "topics", "buckets", "functions", "log_groups", "alarms", "schedules")


@pytest.fixture
def repo(monkeypatch):
    monkeypatch.chdir(REPO)


def raw(name: str):
    return yaml.safe_load((REPO / "specs" / f"{name}.yaml").read_text())


# ------------------------------------------------------------------ schema

@pytest.fixture(scope="module")
def schema() -> dict:
    result = envctl("schema")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_schema_is_the_spec_model_with_extends(schema):
    whole = schema["$defs"]["EnvironmentSpec"]

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "envctl environment spec"
    assert schema["else"] == {"$ref": "#/$defs/EnvironmentSpec"}
    assert set(whole["properties"]) == {"extends", "project", "region", "account", "protected", "ttl", "tags",
                                        *SECTIONS}
    assert whole["properties"]["extends"]["type"] == "string"
    assert set(whole["required"]) == {"project", "region"}
    assert whole["additionalProperties"] is False
    ingress = schema["$defs"]["IngressRule"]
    assert "from" in ingress["properties"] and "source" not in ingress["properties"]      # the YAML's words
    assert schema["$defs"]["Queue"]["properties"]["visibility_timeout_s"]["maximum"] == 43200


def test_an_overlay_file_needs_no_key_and_may_null_any(schema):
    overlay = schema["$defs"]["EnvironmentSpecOverlay"]

    assert schema["if"] == {"required": ["extends"]}
    assert schema["then"] == {"$ref": "#/$defs/EnvironmentSpecOverlay"}
    assert "required" not in overlay and "required" not in schema["$defs"]["ApplicationOverlay"]
    assert {"type": "null"} in overlay["properties"]["queues"]["anyOf"]
    assert overlay["additionalProperties"] is False
    # lists are replaced whole by an overlay, so their items are checked in full
    subscriptions = schema["$defs"]["TopicOverlay"]["properties"]["subscriptions"]["anyOf"][0]
    assert subscriptions["items"] == {"$ref": "#/$defs/Subscription"}


def test_schema_output_file(tmp_path, monkeypatch, schema):
    monkeypatch.chdir(tmp_path)

    result = envctl("schema", "--output", "envctl.schema.json")

    assert result.exit_code == 0
    assert result.stdout == "wrote envctl.schema.json\n"
    assert json.loads((tmp_path / "envctl.schema.json").read_text()) == schema


def test_schema_output_to_a_missing_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = envctl("schema", "--output", "no/such/folder/envctl.schema.json")

    assert result.exit_code == 1
    assert result.stderr == "error: cannot write no/such/folder/envctl.schema.json: No such file or directory\n"
    assert no_traceback(result)


def test_schema_validates_the_example_files_as_written(schema):
    jsonschema = pytest.importorskip("jsonschema")      # a test tool here, not a dependency of envctl
    validator = jsonschema.Draft202012Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)

    for name in ("base", "qa", "prod"):
        assert [e.message for e in validator.iter_errors(raw(name))] == [], name


def test_schema_refuses_what_validate_refuses(schema):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema)

    def errors(data) -> str:
        return " | ".join(e.message for e in validator.iter_errors(data))

    base = raw("base")
    assert "'region' is a required property" in errors({k: v for k, v in base.items() if k != "region"})
    assert errors({**base, "queus": {}}) != ""
    assert errors({**base, "queues": {"work": {"visiblity_timeout_s": 1}}}) != ""
    assert errors({**base, "network": {**base["network"], "nat": "sometimes"}}) != ""
    qa = raw("qa")
    assert errors({**qa, "queues": {"work-units": None}, "tags": None}) == ""          # null removes, in an overlay
    assert errors({**qa, "queues": {"work-units": {"delay_s": "soon"}}}) != ""
    assert errors({**qa, "topics": {"alarms": {"subscriptions": [{"emial": "x@example.com"}]}}}) != ""


# ------------------------------------------------------------------ show

def test_show_is_the_merged_document_in_the_users_order(repo):
    result = envctl("show", "qa")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# qa: specs/qa.yaml extends specs/base.yaml\n")
    data = yaml.safe_load(result.stdout)
    assert data["network"]["cidr"] == "10.30.0.0/16"                                   # qa's
    assert data["applications"]["orders"]["capacity"] == {"min": 1, "desired": 1, "max": 2}   # qa's
    assert data["applications"]["orders"]["instance_type"] == "t3.small"                # base's
    assert data["tags"] == {"CostCenter": "4711", "Owner": "platform-team"}              # base's
    assert data["account"] == "123456789012"
    assert "extends" not in data
    assert list(data)[:4] == ["project", "region", "tags", "network"]
    assert data["queues"]["imports"] == {}                                              # no defaults filled in


def test_show_keeps_multiline_text_readable(repo):
    result = envctl("show", "qa")

    assert "    user_data: |\n      #!/bin/bash\n" in result.stdout


def test_show_json_is_the_same_data(repo):
    as_yaml = yaml.safe_load(envctl("show", "qa").stdout)

    result = envctl("show", "qa", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == as_yaml


def test_show_defaults_is_the_full_model(repo):
    result = envctl("show", "qa", "--defaults", "--json")

    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert data["queues"]["imports"] == {"fifo": False, "visibility_timeout_s": 30, "retention_s": 345600,
                                         "delay_s": 0, "max_message_bytes": 262144, "receive_wait_s": 0,
                                         "dead_letter": None}
    assert data["applications"]["orders"]["capacity"] == {"min": 1, "desired": 1, "max": 2}
    assert data["security_groups"]["app"]["ingress"][0]["from"] == "bastion"
    assert data["network"]["tiers"]["private"] == {"prefix": 20, "cidrs": None, "internet": False, "nat": True}


def test_show_prints_an_invalid_spec_but_show_defaults_refuses_it(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD + "queues:\n  work: {delay_s: lots}\n"})
    monkeypatch.chdir(tmp_path)

    shown = envctl("show", "qa")
    refused = envctl("show", "qa", "--defaults")

    assert shown.exit_code == 0
    assert yaml.safe_load(shown.stdout)["queues"] == {"work": {"delay_s": "lots"}}
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: specs/qa.yaml:4: queues.work.delay_s: input should be a valid integer")
    assert no_traceback(refused)


def test_show_of_an_unreadable_spec_names_the_line(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD + "queues:\n  work: {}\n  work: {}\n"})
    monkeypatch.chdir(tmp_path)

    result = envctl("show", "qa")

    assert result.exit_code == 1
    assert result.stderr == "error: specs/qa.yaml:5: queues.work: duplicate key (already set above)\n"
    assert result.stdout == ""


def test_show_of_an_unknown_environment(repo):
    result = envctl("show", "staging")

    assert result.exit_code == 1
    assert result.stderr == "error: specs/staging.yaml: no spec for environment 'staging'; environments here: preview, prod, qa\n"


# ------------------------------------------------------------------ graph
# Only the network's edges are asserted: the other sections' expanders are being written.

NETWORK_EDGES = [
    ("nat_gateway/nat-a", "eip/nat-a"),
    ("nat_gateway/nat-a", "subnet/public-a"),
    ("nat_gateway/nat-a", "internet_gateway/main"),
    ("route_table/private", "nat_gateway/nat-a"),
    ("security_group/app", "security_group/bastion"),
    ("subnet/public-a", "vpc/main"),
]


def test_graph_text_lists_resources_after_their_dependencies(repo):
    result = envctl("graph", "qa")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines}
    order = [line.split()[0] for line in lines]
    for dependent, dependency in NETWORK_EDGES:
        deps = rows[dependent].split("← ")[1].split(", ")
        assert dependency in deps, rows[dependent]
        assert order.index(dependency) < order.index(dependent)
    assert re.fullmatch(r"vpc/main +\(acme-qa-vpc\)", rows["vpc/main"])
    assert "(acme-qa-nat-a)" in rows["nat_gateway/nat-a"]


def test_graph_text_columns_are_aligned(repo):
    lines = envctl("graph", "qa").stdout.splitlines()

    assert len({line.index("(") for line in lines}) == 1
    assert len({line.index("←") for line in lines if "←" in line}) == 1
    assert all(re.match(r"\S+  +\(", line) for line in lines)


def test_graph_dot(repo):
    result = envctl("graph", "qa", "--format", "dot")

    assert result.exit_code == 0
    assert result.stdout.startswith('digraph "acme-qa" {\n')
    assert result.stdout.endswith("}\n")
    assert '  "vpc/main" [label="vpc/main\\nacme-qa-vpc"];\n' in result.stdout
    for dependent, dependency in NETWORK_EDGES:
        assert f'  "{dependent}" -> "{dependency}";\n' in result.stdout


def test_graph_mermaid(repo):
    result = envctl("graph", "qa", "--format", "mermaid")

    assert result.exit_code == 0
    assert "\nflowchart LR\n" in result.stdout
    ids = {m.group(2): m.group(1) for m in re.finditer(r'^  (n\d+)\["([^<]+)<br/>[^"]+"\]$', result.stdout, re.M)}
    edges = set(re.findall(r"^  (n\d+) --> (n\d+)$", result.stdout, re.M))
    assert ids["vpc/main"] and len(set(ids.values())) == len(ids)
    for dependent, dependency in NETWORK_EDGES:
        assert (ids[dependent], ids[dependency]) in edges


def test_graph_of_an_invalid_spec_is_the_validate_error(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD + "queues:\n  work: {delay_s: lots}\n"})
    monkeypatch.chdir(tmp_path)

    result = envctl("graph", "qa")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: specs/qa.yaml:4: queues.work.delay_s:")
    assert no_traceback(result)


def test_graph_of_an_empty_environment(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD})
    monkeypatch.chdir(tmp_path)

    result = envctl("graph", "qa")

    assert result.exit_code == 0
    assert result.stdout == "acme-qa: no resources\n"


def test_help_lists_the_offline_commands():
    result = envctl("--help")

    for command in ("schema", "show", "graph", "validate"):
        assert re.search(rf"^  {command} ", result.stdout, re.M), command
