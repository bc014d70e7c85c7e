"""Generated environments of about N resources, for the benchmark: `python -m benchmarks.generate 200 DIR`.

A network (VPC, internet gateway, 2 public + 2 private subnets, one NAT with its EIP, 2 route
tables) and one shared security group, then as many "units" as fit, each a small system of
its own whose resources refer to each other the way the example's do:

    queue q-N (+ its dead-letter queue)  ← schedule s-N sends to it
    topic t-N (e-mail subscription)      ← alarm al-N notifies it
    log group lg-N (a metric filter)     ← alarm al-N watches the filter
    table tb-N
    security group sg-N (ingress from the shared group)
    role r-N (may use q-N, tb-N, lg-N)
    bucket bk-N                          (every fourth unit)

and plain queues to make up the exact count. Only kinds that are cheap on moto are used:
instances, auto scaling groups, databases and functions stay out (moto settles them at
once, so they add little to measure; the example system has one of each).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

PROJECT = "bench"
NETWORK_RESOURCES = 10          # vpc, igw, 4 subnets, eip, nat, 2 route tables
SHARED_RESOURCES = 1            # security group "edge"
UNIT_RESOURCES = 9              # 2 queues, topic, table, log group, alarm, schedule, security group, role
BUCKET_EVERY = 4


def spec(total: int) -> dict:
    """A spec (as plain data) that expands to exactly `total` resources (at least 11)."""
    fixed = NETWORK_RESOURCES + SHARED_RESOURCES
    if total < fixed:
        raise ValueError(f"a generated environment has at least {fixed} resources")
    doc: dict = {
        "project": PROJECT,
        "region": "eu-north-1",
        "tags": {"Owner": "benchmark"},
        "network": {"cidr": "10.0.0.0/16", "zones": 2, "nat": "single",
                    "tiers": {"public": {"prefix": 24, "internet": True}, "private": {"prefix": 20}}},
        "security_groups": {"edge": {"ingress": [{"port": 443, "from": "10.0.0.0/8"}]}},
        "roles": {}, "tables": {}, "queues": {}, "topics": {}, "buckets": {}, "log_groups": {}, "alarms": {},
        "schedules": {},
    }
    left = total - fixed
    i = 0
    while True:
        size = UNIT_RESOURCES + (1 if i % BUCKET_EVERY == 0 else 0)
        if size > left:
            break
        _unit(doc, i)
        left -= size
        i += 1
    for j in range(left):
        doc["queues"][f"x-{j:04d}"] = {}
    return {k: v for k, v in doc.items() if v != {}}


def write(directory: Path, total: int, env: str | None = None) -> str:
    """Write `<env>.yaml` (default `n<total>`) into `directory`; return the environment's name."""
    env = env or f"n{total}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{env}.yaml").write_text(yaml.safe_dump(spec(total), sort_keys=False))
    return env


def _unit(doc: dict, i: int) -> None:
    n = f"{i:04d}"
    doc["queues"][f"q-{n}"] = {"visibility_timeout_s": 60, "dead_letter": {"max_receives": 5}}
    doc["topics"][f"t-{n}"] = {"subscriptions": [{"email": "ops@example.com"}]}
    doc["tables"][f"tb-{n}"] = {"partition_key": "id"}
    doc["log_groups"][f"lg-{n}"] = {"retention_days": 14,
                                    "metric_filters": {"errors": {"pattern": "ERROR", "metric": f"Errors{n}"}}}
    doc["alarms"][f"al-{n}"] = {"metric": {"log_filter": f"lg-{n}.errors"}, "statistic": "Sum", "period_s": 300,
                                "comparison": ">=", "threshold": 1, "notify": [f"t-{n}"]}
    doc["schedules"][f"s-{n}"] = {"rate": "1 hour", "send": {"queue": f"q-{n}", "message": {"unit": i}}}
    doc["security_groups"][f"sg-{n}"] = {"ingress": [{"port": 8080, "from": "edge"}]}
    doc["roles"][f"r-{n}"] = {"assumed_by": "lambda", "allow": [
        {"queue": f"q-{n}", "actions": ["send", "receive"]},
        {"table": f"tb-{n}", "actions": ["read", "write"]},
        {"log_group": f"lg-{n}", "actions": ["write"]},
    ]}
    if i % BUCKET_EVERY == 0:
        doc["buckets"][f"bk-{n}"] = {"versioning": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("total", type=int, help="number of resources")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--env", help="environment name (default n<total>)")
    args = parser.parse_args()
    print(write(args.directory, args.total, args.env))


if __name__ == "__main__":
    main()
