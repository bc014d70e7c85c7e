"""The spec language: pydantic models in the user's words, matching specs/*.yaml.

Every model refuses unknown keys. Checks that need one field or one section live here as
validators; checks across sections (references, names, the network's carving) live in
`envctl.spec.validate`, which runs after these models have parsed.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=48)]
"""A logical name: lowercase letters, digits and dashes (it becomes part of AWS names)."""


class Model(BaseModel):
    # defer_build: a model's validator is built when it is first used, not when the module is
    # imported. Validating a spec builds its models' in one go, inside the spec's own, and
    # every command then starts 40 ms sooner (with the provisioners' Props, which do the same).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# --------------------------------------------------------------------------- network

class Tier(Model):
    """One tier of subnets: a subnet in every zone, carved from the VPC's CIDR."""

    prefix: int | None = Field(None, ge=16, le=28, description="prefix length of each subnet")
    cidrs: list[str] | None = Field(None, description="explicit CIDRs, one per zone")
    internet: bool = Field(False, description="public: routed to the internet gateway")
    nat: bool = Field(True, description="non-internet tiers: route 0.0.0.0/0 through NAT")

    @model_validator(mode="after")
    def _one_size(self):
        if (self.prefix is None) == (self.cidrs is None):
            raise ValueError("give either prefix (carved automatically) or cidrs (one per zone), not both or neither")
        for c in self.cidrs or []:
            _cidr(c)
        return self


class Network(Model):
    cidr: str = Field(description="the VPC's IPv4 CIDR, /16 to /28")
    zones: int = Field(2, ge=1, le=6, description="subnets of every tier in the first N zones (a, b, …)")
    nat: Literal["none", "single", "per_zone"] = "single"
    tiers: dict[Name, Tier] = Field(min_length=1)

    @field_validator("cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        net = _cidr(v)
        if not 16 <= net.prefixlen <= 28:
            raise ValueError(f"a VPC CIDR must be /16 to /28, not /{net.prefixlen}")
        return v


def _cidr(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({e})") from None


# --------------------------------------------------------------------- security groups

Protocol = Literal["tcp", "udp", "icmp", "all"]
WORLD = ("0.0.0.0/0", "::/0")
REMOTE_ADMIN_PORTS = {22: "SSH", 3389: "RDP"}


class _Rule(Model):
    port: int | None = Field(None, ge=0, le=65535)
    ports: str | None = Field(None, pattern=r"^\d{1,5}-\d{1,5}$", description='a range, "8000-8100"')
    protocol: Protocol = "tcp"
    description: str | None = None
    allow_world: bool = Field(False, description="required to open SSH or RDP to 0.0.0.0/0")

    @model_validator(mode="after")
    def _ports(self):
        if self.protocol in ("tcp", "udp"):
            if (self.port is None) == (self.ports is None):
                raise ValueError(f"a {self.protocol} rule needs port or ports (one of them)")
            lo, hi = self.port_range
            if lo > hi or hi > 65535:
                raise ValueError(f"invalid port range {self.ports!r}")
        elif self.port is not None or self.ports is not None:
            raise ValueError(f"a {self.protocol} rule takes no port")
        return self

    @property
    def port_range(self) -> tuple[int, int]:
        if self.protocol not in ("tcp", "udp"):
            return (-1, -1)
        if self.port is not None:
            return (self.port, self.port)
        lo, hi = self.ports.split("-")
        return (int(lo), int(hi))

    def opens_admin_port(self) -> str | None:
        lo, hi = self.port_range
        if self.protocol == "all":
            return "SSH"
        if self.protocol != "tcp":
            return None
        return next((n for p, n in REMOTE_ADMIN_PORTS.items() if lo <= p <= hi), None)


class IngressRule(_Rule):
    source: str = Field(alias="from", description="a CIDR, another group's name, or self")

    @model_validator(mode="after")
    def _world(self):
        if self.source in WORLD and not self.allow_world:
            service = self.opens_admin_port()
            if service:
                raise ValueError(f"{service} open to {self.source} is refused; "
                                 "narrow the source or set allow_world: true on this rule")
        return self


class EgressRule(_Rule):
    target: str = Field(alias="to", description="a CIDR, another group's name, or self")


class SecurityGroup(Model):
    description: str | None = None
    ingress: list[IngressRule] = []
    egress: list[EgressRule] | None = Field(None, description="default: all outbound traffic allowed (AWS's default)")


# ----------------------------------------------------------------------------- roles

PRINCIPALS = {
    "ec2": "ec2.amazonaws.com",
    "lambda": "lambda.amazonaws.com",
    "ecs-tasks": "ecs-tasks.amazonaws.com",
    "events": "events.amazonaws.com",
    "states": "states.amazonaws.com",
}

# Plain action words → exact IAM actions, per kind of resource. No wildcards.
GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "queue": {
        "send": ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
        "receive": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
    },
    "table": {
        "read": ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                 "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"),
        "write": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"),
    },
    "bucket": {
        "read": ("s3:GetObject", "s3:ListBucket"),
        "write": ("s3:PutObject", "s3:DeleteObject"),
    },
    "log_group": {
        "read": ("logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"),
        "write": ("logs:CreateLogStream", "logs:PutLogEvents"),
    },
    "topic": {
        "publish": ("sns:Publish",),
    },
    "function": {
        "invoke": ("lambda:InvokeFunction",),
    },
}


class Grant(Model):
    """What a role may do on one resource of this spec: exactly one resource key."""

    queue: Name | None = None
    table: Name | None = None
    bucket: Name | None = None
    log_group: Name | None = None
    topic: Name | None = None
    function: Name | None = None
    actions: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_target(self):
        given = [k for k in GRANTS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"name exactly one resource ({', '.join(GRANTS)}); got {len(given) or 'none'}")
        allowed = GRANTS[given[0]]
        bad = [a for a in self.actions if a not in allowed]
        if bad:
            raise ValueError(f"unknown action {bad[0]!r} on a {given[0]}; choose from: {', '.join(allowed)}")
        return self

    @property
    def target(self) -> tuple[str, str]:
        kind = next(k for k in GRANTS if getattr(self, k) is not None)
        return kind, getattr(self, kind)


class Role(Model):
    assumed_by: Literal["ec2", "lambda", "ecs-tasks", "events", "states"]
    allow: list[Grant] = []
    managed_policies: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/.+$")]] = Field(
        [], description="ARNs of managed policies to attach")


# ------------------------------------------------------------------------- compute

ImageRef = Annotated[str, Field(pattern=r"^(ami-[0-9a-f]{8,17}|ssm:/.+)$",
                                description="an AMI id or ssm:<public parameter path>")]


class Instance(Model):
    image: ImageRef
    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    tier: Name
    security_groups: list[Name] = []
    role: Name | None = None
    public_ip: bool | None = Field(None, description="default: true in an internet tier")
    volume_gb: int = Field(8, ge=1, le=16384)
    user_data: str | None = None
    key_name: str | None = None


class Capacity(Model):
    min: int = Field(ge=0)
    desired: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _order(self):
        if not self.min <= self.desired <= self.max:
            raise ValueError(f"need min ≤ desired ≤ max, got {self.min} ≤ {self.desired} ≤ {self.max}")
        return self


class Application(Model):
    image: ImageRef
    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    tier: Name
    security_groups: list[Name] = []
    role: Name | None = None
    capacity: Capacity
    user_data: str | None = None
    volume_gb: int = Field(8, ge=1, le=16384)
    health_check_grace_s: int = Field(300, ge=0)


# ------------------------------------------------------------------------ stateful

class Database(Model):
    engine: Literal["postgres", "mysql", "mariadb"]
    version: str = Field(pattern=r"^\d+(\.\d+)*$")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    storage_gb: int = Field(ge=20, le=65536)
    multi_az: bool = False
    tier: Name
    security_groups: list[Name] = []
    backup_retention_days: int = Field(7, ge=0, le=35)
    deletion_protection: bool = False
    username: str = Field("envctl", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
    port: int | None = Field(None, ge=1150, le=65535)


class KeyAttribute(Model):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["S", "N", "B"] = "S"


def _key(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class Table(Model):
    partition_key: Annotated[KeyAttribute, Field()]
    sort_key: KeyAttribute | None = None
    billing: Literal["on_demand", "provisioned"] = "on_demand"
    read_capacity: int | None = Field(None, ge=1)
    write_capacity: int | None = Field(None, ge=1)
    ttl_attribute: str | None = None
    point_in_time_recovery: bool = False
    deletion_protection: bool | None = Field(None, description="default: true in a protected environment")

    # A key is its name ("id") or {name, type}; the schema says so too.
    _keys = field_validator("partition_key", "sort_key", mode="before",
                            json_schema_input_type=str | KeyAttribute)(classmethod(lambda cls, v: _key(v)))

    @model_validator(mode="after")
    def _capacity(self):
        if self.billing == "provisioned" and (self.read_capacity is None or self.write_capacity is None):
            raise ValueError("provisioned billing needs read_capacity and write_capacity")
        if self.billing == "on_demand" and (self.read_capacity or self.write_capacity):
            raise ValueError("read_capacity/write_capacity apply only with billing: provisioned")
        return self


class DeadLetter(Model):
    max_receives: int = Field(ge=1, le=1000)
    retention_s: int = Field(1209600, ge=60, le=1209600)


class Queue(Model):
    fifo: bool = False
    visibility_timeout_s: int = Field(30, ge=0, le=43200)
    retention_s: int = Field(345600, ge=60, le=1209600)
    delay_s: int = Field(0, ge=0, le=900)
    max_message_bytes: int = Field(262144, ge=1024, le=1048576)
    receive_wait_s: int = Field(0, ge=0, le=20)
    dead_letter: DeadLetter | None = None


class Subscription(Model):
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    sms: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", description="E.164, +358401234567")
    queue: Name | None = None
    function: Name | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("email", "sms", "queue", "function") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a subscription is exactly one of email, sms, queue, function")
        return self

    @property
    def protocol_endpoint(self) -> tuple[str, str]:
        kind = next(k for k in ("email", "sms", "queue", "function") if getattr(self, k) is not None)
        return kind, getattr(self, kind)


class Topic(Model):
    subscriptions: list[Subscription] = []


BucketEvent = Literal["created", "removed", "restored"]


class Notification(Model):
    function: Name | None = None
    queue: Name | None = None
    events: list[BucketEvent] = Field(["created"], min_length=1)
    prefix: str | None = None
    suffix: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.function is None) == (self.queue is None):
            raise ValueError("a notification goes to exactly one of function or queue")
        return self


class LifecycleRule(Model):
    prefix: str = ""
    expire_days: int | None = Field(None, ge=1)
    noncurrent_expire_days: int | None = Field(None, ge=1)
    transition_days: int | None = Field(None, ge=1)
    storage_class: Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
                           "DEEP_ARCHIVE"] | None = None
    abort_incomplete_upload_days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _something(self):
        if (self.transition_days is None) != (self.storage_class is None):
            raise ValueError("transition_days and storage_class go together")
        if not any([self.expire_days, self.noncurrent_expire_days, self.transition_days,
                    self.abort_incomplete_upload_days]):
            raise ValueError("a lifecycle rule needs at least one of expire_days, noncurrent_expire_days, "
                             "transition_days, abort_incomplete_upload_days")
        return self


class Bucket(Model):
    name: str | None = Field(None, description="the physical name, default <project>-<environment>-<key>")
    versioning: bool = False
    lifecycle: list[LifecycleRule] = []
    notify: list[Notification] = []


# ------------------------------------------------------------------- serverless etc.

RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "nodejs18.x", "nodejs20.x",
            "nodejs22.x", "java17", "java21", "provided.al2023", "ruby3.3", "dotnet8")


class Function(Model):
    runtime: Literal[RUNTIMES]  # type: ignore[valid-type]
    handler: str = Field(min_length=1, max_length=128)
    source: str = Field(description="a folder, relative to the spec file that names it")
    memory_mb: int = Field(128, ge=128, le=10240)
    timeout_s: int = Field(3, ge=1, le=900)
    role: Name
    environment: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], str] = {}


RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)


class MetricFilter(Model):
    pattern: str
    metric: str = Field(pattern=r"^[A-Za-z0-9_.\-/#:]{1,255}$")
    namespace: str | None = Field(None, description="default <project>/<environment>")
    value: str = "1"


class LogGroup(Model):
    retention_days: int | None = Field(None, description="None keeps logs forever")
    metric_filters: dict[Name, MetricFilter] = {}

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, v):
        if v is not None and v not in RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {', '.join(map(str, RETENTION_DAYS))} days, not {v}")
        return v


class AlarmMetric(Model):
    """Either a log metric filter (`log_filter: <group>.<filter>`) or a service metric."""

    log_filter: str | None = Field(None, pattern=r"^[a-z0-9-]+\.[a-z0-9-]+$")
    namespace: str | None = None
    name: str | None = None
    database: Name | None = None
    queue: Name | None = None
    table: Name | None = None
    function: Name | None = None
    application: Name | None = None
    instance: Name | None = None
    dimensions: dict[str, str] = {}

    @model_validator(mode="after")
    def _shape(self):
        if self.log_filter is not None:
            if any([self.namespace, self.name, self.dimensions, *self.resource_keys.values()]):
                raise ValueError("log_filter stands alone: no namespace, name, dimensions or resource")
        elif not (self.namespace and self.name):
            raise ValueError("give log_filter: <log group>.<filter>, or namespace and name of a service metric")
        elif len([v for v in self.resource_keys.values() if v]) > 1:
            raise ValueError("name at most one resource whose metric this is")
        return self

    @property
    def resource_keys(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in ("database", "queue", "table", "function", "application", "instance")}


COMPARISONS = {
    ">=": "GreaterThanOrEqualToThreshold",
    ">": "GreaterThanThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}


class Alarm(Model):
    metric: AlarmMetric
    statistic: Literal["Sum", "Average", "Minimum", "Maximum", "SampleCount"] = "Average"
    period_s: int = Field(300, description="10, 30 or a multiple of 60")
    evaluation_periods: int = Field(1, ge=1)
    comparison: Literal[">=", ">", "<", "<="]
    threshold: float
    notify: list[Name] = []
    missing_data: Literal["missing", "notBreaching", "breaching", "ignore"] = "missing"
    description: str | None = None

    @field_validator("period_s")
    @classmethod
    def _period(cls, v):
        if v not in (10, 30) and (v < 60 or v % 60):
            raise ValueError(f"period must be 10, 30 or a multiple of 60 seconds, not {v}")
        return v


class SendToQueue(Model):
    queue: Name
    message: Any = Field(description="a string, or a map sent as JSON")


class Schedule(Model):
    cron: str | None = Field(None, description='EventBridge cron: 6 fields, "0 2 * * ? *"')
    rate: str | None = Field(None, description='"5 minutes", "1 hour", "7 days"')
    send: SendToQueue
    enabled: bool = True

    # Field validators, so that a bad expression points at its own line.
    @field_validator("cron")
    @classmethod
    def _cron(cls, v):
        from envctl.spec.schedule import check_cron

        if v is not None:
            check_cron(v)
        return v

    @field_validator("rate")
    @classmethod
    def _rate(cls, v):
        from envctl.spec.schedule import check_rate

        if v is not None:
            check_rate(v)
        return v

    @model_validator(mode="after")
    def _expression(self):
        if (self.cron is None) == (self.rate is None):
            raise ValueError("give cron or rate (exactly one)")
        return self

    @property
    def expression(self) -> str:
        return f"cron({self.cron})" if self.cron is not None else f"rate({self.rate})"


# ------------------------------------------------------------------------ the spec

TTL_PATTERN = r"^[1-9][0-9]{0,4}[mhdw]$"
_TTL_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def ttl_seconds(ttl: str) -> int:
    """Seconds in a lifetime, "8h" → 28800: <n>m, <n>h, <n>d or <n>w, the format of the spec's
    `ttl:` and of `envctl create --ttl`."""
    if not re.match(TTL_PATTERN, ttl):
        raise ValueError(f"{ttl!r} is not a lifetime: write <n>m, <n>h, <n>d or <n>w (e.g. 8h, 3d)")
    return int(ttl[:-1]) * _TTL_UNITS[ttl[-1]]


def _tag_key(v: str) -> str:
    if v.lower().startswith(("aws:", "envctl:")):
        raise ValueError(f"tag key {v!r}: the aws: and envctl: prefixes are reserved")
    return v


TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+\-@]+$"), AfterValidator(_tag_key)]


class EnvironmentSpec(Model):
    project: Name
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    account: str | None = Field(None, pattern=r"^\d{12}$", description="refuse to act in any other account")
    protected: bool = Field(False, description="refuse destroy and replacement of stateful resources")
    ttl: str | None = Field(None, pattern=TTL_PATTERN,
                            description="lifetime, e.g. 8h or 3d (m, h, d, w): each create sets the expiry to now + "
                                        "ttl, and `envctl reap` destroys the environment once it has passed")
    tags: dict[TagKey, Annotated[str, Field(max_length=256)]] = {}
    network: Network | None = None
    security_groups: dict[Name, SecurityGroup] = {}
    roles: dict[Name, Role] = {}
    instances: dict[Name, Instance] = {}
    applications: dict[Name, Application] = {}
    databases: dict[Name, Database] = {}
    tables: dict[Name, Table] = {}
    queues: dict[Name, Queue] = {}
    topics: dict[Name, Topic] = {}
    buckets: dict[Name, Bucket] = {}
    functions: dict[Name, Function] = {}
    log_groups: dict[Name, LogGroup] = {}
    alarms: dict[Name, Alarm] = {}
    schedules: dict[Name, Schedule] = {}

    @field_validator("ttl")
    @classmethod
    def _no_ttl_when_protected(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("protected"):
            raise ValueError("a protected environment cannot have a ttl (reap would destroy it)")
        return v

    @field_validator("tags", "security_groups", "roles", "instances", "applications", "databases", "tables",
                     "queues", "topics", "buckets", "functions", "log_groups", "alarms", "schedules",
                     mode="before")
    @classmethod
    def _empty_section(cls, v):
        return {} if v is None else v


SECTIONS = tuple(f for f in EnvironmentSpec.model_fields if f not in
                 ("project", "region", "account", "protected", "ttl", "tags"))

_REF = re.compile(r"\$\{([^}]*)\}")
