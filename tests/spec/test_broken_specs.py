"""Broken specs through the real CLI: `envctl --specs specs validate` exits 1 and names file:line and why.

Each case is the spec text (or several files), the place the problem must be reported at
and a distinctive part of the message. Every case has exactly one problem, so the test
also proves nothing else is reported. Line numbers count from the case's text: HEAD is
lines 1-2, NETWORK lines 1-7 (see specfiles.py).
"""
from __future__ import annotations

import textwrap

import pytest

from tests.spec.specfiles import HEAD, NETWORK, envctl, no_traceback, write_specs


def spec(*parts: str) -> str:
    return "".join(textwrap.dedent(p) for p in parts)


def case(id: str, files: str | dict[str, str], where: str, message: str):
    files = {"qa.yaml": files} if isinstance(files, str) else files
    return pytest.param(files, where, message, id=id)


def net(body: str) -> str:
    """HEAD + a network section written by the case (starting at line 3)."""
    return HEAD + textwrap.dedent(body)


FUNCTION = """\
    functions:
      ingest:
        runtime: python3.12
        handler: handler.main
        source: functions/ingest
        role: ingest
"""
LAMBDA_ROLE = """\
    roles:
      ingest: {assumed_by: lambda}
"""
DATABASE = """\
    databases:
      main:
        engine: postgres
        version: "16.4"
        instance_class: db.t3.micro
        storage_gb: 20
        tier: private
"""

CASES = [
    # ------------------------------------------------------------ YAML and files
    case("yaml-syntax-indentation", HEAD + "queues:\n  work: {}\n imports: {}\n",
         "specs/qa.yaml:5", "invalid YAML: expected <block end>, but found '<block mapping start>'"),
    case("yaml-syntax-unclosed-quote", HEAD + "tags:\n  Owner: 'platform\n  Team: x\n",
         "specs/qa.yaml:6", "found unexpected end of stream (while scanning a quoted scalar at line 4)"),
    case("yaml-syntax-tab", HEAD + "queues:\n  work:\n\t  fifo: true\n",
         "specs/qa.yaml:5", "invalid YAML: found character '\\t' that cannot start any token"),
    # libyaml (the fast loader) would take a tab inside a line; PyYAML refuses it, and still does.
    case("yaml-syntax-tab-inside-a-line", HEAD + "tags:\n  Owner:\tplatform\n",
         "specs/qa.yaml:4", "invalid YAML: found character '\\t' that cannot start any token"),
    case("empty-file", "", "specs/qa.yaml:1", "the file is empty; a spec is a YAML mapping"),
    case("only-comments", "# to be written\n", "specs/qa.yaml:1", "the file is empty"),
    case("spec-is-a-list", "- project: acme\n- region: eu-north-1\n",
         "specs/qa.yaml:1", "a spec must be a YAML mapping of sections"),
    case("duplicate-key", HEAD + "queues:\n  work: {}\n  work: {fifo: true}\n",
         "specs/qa.yaml:5", "queues.work: duplicate key (already set above)"),
    case("yaml-merge-key", HEAD + "queues:\n  work: &q {delay_s: 5}\n  imports:\n    <<: *q\n",
         "specs/qa.yaml:6", "queues.imports: YAML merge keys (<<) are not supported; use extends:"),
    case("extends-missing-file", "extends: base.yaml\n" + HEAD,
         "specs/qa.yaml:1", "extends: file 'base.yaml' not found next to qa.yaml"),
    case("extends-not-a-path", "extends: [base.yaml]\n" + HEAD,
         "specs/qa.yaml:1", "extends: must be the path of another spec file"),
    case("extends-cycle", {"qa.yaml": "extends: base.yaml\n", "base.yaml": "extends: qa.yaml\n" + HEAD},
         # the first file of a cycle (by name) is validated: base.yaml here
         "specs/qa.yaml:1", "extends cycle: specs/base.yaml -> specs/qa.yaml -> specs/base.yaml"),
    case("extends-itself", "extends: qa.yaml\n" + HEAD,
         "specs/qa.yaml:1", "extends cycle: specs/qa.yaml -> specs/qa.yaml"),

    # ------------------------------------------------------------ keys and types
    case("unknown-section", HEAD + "queus:\n  work: {}\n",
         "specs/qa.yaml:3", "queus: unknown key; did you mean 'queues'?"),
    case("unknown-key-did-you-mean", HEAD + "queues:\n  work:\n    visiblity_timeout_s: 60\n",
         "specs/qa.yaml:5", "queues.work.visiblity_timeout_s: unknown key; did you mean 'visibility_timeout_s'?"),
    case("unknown-key-lists-allowed", HEAD + "queues:\n  work: {colour: blue}\n",
         "specs/qa.yaml:4", "queues.work.colour: unknown key; allowed here: fifo, visibility_timeout_s, retention_s"),
    case("unknown-key-aliased-field", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {prefix: 24, internet: true}
         security_groups:
           web:
             ingress:
               - {port: 443, form: 10.0.0.0/8}
         """), "specs/qa.yaml:10", "security_groups.web.ingress[0].form: unknown key; did you mean 'from'?"),
    case("wrong-type-integer", HEAD + "queues:\n  work:\n    visibility_timeout_s: five minutes\n",
         "specs/qa.yaml:5", "queues.work.visibility_timeout_s: input should be a valid integer"),
    case("wrong-type-boolean", HEAD + "buckets:\n  uploads: {versioning: sometimes}\n",
         "specs/qa.yaml:4", "buckets.uploads.versioning: input should be a valid boolean"),
    case("wrong-type-section", HEAD + "queues: [work, imports]\n",
         "specs/qa.yaml:3", "queues: input should be a valid dictionary"),
    case("missing-required-key", "project: acme\nqueues: {}\n",
         "specs/qa.yaml:1", "region: required key is missing"),
    case("missing-required-nested-key", NETWORK + spec("""\
         applications:
           orders:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.small
             tier: private
         """), "specs/qa.yaml:9", "applications.orders.capacity: required key is missing"),
    case("invalid-resource-name", HEAD + "queues:\n  Work_Units: {}\n",
         "specs/qa.yaml:4", "queues.Work_Units: invalid name 'Work_Units': use lowercase letters, digits and dashes"),
    case("resource-name-over-48", HEAD + "queues:\n  " + "w" * 49 + ": {}\n",
         "specs/qa.yaml:4", "is 49 characters, over the limit of 48"),
    case("invalid-project-name", "project: ACME\nregion: eu-north-1\n",
         "specs/qa.yaml:1", "project: 'ACME' is not a valid name"),
    case("invalid-region", "project: acme\nregion: europe\n", "specs/qa.yaml:2", "region: 'europe' is not a valid region"),
    case("invalid-account", HEAD + "account: '12345'\n", "specs/qa.yaml:3", "account: '12345' is not a valid account"),
    case("ttl-not-a-lifetime", HEAD + "ttl: 3 days\n", "specs/qa.yaml:3", "ttl: '3 days' is not a valid ttl"),
    case("ttl-on-a-protected-environment", HEAD + "protected: true\nttl: 3d\n",
         "specs/qa.yaml:4", "ttl: a protected environment cannot have a ttl"),
    case("ttl-inherited-by-a-protected-environment", {"base.yaml": HEAD + "ttl: 1w\n",
                                                      "qa.yaml": "extends: base.yaml\nprotected: true\n"},
         "specs/base.yaml:3", "ttl: a protected environment cannot have a ttl"),
    case("choice-not-allowed", net("""\
         network:
           cidr: 10.0.0.0/16
           nat: sometimes
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:5", "network.nat: 'sometimes' is not allowed; input should be 'none', 'single' or 'per_zone'"),
    case("unknown-runtime", HEAD + spec(LAMBDA_ROLE, FUNCTION.replace("python3.12", "python2.7")),
         "specs/qa.yaml:7", "functions.ingest.runtime: 'python2.7' is not allowed"),
    case("db-storage-below-minimum", NETWORK + spec(DATABASE.replace("storage_gb: 20", "storage_gb: 10")),
         "specs/qa.yaml:13", "databases.main.storage_gb: input should be greater than or equal to 20"),
    case("table-provisioned-without-capacity", HEAD + "tables:\n  sessions: {partition_key: id, billing: provisioned}\n",
         "specs/qa.yaml:4", "provisioned billing needs read_capacity and write_capacity"),
    case("alarm-period", HEAD + spec("""\
         alarms:
           cpu:
             metric: {namespace: AWS/EC2, name: CPUUtilization}
             period_s: 45
             comparison: ">"
             threshold: 80
         """), "specs/qa.yaml:6", "alarms.cpu.period_s: period must be 10, 30 or a multiple of 60 seconds, not 45"),
    case("subscription-two-endpoints", HEAD + spec("""\
         topics:
           alarms:
             subscriptions:
               - {email: ops@example.com, sms: "+358401234567"}
         """), "specs/qa.yaml:6", "a subscription is exactly one of email, sms, queue, function"),
    case("sms-not-e164", HEAD + "topics:\n  alarms:\n    subscriptions:\n      - {sms: '0401234567'}\n",
         "specs/qa.yaml:6", "topics.alarms.subscriptions[0].sms: '0401234567' is not a valid sms"),

    # ------------------------------------------------------------ network
    case("vpc-cidr-invalid", net("""\
         network:
           cidr: 10.0.0.0/33
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:4", "network.cidr: '10.0.0.0/33' is not a valid IPv4 CIDR"),
    case("vpc-cidr-host-bits", net("""\
         network:
           cidr: 10.0.0.1/16
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:4", "'10.0.0.1/16' is not a valid IPv4 CIDR (10.0.0.1/16 has host bits set)"),
    case("vpc-cidr-too-large", net("""\
         network:
           cidr: 10.0.0.0/8
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:4", "network.cidr: a VPC CIDR must be /16 to /28, not /8"),
    case("zones-0", net("""\
         network:
           cidr: 10.0.0.0/16
           zones: 0
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:5", "network.zones: input should be greater than or equal to 1"),
    case("zones-7", net("""\
         network:
           cidr: 10.0.0.0/16
           zones: 7
           tiers:
             public: {prefix: 24, internet: true}
         """), "specs/qa.yaml:5", "network.zones: input should be less than or equal to 6"),
    case("tier-prefix-and-cidrs", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {prefix: 24, cidrs: [10.0.0.0/24, 10.0.1.0/24], internet: true}
         """), "specs/qa.yaml:6", "network.tiers.public: give either prefix (carved automatically) or cidrs"),
    case("tier-cidr-invalid", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {cidrs: [10.0.0.0/24, 10.0.1.0/33], internet: true}
         """), "specs/qa.yaml:6", "'10.0.1.0/33' is not a valid IPv4 CIDR"),
    case("tiers-overlap", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {cidrs: [10.0.0.0/24, 10.0.1.0/24], internet: true}
             private: {cidrs: [10.0.1.0/24, 10.0.2.0/24]}
         """), "specs/qa.yaml:5", "network.tiers: private[0] 10.0.1.0/24 overlaps public[1] 10.0.1.0/24"),
    case("tier-larger-than-vpc", net("""\
         network:
           cidr: 10.0.0.0/24
           tiers:
             public: {prefix: 16, internet: true}
         """), "specs/qa.yaml:5", "tier 'public': a /16 subnet is larger than the VPC's /24"),
    case("tiers-do-not-fit", net("""\
         network:
           cidr: 10.0.0.0/24
           tiers:
             public: {prefix: 25, internet: true}
             private: {prefix: 26}
         """), "specs/qa.yaml:5", "tiers do not fit in the VPC's 10.0.0.0/24: no room for 'private' zone 1 (/26)"),
    case("tier-cidrs-count", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {cidrs: [10.0.0.0/24], internet: true}
         """), "specs/qa.yaml:5", "tier 'public' lists 1 CIDRs for 2 zones"),
    case("tier-cidr-outside-vpc", net("""\
         network:
           cidr: 10.0.0.0/16
           tiers:
             public: {cidrs: [10.0.0.0/24, 10.1.0.0/24], internet: true}
         """), "specs/qa.yaml:5", "tier 'public': 10.1.0.0/24 is not inside the VPC's 10.0.0.0/16"),
    case("nat-without-internet-tier", net("""\
         network:
           cidr: 10.0.0.0/16
           nat: single
           tiers:
             private: {prefix: 20}
         """), "specs/qa.yaml:5", "network.nat: nat: single needs a tier with internet: true"),
    case("database-in-one-zone", net("""\
         network:
           cidr: 10.0.0.0/16
           zones: 1
           tiers:
             public: {prefix: 24, internet: true}
             private: {prefix: 20}
         """) + spec(DATABASE), "specs/qa.yaml:5", "database 'main' needs a subnet group in at least 2 zones"),

    # ------------------------------------------------------------ security groups
    case("ssh-open-to-world", NETWORK + "security_groups:\n  bastion:\n    ingress:\n      - {port: 22, from: 0.0.0.0/0}\n",
         "specs/qa.yaml:11", "security_groups.bastion.ingress[0]: SSH open to 0.0.0.0/0 is refused; narrow the "
                             "source or set allow_world: true on this rule"),
    case("rdp-open-to-world", NETWORK + "security_groups:\n  win:\n    ingress:\n      - {port: 3389, from: 0.0.0.0/0}\n",
         "specs/qa.yaml:11", "RDP open to 0.0.0.0/0 is refused"),
    case("ssh-in-a-port-range", NETWORK + "security_groups:\n  b:\n    ingress:\n      - {ports: 20-30, from: 0.0.0.0/0}\n",
         "specs/qa.yaml:11", "SSH open to 0.0.0.0/0 is refused"),
    case("ssh-open-to-world-ipv6", NETWORK + "security_groups:\n  b:\n    ingress:\n      - {port: 22, from: '::/0'}\n",
         "specs/qa.yaml:11", "SSH open to ::/0 is refused"),
    case("rule-without-port", NETWORK + "security_groups:\n  b:\n    ingress:\n      - {from: 10.0.0.0/8}\n",
         "specs/qa.yaml:11", "a tcp rule needs port or ports (one of them)"),
    case("invalid-cidr-source", NETWORK + "security_groups:\n  b:\n    ingress:\n      - {port: 22, from: 10.0.0.300/8}\n",
         "specs/qa.yaml:11", "security_groups.b.ingress[0].from: '10.0.0.300/8' is not a valid CIDR"),
    case("missing-group-from", NETWORK + spec("""\
         security_groups:
           app:
             ingress:
               - {port: 22, from: bastion}
         """), "specs/qa.yaml:11", "security_groups.app.ingress[0].from: no security group named 'bastion'; defined: app"),
    case("group-reference-cycle", NETWORK + spec("""\
         security_groups:
           app:
             ingress:
               - {port: 8080, from: web}
           web:
             egress:
               - {port: 8080, to: app}
         """), "specs/qa.yaml:9", "security groups reference each other in a cycle (app -> web -> app)"),
    case("groups-without-network", HEAD + "security_groups:\n  app:\n    ingress:\n      - {port: 80, from: 10.0.0.0/8}\n",
         "specs/qa.yaml:3", "security groups live in the VPC: add a network: section"),
    case("missing-group-on-instance", NETWORK + spec("""\
         instances:
           bastion:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.micro
             tier: public
             security_groups: [bastion]
         """), "specs/qa.yaml:13", "instances.bastion.security_groups[0]: no security group named 'bastion'"),

    # ------------------------------------------------------------ roles and grants
    case("unknown-grant-action", HEAD + spec("""\
         queues:
           work: {}
         roles:
           app:
             assumed_by: ec2
             allow:
               - {queue: work, actions: [send, fly]}
         """), "specs/qa.yaml:9", "roles.app.allow[0]: unknown action 'fly' on a queue; choose from: send, receive"),
    case("grant-on-two-resources", HEAD + spec("""\
         roles:
           app:
             assumed_by: ec2
             allow:
               - {queue: work, table: sessions, actions: [read]}
         """), "specs/qa.yaml:7", "name exactly one resource (queue, table, bucket, log_group, topic, function); got 2"),
    case("unknown-principal", HEAD + "roles:\n  app: {assumed_by: ec3}\n",
         "specs/qa.yaml:4", "roles.app.assumed_by: 'ec3' is not allowed"),
    case("grant-on-missing-table", HEAD + spec("""\
         roles:
           app:
             assumed_by: ec2
             allow:
               - {table: sessions, actions: [read, write]}
         """), "specs/qa.yaml:7", "roles.app.allow[0].table: no table named 'sessions'; tables is empty"),
    case("missing-role", NETWORK + spec("""\
         applications:
           orders:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.small
             tier: private
             role: app
             capacity: {min: 1, desired: 1, max: 2}
         """), "specs/qa.yaml:13", "applications.orders.role: no role named 'app'; roles is empty"),
    case("instance-with-lambda-role", NETWORK + spec(LAMBDA_ROLE, """\
         instances:
           bastion:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.micro
             tier: public
             role: ingest
         """), "specs/qa.yaml:15", "instances.bastion.role: role 'ingest' is assumed_by lambda, but this needs a role "
                                   "assumed_by ec2"),
    case("function-with-ec2-role", {
        "qa.yaml": HEAD + spec("roles:\n  ingest: {assumed_by: ec2}\n", FUNCTION),
        "functions/ingest/handler.py": "def main(event, context):\n    return event\n"},
         "specs/qa.yaml:10", "functions.ingest.role: role 'ingest' is assumed_by ec2, but this needs a role "
                             "assumed_by lambda"),

    # ------------------------------------------------------------ references between sections
    case("missing-tier", NETWORK + spec("""\
         instances:
           bastion:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.micro
             tier: data
         """), "specs/qa.yaml:12", "instances.bastion.tier: no tier named 'data'; tiers: public, private"),
    case("tier-without-network", HEAD + spec(DATABASE),
         "specs/qa.yaml:9", "databases.main.tier: a tier needs a network: section"),
    case("missing-topic", HEAD + spec("""\
         alarms:
           cpu:
             metric: {namespace: AWS/EC2, name: CPUUtilization}
             comparison: ">"
             threshold: 80
             notify: [alarms]
         """), "specs/qa.yaml:8", "alarms.cpu.notify[0]: no topic named 'alarms'; topics is empty"),
    case("missing-log-group", HEAD + spec("""\
         alarms:
           app-errors:
             metric: {log_filter: app.errors}
             comparison: ">="
             threshold: 1
         """), "specs/qa.yaml:5", "alarms.app-errors.metric.log_filter: no log group named 'app'; log_groups is empty"),
    case("missing-metric-filter", HEAD + spec("""\
         log_groups:
           app:
             metric_filters:
               error: {pattern: ERROR, metric: AppErrors}
         alarms:
           app-errors:
             metric: {log_filter: app.errors}
             comparison: ">="
             threshold: 1
         """), "specs/qa.yaml:9", "log group 'app' has no metric filter 'errors'; did you mean 'error'?"),
    case("alarm-on-missing-database", HEAD + spec("""\
         alarms:
           db-cpu:
             metric: {namespace: AWS/RDS, name: CPUUtilization, database: main}
             comparison: ">"
             threshold: 80
         """), "specs/qa.yaml:5", "alarms.db-cpu.metric.database: no database named 'main'"),
    case("missing-queue-in-reference", {
        "qa.yaml": HEAD + spec(LAMBDA_ROLE, FUNCTION) + "    environment:\n      WORK_QUEUE: ${queues.work-units.url}\n",
        "functions/ingest/handler.py": "def main(event, context):\n    return event\n"},
         "specs/qa.yaml:12", "functions.ingest.environment.WORK_QUEUE: ${queues.work-units.url}: no queue named "
                             "'work-units'"),
    case("reference-to-unknown-attribute", {
        "qa.yaml": HEAD + spec("queues:\n  work: {}\n", LAMBDA_ROLE, FUNCTION)
                   + "    environment:\n      WORK_QUEUE: ${queues.work.endpoint}\n",
        "functions/ingest/handler.py": ""},
         "specs/qa.yaml:14", "${queues.work.endpoint}: a queue has no attribute 'endpoint'; one of url, arn, name"),
    case("reference-to-unknown-section", {
        "qa.yaml": HEAD + spec(LAMBDA_ROLE, FUNCTION) + "    environment:\n      WORK_QUEUE: ${queue.work.url}\n",
        "functions/ingest/handler.py": ""},
         "specs/qa.yaml:12", "${queue.work.url}: unknown section 'queue'"),
    case("subscription-to-missing-queue", HEAD + "topics:\n  jobs:\n    subscriptions:\n      - {queue: work}\n",
         "specs/qa.yaml:6", "topics.jobs.subscriptions[0].queue: no queue named 'work'; queues is empty"),
    case("subscription-to-missing-function", HEAD + "topics:\n  jobs:\n    subscriptions:\n      - {function: ingest}\n",
         "specs/qa.yaml:6", "topics.jobs.subscriptions[0].function: no function named 'ingest'; functions is empty"),
    case("bucket-notifies-missing-function", HEAD + spec("""\
         buckets:
           uploads:
             notify:
               - {function: ingest, events: [created]}
         """), "specs/qa.yaml:6", "buckets.uploads.notify[0].function: no function named 'ingest'"),
    case("bucket-notifies-fifo-queue", HEAD + spec("""\
         queues:
           work: {fifo: true}
         buckets:
           uploads:
             notify:
               - {queue: work}
         """), "specs/qa.yaml:8", "buckets.uploads.notify[0].queue: S3 cannot notify a FIFO queue"),
    case("schedule-to-missing-queue", HEAD + spec("""\
         schedules:
           nightly-import:
             cron: "0 2 * * ? *"
             send: {queue: imports, message: go}
         """), "specs/qa.yaml:6", "schedules.nightly-import.send.queue: no queue named 'imports'; queues is empty"),
    case("schedule-to-fifo-queue", HEAD + spec("""\
         queues:
           imports: {fifo: true}
         schedules:
           nightly-import:
             rate: 1 day
             send: {queue: imports, message: go}
         """), "specs/qa.yaml:8", "a schedule sends to standard queues only"),

    # ------------------------------------------------------------ schedules, logs, capacity
    case("cron-five-fields", HEAD + "schedules:\n  s:\n    cron: '0 2 * * *'\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "schedules.s.cron: cron '0 2 * * *' needs 6 fields"),
    case("cron-without-question-mark", HEAD + "schedules:\n  s:\n    cron: '0 2 * * * *'\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "exactly one of day-of-month and day-of-week must be '?'"),
    case("cron-minute-60", HEAD + "schedules:\n  s:\n    cron: '60 2 * * ? *'\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "'60' is not a valid minutes (0-59)"),
    case("cron-bad-month-name", HEAD + "schedules:\n  s:\n    cron: '0 2 ? FOO MON *'\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "'FOO' is not a valid month (1-12)"),
    case("cron-step-zero", HEAD + "schedules:\n  s:\n    cron: '*/0 * * * ? *'\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "bad step '0' in minutes"),
    case("rate-unknown-unit", HEAD + "schedules:\n  s:\n    rate: 5 fortnights\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "schedules.s.rate: rate '5 fortnights' must be 'N minutes', 'N hours' or 'N days'"),
    case("rate-plural-for-one", HEAD + "schedules:\n  s:\n    rate: 1 minutes\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "rate '1 minutes': use '1 minute'"),
    case("rate-zero", HEAD + "schedules:\n  s:\n    rate: 0 minutes\n    send: {queue: q, message: go}\n",
         "specs/qa.yaml:5", "rate '0 minutes' must be at least 1"),
    case("cron-and-rate", HEAD + "schedules:\n  s:\n    cron: '0 2 * * ? *'\n    rate: 1 day\n"
                                 "    send: {queue: q, message: go}\n",
         "specs/qa.yaml:4", "schedules.s: give cron or rate (exactly one)"),
    case("log-retention", HEAD + "log_groups:\n  app: {retention_days: 10}\n",
         "specs/qa.yaml:4", "log_groups.app.retention_days: CloudWatch Logs accepts only 1, 3, 5, 7, 14"),
    case("capacity-min-over-desired", NETWORK + spec("""\
         applications:
           orders:
             image: ami-0a1b2c3d4e5f67890
             instance_type: t3.small
             tier: private
             capacity: {min: 3, desired: 2, max: 4}
         """), "specs/qa.yaml:13", "applications.orders.capacity: need min ≤ desired ≤ max, got 3 ≤ 2 ≤ 4"),

    # ------------------------------------------------------------ names, tags, functions
    case("bucket-name-too-long-for-s3", "project: acme-analytics-platform-europe\nregion: eu-north-1\n"
                                        "buckets:\n  partner-uploads-incoming-files: {}\n",
         "specs/qa.yaml:4", "the bucket name 'acme-analytics-platform-europe-qa-partner-uploads-incoming-files' is 64 "
                            "characters, over the limit of 63 (set name: to choose another)"),
    case("bucket-explicit-name-invalid", HEAD + "buckets:\n  uploads: {name: Acme_Uploads}\n",
         "specs/qa.yaml:4", "the bucket name 'Acme_Uploads' is not allowed: 3 to 63 lowercase letters"),
    case("queue-name-too-long-for-sqs", "project: acme-analytics-platform-for-the-nordics-eu\nregion: eu-north-1\n"
                                        "queues:\n  units-of-work-for-the-parallel-workers-pool: {}\n",
         "specs/qa.yaml:4", "is 89 characters, over the limit of 80; use a shorter project, environment or resource name"),
    case("tag-key-envctl-prefix", HEAD + "tags:\n  envctl:x: mine\n",   # also: ":x:" must not become an emoji
         "specs/qa.yaml:4", "tags.envctl:x: tag key 'envctl:x': the aws: and envctl: prefixes are reserved"),
    case("tag-key-aws-prefix", HEAD + "tags:\n  aws:createdBy: me\n",
         "specs/qa.yaml:4", "tag key 'aws:createdBy': the aws: and envctl: prefixes are reserved"),
    case("function-source-missing", HEAD + spec(LAMBDA_ROLE, FUNCTION),
         "specs/qa.yaml:9", "functions.ingest.source: source folder specs/functions/ingest does not exist"),
    case("reserved-lambda-variable", {
        "qa.yaml": HEAD + spec(LAMBDA_ROLE, FUNCTION) + "    environment:\n      AWS_REGION: eu-west-1\n",
        "functions/ingest/": ""},
         "specs/qa.yaml:12", "functions.ingest.environment.AWS_REGION: AWS_REGION is reserved by Lambda"),

    # ------------------------------------------------------------ extends: where the value was written
    case("overlay-value-points-at-overlay", {
        "base.yaml": HEAD + "queues:\n  work:\n    visibility_timeout_s: 30\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work:\n    visibility_timeout_s: 99999\n"},
         "specs/qa.yaml:4", "queues.work.visibility_timeout_s: input should be less than or equal to 43200"),
    case("base-value-points-at-base", {
        "base.yaml": HEAD + "queues:\n  work:\n    delay_s: 9000\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work:\n    visibility_timeout_s: 60\n"},
         "specs/base.yaml:5", "queues.work.delay_s: input should be less than or equal to 900"),
    case("overlay-null-removes-a-referenced-queue", {
        "base.yaml": HEAD + spec("""\
             queues:
               work: {}
             roles:
               app:
                 assumed_by: ec2
                 allow:
                   - {queue: work, actions: [send]}
             """),
        "qa.yaml": "extends: base.yaml\nqueues:\n  work: null\n"},
         "specs/base.yaml:9", "roles.app.allow[0].queue: no queue named 'work'; queues is empty"),
]


@pytest.mark.parametrize(("files", "where", "message"), CASES)
def test_broken_spec_is_reported_at_its_line(tmp_path, monkeypatch, files, where, message):
    write_specs(tmp_path, files)
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 1, result.output
    assert no_traceback(result), result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(problems) == 1, result.stderr
    assert problems[0].startswith(f"error: {where}: "), result.stderr
    assert message in problems[0], result.stderr
    assert result.stdout == ""


def test_the_table_covers_enough_broken_specs():
    assert len(CASES) >= 45


VALID = [
    case("ssh-to-world-with-allow-world",
         NETWORK + "security_groups:\n  bastion:\n    ingress:\n      - {port: 22, from: 0.0.0.0/0, allow_world: true}\n",
         "", ""),
    case("rdp-to-world-with-allow-world",
         NETWORK + "security_groups:\n  win:\n    ingress:\n      - {port: 3389, from: 0.0.0.0/0, allow_world: true}\n",
         "", ""),
    case("https-to-world", NETWORK + "security_groups:\n  web:\n    ingress:\n      - {port: 443, from: 0.0.0.0/0}\n",
         "", ""),
    case("ssh-from-a-narrow-cidr", NETWORK + "security_groups:\n  b:\n    ingress:\n      - {port: 22, from: 10.0.0.0/8}\n",
         "", ""),
    case("no-nat-without-internet-tier", net("""\
         network:
           cidr: 10.0.0.0/16
           nat: none
           tiers:
             private: {prefix: 20}
         """), "", ""),
    case("database-in-two-zones", NETWORK + spec(DATABASE), "", ""),
    case("overlay-removes-the-only-grant-too", {
        "base.yaml": HEAD + "queues:\n  work: {}\nroles:\n  app:\n    assumed_by: ec2\n    allow:\n"
                            "      - {queue: work, actions: [send]}\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work: null\nroles:\n  app:\n    allow: []\n"}, "", ""),
]


@pytest.mark.parametrize(("files", "where", "message"), VALID)
def test_near_misses_are_valid(tmp_path, monkeypatch, files, where, message):
    write_specs(tmp_path, files)
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "✓ qa"
    assert result.stderr == ""


def test_every_problem_is_reported_not_only_the_first(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD + spec("""\
        queues:
          work:
            visiblity_timeout_s: 60
            delay_s: 901
        log_groups:
          app: {retention_days: 10}
        """)})
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: specs/qa.yaml:5: queues.work.visiblity_timeout_s: unknown key; did you mean 'visibility_timeout_s'?",
        "error: specs/qa.yaml:6: queues.work.delay_s: input should be less than or equal to 900",
        "error: specs/qa.yaml:8: log_groups.app.retention_days: CloudWatch Logs accepts only 1, 3, 5, 7, 14, 30, 60, "
        "90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 days, not 10",
    ]


def test_cross_section_problems_are_all_reported_too(tmp_path, monkeypatch):
    write_specs(tmp_path, {"qa.yaml": HEAD + spec("""\
        roles:
          app:
            assumed_by: ec2
            allow:
              - {queue: work, actions: [send]}
              - {table: sessions, actions: [read]}
        alarms:
          cpu:
            metric: {namespace: AWS/EC2, name: CPUUtilization}
            comparison: ">"
            threshold: 80
            notify: [alarms]
        """)})
    monkeypatch.chdir(tmp_path)

    result = envctl("validate")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: specs/qa.yaml:7: roles.app.allow[0].queue: no queue named 'work'; queues is empty",
        "error: specs/qa.yaml:8: roles.app.allow[1].table: no table named 'sessions'; tables is empty",
        "error: specs/qa.yaml:14: alarms.cpu.notify[0]: no topic named 'alarms'; topics is empty",
    ]
