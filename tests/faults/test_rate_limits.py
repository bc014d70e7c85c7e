"""Raising --parallelism does not turn into a storm of throttling errors.

The emulator keeps AWS's published token buckets (envctl/sandbox/middleware.py RateLimit,
aws_limits=True): CloudWatch allows PutMetricAlarm 3 a second (3 at once) and DescribeAlarms
9; CloudWatch Logs allows PutRetentionPolicy and its tag and metric filter reads 5 a second.
Twelve alarms and twelve log groups made at once overrun them. With envctl's client-side buckets no
call is refused; without them (--no-rate-limit) the same run is throttled, which shows that the
test can fail.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import _register, cli

_register()

ALARMS = 12


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    lines = ["project: pace", "region: eu-north-1", "topics:", "  alarms: {}", "queues:"]
    lines += [f"  q{i}: {{}}" for i in range(ALARMS)]
    lines.append("log_groups:")
    lines += [f"  l{i}: {{retention_days: 7}}" for i in range(ALARMS)]
    lines.append("alarms:")
    for i in range(ALARMS):
        lines += [f"  a{i}:",
                  f"    metric: {{namespace: AWS/SQS, name: ApproximateNumberOfMessagesVisible, queue: q{i}}}",
                  "    statistic: Maximum", "    period_s: 300", '    comparison: ">"', "    threshold: 100",
                  "    notify: [alarms]"]
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "qa.yaml").write_text("\n".join(lines) + "\n")
    return folder


def create(specs: Path, *options: str, parallelism: int) -> None:
    result = CliRunner().invoke(cli, ["--specs", str(specs), *options, "create", "qa", "--yes",
                                      "--parallelism", str(parallelism)])
    assert result.exit_code == 0, result.output[-2000:]


def throttles(faulty, service: str) -> int:
    return sum(n for call, n in faulty.limits.throttled.items() if call.startswith(f"{service}:"))


@pytest.mark.parametrize("parallelism", [10, 50])
def test_paced_calls_stay_within_aws_published_limits(faulty, specs, parallelism):
    faulty.limits.configure({}, aws_limits=True)

    create(specs, parallelism=parallelism)

    alarms = faulty.client("cloudwatch").describe_alarms(AlarmNamePrefix="pace-qa-")["MetricAlarms"]
    assert len(alarms) == ALARMS
    assert throttles(faulty, "monitoring") == 0, faulty.limits.throttled
    assert throttles(faulty, "logs") == 0, faulty.limits.throttled


def test_without_pacing_the_same_run_is_throttled(faulty, specs):
    faulty.limits.configure({}, aws_limits=True)

    create(specs, "--no-rate-limit", parallelism=50)

    assert throttles(faulty, "monitoring") >= 5, faulty.limits.throttled
    assert throttles(faulty, "logs") >= 1, faulty.limits.throttled
