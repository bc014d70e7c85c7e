"""Checks of the benchmark's own arithmetic: `python -m pytest benchmarks -q` (no AWS, no moto)."""
from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from benchmarks import generate
from benchmarks.run import TAG_SCAN, Run, analyse, longest_chain
from envctl.expand import expand
from envctl.model.address import Address
from envctl.spec.validate import load

CHEAP_KINDS = {"vpc", "internet_gateway", "subnet", "eip", "nat_gateway", "route_table", "security_group", "role",
               "table", "queue", "topic", "bucket", "log_group", "alarm", "schedule"}


@pytest.mark.parametrize("total", [11, 50, 137, 1000])
def test_a_generated_environment_has_exactly_the_resources_asked_for(tmp_path, total):
    env = generate.write(tmp_path, total)
    graph = expand(load(tmp_path, env))
    kinds = Counter(n.kind for n in graph)
    assert sum(kinds.values()) == total
    assert set(kinds) <= CHEAP_KINDS


def test_longest_chain_follows_the_heaviest_path():
    weights = {"a": 2, "b": 3, "c": 10, "d": 1}
    waits = {"b": {"a"}, "d": {"b", "c"}}          # a → b → d, c → d
    assert longest_chain(weights, waits) == (11, ["c", "d"])
    assert longest_chain({}, {}) == (0, [])


def _node(address: str, *deps: str):
    a = Address.parse(address)
    return SimpleNamespace(address=a, kind=a.kind, deps=frozenset(Address.parse(d) for d in deps))


def _call(label: str, service: str = "sqs", operation: str = "GetQueueAttributes") -> dict:
    return {"label": label, "service": service, "operation": operation, "start": 0.0, "end": 0.05}


def test_the_bound_adds_main_calls_the_longest_discovery_with_the_tag_scan_and_the_longest_chain():
    graph = [_node("queue/dlq"), _node("queue/work", "queue/dlq"), _node("topic/alarms")]
    calls = ([_call("main", "sts", "GetCallerIdentity")]
             + [_call("discover:topic", "resourcegroupstaggingapi", "GetResources")] * 2   # the shared scan
             + [_call("discover:topic", "sns", "GetTopicAttributes")]
             + [_call("discover:queue")] * 3
             + [_call("discover:vpc", "ec2", "DescribeVpcs")] * 4
             + [_call("queue/dlq|apply")] * 2 + [_call("queue/work|apply")] * 3 + [_call("topic/alarms|apply")] * 4)
    trace = {"calls": calls, "phases": [], "tag_scan_users": ["discover:queue", "discover:topic"]}
    run = Run(["envctl", "create"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, "apply", 10, expect=(0,))

    cp = result["critical_path"]
    assert cp["main_thread_calls"] == 1
    assert cp["discoveries"] == [{"kind": "queue", "calls": 5}]     # 3 own + 2 pages of the scan it waits for
    assert cp["longest_chain"] == {"calls": 5, "path": ["queue/dlq", "queue/work"]}
    assert cp["calls"] == 11
    assert cp["bound_s"] == pytest.approx(0.55)
    assert result["discovery"]["topic"]["actions"] == {"GetTopicAttributes": 1}   # the scan is not the topic's
    assert result["tag_scan"] == {"calls": 2, "waiting_kinds": ["queue", "topic"]}
    assert result["step_calls_by_kind"]["queue"] == {"steps": 2, "calls_each": 2.5, "max": 3}


def test_a_kinds_listings_made_before_it_asks_for_the_tag_scan_run_beside_the_scan():
    """Schedules list their rules (2 pages), then ask for the scan (1 page), then read one rule:
    max(2, 1) + 1, not 2 + 1 + 1. Asked again in destroy's second discovery: from then on."""
    graph = [_node("schedule/nightly")]
    first = ([dict(_call("discover:schedule", "events", "ListRules"), start=10.1, end=10.15)] * 2
             + [dict(_call("discover:queue", TAG_SCAN, "GetResources"), start=10.1, end=10.15)]
             + [dict(_call("discover:schedule#0", "events", "ListTargetsByRule"), start=10.2, end=10.25)])
    check = ([dict(_call("discover:schedule", "events", "ListRules"), start=12.1, end=12.15)]
             + [dict(_call("discover:queue", TAG_SCAN, "GetResources"), start=12.1, end=12.15)] * 3)
    phases = [{"phase": "observe", "start": 10.0, "end": 10.5}, {"phase": "execute", "start": 10.6, "end": 12.0},
              {"phase": "observe", "start": 12.0, "end": 12.2}]
    trace = {"calls": first + [_call("schedule/nightly|remove")] + check, "phases": phases,
             "tag_scan_users": ["discover:queue", "discover:schedule"],
             "tag_scan_asked": {"discover:schedule": [10.16, 12.05], "discover:queue": [10.05, 12.05]}}
    run = Run(["envctl", "destroy"], 0, 3.5, 100.0, 0.5, 9.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, "remove", 10, expect=(0,))

    assert result["critical_path"]["discoveries"] == [{"kind": "schedule", "calls": 3},    # max(2, 1) + 1
                                                      {"kind": "schedule", "calls": 4}]    # asked first: 3 + 1


def test_destroy_waits_for_the_users_first_and_discovers_twice():
    graph = [_node("queue/dlq"), _node("queue/work", "queue/dlq")]
    first = [dict(_call("discover:queue"), start=10.1, end=10.15)] * 3
    check = [dict(_call("discover:queue"), start=12.1, end=12.15)] * 1
    calls = first + [_call("queue/dlq|remove")] * 1 + [_call("queue/work|remove")] * 2 + check
    phases = [{"phase": "observe", "start": 10.0, "end": 10.5}, {"phase": "execute", "start": 10.6, "end": 12.0},
              {"phase": "observe", "start": 12.0, "end": 12.2}]
    run = Run(["envctl", "destroy"], 0, 3.5, 100.0, 0.5, 9.0, "", "", trace={"calls": calls, "phases": phases})

    result = analyse(run, graph, 0.05, "remove", 10, expect=(0,))

    cp = result["critical_path"]
    assert cp["longest_chain"] == {"calls": 3, "path": ["queue/work", "queue/dlq"]}
    assert cp["discoveries"] == [{"kind": "queue", "calls": 3}, {"kind": "queue", "calls": 1}]
    assert cp["calls"] == 7
    assert result["time_split_s"] == {"start-up": 1.0, "observe": 0.5, "plan": 0.1, "execute": 1.4, "check": 0.2,
                                      "rest": 0.3}


def test_a_kind_whose_reads_run_side_by_side_costs_its_listings_and_its_longest_read():
    graph = [_node("queue/a"), _node("queue/b"), _node("queue/c")]
    calls = ([_call("discover:queue", "sqs", "ListQueues")] * 2
             + [_call("discover:queue#0")] * 1 + [_call("discover:queue#1")] * 3 + [_call("discover:queue#2")] * 2)
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    run = Run(["envctl", "diff"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, None, None, expect=(0,))

    assert result["critical_path"]["discoveries"] == [{"kind": "queue", "calls": 5}]    # 2 listings + 3
    assert result["discovery"]["queue"]["calls"] == 8
    assert result["discovery"]["queue"]["actions"] == {"GetQueueAttributes": 6, "ListQueues": 2}


def test_a_step_whose_reads_run_side_by_side_costs_its_own_calls_and_each_maps_longest_read():
    graph = [_node("bucket/uploads")]
    calls = ([_call("bucket/uploads|apply", "s3", "CreateBucket")] * 3
             + [_call("bucket/uploads|apply#0.0")] * 1 + [_call("bucket/uploads|apply#0.1")] * 2   # one map
             + [_call("bucket/uploads|apply#1.0")] * 1 + [_call("bucket/uploads|apply#1.1")] * 1)  # another
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    run = Run(["envctl", "create"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, "apply", 2, expect=(0,))

    cp = result["critical_path"]
    assert cp["longest_chain"] == {"calls": 6, "path": ["bucket/uploads"]}      # 3 own + 2 + 1
    assert cp["at_parallelism"]["calls"] == 6          # its chain: 6 ÷ 2 workers and 5 reads ÷ 2 threads are below
    assert result["step_calls_by_kind"]["bucket"] == {"steps": 1, "calls_each": 6, "max": 6}


def test_a_step_holds_its_worker_while_its_reads_run():
    """Four steps, each one own call and then one read of 3 pages (weight 4), on 2 workers: the
    workers hold 16 calls' worth of steps, 8 each, though their own calls are 4 ÷ 2 and the reads
    12 ÷ 2 read threads."""
    graph = [_node(f"bucket/b{i}") for i in range(4)]
    calls = [c for i in range(4) for c in [_call(f"bucket/b{i}|apply", "s3", "CreateBucket")]
             + [_call(f"bucket/b{i}|apply#0.0")] * 3]
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    run = Run(["envctl", "create"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, "apply", 2, expect=(0,))

    cp = result["critical_path"]
    assert cp["longest_chain"]["calls"] == 4
    assert cp["at_parallelism"]["calls"] == 8
    assert cp["at_parallelism"]["bound_s"] == pytest.approx(0.4)


def test_the_bound_at_parallelism_is_no_less_than_what_aws_rate_limits_allow():
    # 12 alarms: CloudWatch's 3 writes a second (burst 3), at envctl's 90%: (12 − 2.7) ÷ 2.7 s.
    graph = [_node(f"alarm/a{i}") for i in range(12)]
    calls = [dict(_call(f"alarm/a{i}|apply", "cloudwatch", "PutMetricAlarm"), signing="monitoring")
             for i in range(12)] + [_call(f"queue/q{i}|apply", "sqs", "CreateQueue") for i in range(40)]
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    run = Run(["envctl", "create"], 0, 4.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    result = analyse(run, graph, 0.05, "apply", 10, expect=(0,))

    at_p = result["critical_path"]["at_parallelism"]
    assert at_p["rate_floor"] == {"action": "monitoring:PutMetricAlarm", "calls": 12, "seconds": 3.44}
    assert at_p["bound_s"] == pytest.approx(3.44, abs=0.01)         # above 52 calls ÷ 10 × 50 ms
    assert result["wall_over_bound_at_parallelism"] == pytest.approx(4.0 / 3.444, abs=0.01)


def test_the_account_checks_thread_counts_as_the_main_threads():
    from benchmarks.traced import _current
    from envctl.aws.session import ACCOUNT_CHECK_THREAD

    said = {}

    def record():
        said[threading.current_thread().name] = _current()

    for name in (ACCOUNT_CHECK_THREAD, "a-worker"):
        thread = threading.Thread(target=record, name=name)
        thread.start()
        thread.join()
    assert said == {ACCOUNT_CHECK_THREAD: "main", "a-worker": "unattributed"}
    assert _current() == "main"


def test_the_emulators_lateness_is_reported_beside_the_mean_call_time():
    from benchmarks.run import _call_ms

    calls = [_call("main", "sts", "GetCallerIdentity")] * 4
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    late = Run(["envctl", "diff"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace, answered_late=[0, 0, 0.004, 0.008])
    on_time = Run(["envctl", "diff"], 0, 1.0, 100.0, 0.5, 0.0, "", "", trace=trace)

    call_ms = analyse(late, [], 0.05, None, None, expect=(0,))["call_ms"]
    assert call_ms["emulator_late_mean"] == 3.0
    assert _call_ms(call_ms) == f'{call_ms["mean"]} (3.0)'
    unknown = analyse(on_time, [], 0.05, None, None, expect=(0,))["call_ms"]
    assert unknown["emulator_late_mean"] is None and _call_ms(unknown) == f'{unknown["mean"]}'


def test_the_calls_span_from_the_first_call_sent_to_the_last_answer():
    calls = [dict(_call("main", "sts", "GetCallerIdentity"), start=10.3, end=10.36),
             dict(_call("queue/dlq|apply"), start=10.4, end=10.46),
             dict(_call("queue/work|apply"), start=10.47, end=10.9),     # the last answer
             dict(_call("queue/work|apply"), start=10.5, end=10.55)]
    trace = {"calls": calls, "phases": [], "tag_scan_users": []}
    run = Run(["envctl", "create"], 0, 1.0, 100.0, 0.5, 10.0, "", "", trace=trace)

    result = analyse(run, [_node("queue/dlq"), _node("queue/work", "queue/dlq")], 0.05, "apply", 10, expect=(0,))

    assert result["calls_span_s"] == 0.6                          # 10.3 -> 10.9; start-up and exit left out
    assert result["critical_path"]["bound_s"] == 0.2              # 1 main call, then dlq's 1 and work's 2
    assert result["critical_path"]["at_parallelism"]["bound_s"] == 0.2
    assert result["calls_span_over_bound_at_parallelism"] == 3.0 and result["wall_over_bound"] == 5.0


def test_create_and_destroy_are_judged_against_the_bound_at_the_default_parallelism():
    from benchmarks.run import targets

    def phase(wall: float, plain: float, at: float) -> dict:
        return {"ok": True, "wall_s": wall, "wall_over_bound": round(wall / plain, 2),
                "wall_over_bound_at_parallelism": round(wall / at, 2),
                "critical_path": {"bound_s": plain, "at_parallelism": {"parallelism": 20, "bound_s": at}}}

    result = {"startup": {}, "systems": [
        {"system": "generated 200", "resources": 200,
         "phases": {"create": phase(7.72, 1.1, 6.61), "destroy": phase(5.2, 1.15, 3.94)}},
        {"system": "generated 50", "resources": 50,
         "phases": {"create": phase(1.75, 1.1, 1.1), "destroy": phase(1.5, 1.0, 1.0)}}]}

    rows = {r["target"]: r for r in targets(result)}

    large = rows["generated 200: create ≤ 1.5× the bound at parallelism 20"]
    assert large["met"] and large["measured"] == "7.72 s = 1.17× 6.61 s (critical path alone 1.1 s)"
    assert not rows["generated 50: create ≤ 1.5× the bound at parallelism 20"]["met"]     # 1.59×
    assert rows["generated 50: destroy ≤ 1.5× the bound at parallelism 20"]["met"]        # 1.5× exactly


def test_spawn_times_the_command_in_a_process_of_its_own(tmp_path):
    """The timer says the command's exit code, output, CPU and memory, and how long it ran."""
    import os
    import sys

    from benchmarks.run import spawn

    script = ("import sys, time\n"
              "block = bytearray(60 * 1024 * 1024)\n"       # touched: resident
              "for i in range(0, len(block), 4096): block[i] = 1\n"
              "t = time.process_time()\n"
              "while time.process_time() - t < 0.2: pass\n"  # CPU
              "time.sleep(0.3)\n"
              "print('out'); print('err', file=sys.stderr); sys.exit(3)\n")
    run = spawn([sys.executable, "-c", script], dict(os.environ), cwd=tmp_path)

    assert run.exit_code == 3 and run.stdout == "out\n" and run.stderr == "err\n"
    assert 0.5 <= run.wall_s < 5
    assert 0.2 <= run.cpu_s < 2
    assert 60 <= run.max_rss_mb < 300
    killed = spawn([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
                   dict(os.environ), cwd=tmp_path)
    assert killed.exit_code == -15
    missing = spawn([str(tmp_path / "no-such-program")], dict(os.environ), cwd=tmp_path)
    assert missing.exit_code != 0 and "no-such-program" in missing.stderr
