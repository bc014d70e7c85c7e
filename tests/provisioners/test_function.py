"""Lambda functions and their own log groups: the lifecycle against moto server.

The role, queue and topic a function refers to are made by hand with plain boto3 and stand
in for their nodes. moto never runs a function (MOTO-NOTES §5): nothing here invokes one;
the example handler is tested as plain Python at the end.
"""
from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pytest

from envctl.model import package
from envctl.model.address import Address
from envctl.model.graph import Ref, Template
from envctl.provisioners import by_kind
from envctl.provisioners.base import NotOurs
from envctl.provisioners.function import _status
from tests.provisioners.harness import (create_all, delete_all, diff_all, discover, graph_from_yaml, make_ctx,
                                        offline_client, resolved, stand_in_queue, stand_in_role, stand_in_topic)

SPEC = """\
tags: {Owner: platform-team}
roles:
  ingest:
    assumed_by: lambda
queues:
  work-units: {}
topics:
  events:
    subscriptions:
      - {function: ingest}
buckets:
  uploads:
    notify:
      - {function: ingest, events: [created]}
functions:
  ingest:
    runtime: python3.12
    handler: handler.main
    source: functions/ingest
    memory_mb: 256
    timeout_s: 60
    role: ingest
    environment:
      WORK_QUEUE: "${queues.work-units.url}"
      GREETING: "hello ${buckets.uploads.name}!"
"""
HANDLER = "def main(event, context):\n    return {'ok': True}\n"
FILES = {"functions/ingest/handler.py": HANDLER, "functions/ingest/lib/util.py": "X = 1\n"}
NAME = "acme-qa-ingest"
LOG_GROUP = "/aws/lambda/acme-qa-ingest"


def stand_ins(aws) -> dict[Address, dict]:
    """The role, queue and topic, made by hand: their outputs as their provisioners would give them."""
    return {Address("role", "ingest"): stand_in_role(aws, "acme-qa-ingest"),
            Address("queue", "work-units"): stand_in_queue(aws, "acme-qa-work-units"),
            Address("topic", "events"): stand_in_topic(aws, "acme-qa-events")}


def _statements(lam, name):
    return sorted(json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"], key=lambda s: s["Sid"])


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_lifecycle(aws, tmp_path):
    lam, logs = aws.client("lambda"), aws.client("logs")
    given = stand_ins(aws)
    role_arn = given[Address("role", "ingest")]["arn"]
    lam.create_function(FunctionName="acme-qa-foreign", Runtime="python3.12", Role=role_arn, Handler="h.main",
                        Code={"ZipFile": _zip({"h.py": "x"})})
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    function = graph[Address("function", "ingest")]
    assert Address("log_group", "function-ingest") in function.deps      # made before Lambda could make it
    ctx = make_ctx(aws)

    # create, read back with plain boto3
    create_all(ctx, graph, given)
    found = lam.get_function(FunctionName=NAME)
    config = found["Configuration"]
    assert (config["Runtime"], config["Handler"], config["MemorySize"], config["Timeout"]) == \
        ("python3.12", "handler.main", 256, 60)
    assert config["Role"] == role_arn
    assert config["Environment"]["Variables"] == {"WORK_QUEUE": given[Address("queue", "work-units")]["url"],
                                                  "GREETING": "hello acme-qa-uploads!"}
    source = tmp_path / "specs" / "functions" / "ingest"
    assert config["CodeSha256"] == package.code_sha256(package.zip_folder(source)) == function.props.code_sha256
    assert found["Tags"] == {"envctl:project": "acme", "envctl:environment": "qa",
                             "envctl:resource": "function/ingest", "Owner": "platform-team"}
    s3_statement, sns_statement = _statements(lam, NAME)
    assert s3_statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert s3_statement["Condition"]["ArnLike"]["AWS:SourceArn"] == "arn:aws:s3:::acme-qa-uploads"
    assert s3_statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == aws.account
    assert sns_statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert sns_statement["Condition"]["ArnLike"]["AWS:SourceArn"] == given[Address("topic", "events")]["arn"]
    group = logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"][0]
    assert group["retentionInDays"] == 30
    assert logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]["envctl:resource"] == \
        "log_group/function-ingest"

    # discover finds exactly ours, in sync, with no mutating call
    aws.log.clear()
    found = discover(ctx, ["function", "log_group", "bucket"])
    assert sorted(map(str, found)) == ["bucket/uploads", "function/ingest", "log_group/function-ingest"]
    assert diff_all(graph, found, given) == {}
    assert aws.log.mutating() == []
    assert by_kind("function").outputs(found[Address("function", "ingest")]) == {
        "name": NAME, "arn": config["FunctionArn"]}

    # drift by hand: exactly those fields
    lam.update_function_code(FunctionName=NAME, ZipFile=_zip({"handler.py": "changed"}))
    lam.update_function_configuration(FunctionName=NAME, MemorySize=512,
                                      Environment={"Variables": {"WORK_QUEUE": "elsewhere"}})
    lam.remove_permission(FunctionName=NAME, StatementId=sns_statement["Sid"])
    found = discover(ctx, ["function", "log_group", "bucket"])
    drift = diff_all(graph, found, given)
    assert {str(a): sorted(c.path for c in changes) for a, changes in drift.items()} == {
        "function/ingest": ["code_sha256", "environment", "invoke_from", "memory_size"]}

    # update repairs it, one call per kind of change
    aws.log.clear()
    by_kind("function").update(ctx, found[Address("function", "ingest")], resolved(function, given),
                               drift[Address("function", "ingest")])
    assert [c.action.rsplit("/", 1)[-1] for c in aws.log.mutating()] == ["code", "configuration", "policy"]
    found = discover(ctx, ["function", "log_group", "bucket"])
    assert diff_all(graph, found, given) == {}
    assert lam.get_function(FunctionName=NAME)["Configuration"]["MemorySize"] == 256

    # new code in the folder: only code_sha256 changes, and update uploads it
    (source / "handler.py").write_text(HANDLER + "# v2\n")
    graph = graph_from_yaml(tmp_path, SPEC, files={})
    drift = diff_all(graph, found, given)
    assert [c.path for c in drift[Address("function", "ingest")]] == ["code_sha256"]
    by_kind("function").update(ctx, found[Address("function", "ingest")],
                               resolved(graph[Address("function", "ingest")], given),
                               drift[Address("function", "ingest")])
    assert lam.get_function(FunctionName=NAME)["Configuration"]["CodeSha256"] == \
        graph[Address("function", "ingest")].props.code_sha256

    # deleted out of band: gone from discovery, read says None
    lam.delete_function(FunctionName=NAME)
    found = discover(ctx, ["function", "log_group", "bucket"])
    assert Address("function", "ingest") not in found
    assert by_kind("function").read(ctx, NAME) is None

    # delete_all leaves nothing tagged; the foreign function stays
    delete_all(ctx, found, graph)
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["acme-qa-foreign"]
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] == []


def test_create_adopts_our_existing_function(aws, tmp_path):
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    node = resolved(graph[Address("function", "ingest")], given)
    lam = aws.client("lambda")
    lam.create_function(FunctionName=NAME, Runtime="python3.11", Role=node.props.role, Handler="old.main",
                        Code={"ZipFile": _zip({"old.py": "x"})}, Tags=dict(node.tags))

    assert by_kind("function").create(make_ctx(aws), node) == NAME
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == [NAME]
    config = lam.get_function(FunctionName=NAME)["Configuration"]
    assert (config["Runtime"], config["Handler"], config["CodeSha256"]) == \
        ("python3.12", "handler.main", node.props.code_sha256)        # brought to the spec


def test_create_and_read_back_make_each_call_once(aws, tmp_path):
    # The wait polls with GetFunction, the read's own call: the answer that says Active is read on.
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    node = resolved(graph[Address("function", "ingest")], given)
    ctx = make_ctx(aws)
    function = by_kind("function")
    aws.log.clear()
    observed = function.wait(ctx, function.create(ctx, node), "ready")
    function_path, policies = f"/2015-03-31/functions/{NAME}", ["POST policy"] * len(node.props.invoke_from)
    assert [_call(c.action, function_path) for c in aws.log.snapshot()] == [
        "GET function", "POST create", *policies, "GET function", "GET policy"]   # look, create, allow, read
    assert function.diff(node.props, observed) == []


def _call(action: str, function_path: str) -> str:
    """A Lambda REST call, short: GET function, POST create, POST policy, GET policy."""
    method, path = action.split(" ", 1)
    if path == "/2015-03-31/functions":
        return f"{method} create"
    return f"{method} {'policy' if path.endswith('/policy') else 'function' if path == function_path else path}"


def test_create_refuses_a_function_that_is_not_ours(aws, tmp_path):
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    node = resolved(graph[Address("function", "ingest")], given)
    lam = aws.client("lambda")
    lam.create_function(FunctionName=NAME, Runtime="python3.11", Role=node.props.role, Handler="theirs.main",
                        Code={"ZipFile": _zip({"theirs.py": "x"})})
    aws.log.clear()

    with pytest.raises(NotOurs):
        by_kind("function").create(make_ctx(aws), node)
    assert aws.log.mutating() == []
    assert lam.get_function(FunctionName=NAME)["Configuration"]["Handler"] == "theirs.main"


def test_create_refuses_source_changed_since_the_plan(aws, tmp_path):
    given = stand_ins(aws)
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    (tmp_path / "specs" / "functions" / "ingest" / "handler.py").write_text("changed after diff\n")

    with pytest.raises(RuntimeError, match="changed since the plan"):
        by_kind("function").create(make_ctx(aws), resolved(graph[Address("function", "ingest")], given))
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_expand_environment_references(tmp_path):
    graph = graph_from_yaml(tmp_path, SPEC, files=FILES)
    env = graph[Address("function", "ingest")].props.environment
    assert env["WORK_QUEUE"] == Ref(Address("queue", "work-units"), "url")
    # Bucket attributes are known from the name: no Ref, so no cycle with the bucket's notification.
    assert env["GREETING"] == "hello acme-qa-uploads!"
    graph = graph_from_yaml(tmp_path, SPEC.replace('"hello ${buckets.uploads.name}!"',
                                                   '"${queues.work-units.name} at ${queues.work-units.arn}"'))
    assert graph[Address("function", "ingest")].props.environment["GREETING"] == Template(
        (Ref(Address("queue", "work-units"), "name"), " at ", Ref(Address("queue", "work-units"), "arn")))
    assert graph[Address("function", "ingest")].props.invoke_from == (("s3", "acme-qa-uploads"),
                                                                      ("sns", "acme-qa-events"))


def test_package_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, order in ((a, ["z.py", "lib/m.py"]), (b, ["lib/m.py", "z.py"])):
        for name in order:                                      # written in another order
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"# {name}\n")
    (b / "__pycache__").mkdir()
    (b / "__pycache__" / "z.cpython-311.pyc").write_bytes(b"\x00")
    (b / "lib" / "m.pyc").write_bytes(b"\x00")
    (b / "z.py").touch()                                         # another mtime
    assert package.zip_folder(a) == package.zip_folder(b)
    with zipfile.ZipFile(io.BytesIO(package.zip_folder(b))) as z:
        assert z.namelist() == ["lib/m.py", "z.py"]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 & 0o777 for i in z.infolist()} == {0o644}
    (b / "z.py").write_text("# other\n")
    assert package.zip_folder(a) != package.zip_folder(b)


@pytest.mark.parametrize("config,status", [
    ({"State": "Pending", "LastUpdateStatus": "InProgress"}, "Pending"),
    ({"State": "Active", "LastUpdateStatus": "InProgress"}, "Updating"),
    ({"State": "Active", "LastUpdateStatus": "Successful"}, "Active"),
    ({"State": "Inactive", "LastUpdateStatus": "Successful"}, "Active"),
    ({"State": "Failed", "StateReason": "bad role"}, "Failed"),
    ({"State": "Active", "LastUpdateStatus": "Failed", "LastUpdateStatusReason": "no"}, "UpdateFailed"),
])
def test_status_for_the_wait(config, status):
    # moto's functions are Active at once (MOTO-NOTES §7): the states in between are tested here.
    assert _status(config)[0] == status


def test_wait_reports_lambdas_failure_reason():
    # moto never leaves a function Pending or Failed (MOTO-NOTES §7): botocore's Stubber plays
    # those answers, as MOTO-NOTES advises for wait logic. No sleep is needed: each answer is final.
    from botocore.stub import Stubber

    from envctl.aws.waiters import WaitFailed

    lam = offline_client("lambda")
    with Stubber(lam) as stub:
        stub.add_response("get_function_configuration", {"State": "Failed", "StateReason": "bad zip"})
        stub.add_client_error("get_function_configuration", "ResourceNotFoundException", http_status_code=404)
        with pytest.raises(WaitFailed, match="Lambda function f is Failed, expected Active or gone: bad zip"):
            by_kind("function")._wait_ready(lam, "f", timeout=5)
        assert by_kind("function")._wait_ready(lam, "f", timeout=5) is None      # gone


def test_example_handler_queues_each_upload(monkeypatch):
    """specs/functions/ingest/handler.py as plain Python, with a stand-in SQS client object."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    monkeypatch.setenv("WORK_QUEUE", "https://sqs.example/queue")
    path = Path(__file__).resolve().parents[2] / "specs" / "functions" / "ingest" / "handler.py"
    spec = importlib.util.spec_from_file_location("ingest_handler", path)
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    sent = []

    class Sqs:
        def send_message(self, **kwargs):
            sent.append(kwargs)

    monkeypatch.setattr(handler, "_sqs", Sqs())
    event = {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/1.xml"}}},
                         {"s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/2.xml"}}}]}
    assert handler.main(event, None) == {"queued": 2}
    assert [(m["QueueUrl"], json.loads(m["MessageBody"])) for m in sent] == [
        ("https://sqs.example/queue", {"bucket": "b", "key": "incoming/1.xml"}),
        ("https://sqs.example/queue", {"bucket": "b", "key": "incoming/2.xml"})]
