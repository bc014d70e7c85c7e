"""What one environment holds in AWS, read with plain boto3 and normalised to compare runs.

`take(client, project, environment)` lists every resource tagged for the environment, kind
by kind, with its key attributes. Ids differ from run to run, so every id that points at
another resource of the environment is replaced by that resource's address ("@subnet/public-a")
and the resource's own id is left out. Two runs that built the same thing give equal
`Inventory.state`; a resource made twice shows in `Inventory.duplicates`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROJECT, ENVIRONMENT, RESOURCE = "envctl:project", "envctl:environment", "envctl:resource"
RUN_TAGS = ("envctl:created",)        # say when the run was, not what it built: left out


@dataclass(frozen=True)
class Inventory:
    found: dict[str, list[dict]]                 # address → every live resource tagged with it

    @property
    def state(self) -> dict[str, dict]:
        """address → attributes of the one resource (or of each, when there are several)."""
        return {a: items[0] if len(items) == 1 else {"duplicates": items} for a, items in self.found.items()}

    @property
    def duplicates(self) -> dict[str, int]:
        return {a: len(items) for a, items in self.found.items() if len(items) > 1}

    @property
    def addresses(self) -> set[str]:
        return set(self.found)


def take(client: Callable[[str], Any], project: str, environment: str) -> Inventory:
    return _Reader(client, project, environment).read()


def differences(expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    """Readable lines: missing, extra and differing resources (for assertion messages)."""
    lines = [f"missing {a}" for a in sorted(set(expected) - set(actual))]
    lines += [f"extra {a}: {actual[a]}" for a in sorted(set(actual) - set(expected))]
    for a in sorted(set(expected) & set(actual)):
        if expected[a] != actual[a]:
            want, have = expected[a], actual[a]
            keys = sorted(set(want) | set(have))
            lines += [f"{a}.{k}: {want.get(k)!r} != {have.get(k)!r}" for k in keys if want.get(k) != have.get(k)]
    return lines


def still_tagged(client: Callable[[str], Any], project: str, environment: str) -> list[str]:
    """ARNs the Tagging API lists for the environment, but for terminated instances and deleted
    NAT gateways (AWS, like moto, keeps listing those for a while)."""
    pages = client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        TagFilters=[{"Key": PROJECT, "Values": [project]}, {"Key": ENVIRONMENT, "Values": [environment]}])
    arns = [item["ResourceARN"] for page in pages for item in page["ResourceTagMappingList"]]
    ec2 = client("ec2")
    gone = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] == "terminated"}
    gone |= {n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] == "deleted"}
    return sorted(a for a in arns if a.rsplit("/", 1)[-1] not in gone)


class _Reader:
    def __init__(self, client, project: str, environment: str):
        self.client = client
        self.project, self.environment = project, environment
        self.found: dict[str, list[dict]] = defaultdict(list)
        self.ids: dict[str, str] = {}           # EC2 id → "@address"
        self._pending: list[tuple[str, dict]] = []

    def read(self) -> Inventory:
        self._ec2()
        for read in (self._autoscaling, self._rds, self._dynamodb, self._sqs, self._sns, self._s3, self._lambda,
                     self._logs, self._cloudwatch, self._events, self._iam):
            read()
        for address, attrs in self._pending:         # ids resolved once every EC2 id is known
            self.found[address].append(self._named(attrs))
        return Inventory({a: sorted(v, key=_canonical) for a, v in sorted(self.found.items())})

    # ---- helpers
    def _ours(self, tags: dict[str, str]) -> str | None:
        """The address of a resource tagged for this environment, else None."""
        if tags.get(PROJECT) == self.project and tags.get(ENVIRONMENT) == self.environment:
            return tags.get(RESOURCE)
        return None

    def _add(self, address: str, attrs: dict, own_id: str | None = None) -> None:
        if own_id:
            self.ids[own_id] = f"@{address}"
        self._pending.append((address, attrs))

    def _named(self, value):
        """Replace the environment's ids by addresses, everywhere in `value`."""
        if isinstance(value, dict):
            return {k: self._named(v) for k, v in value.items() if k not in RUN_TAGS}
        if isinstance(value, _Set):
            return sorted(self._named(list(value)), key=_canonical)
        if isinstance(value, (list, tuple)):        # a list of {"Key", "Value"} tags too
            return [self._named(v) for v in value if not (isinstance(v, dict) and v.get("Key") in RUN_TAGS)]
        if isinstance(value, str):
            return self.ids.get(value, value)
        return value

    # ---- EC2
    def _ec2(self) -> None:
        ec2 = self.client("ec2")

        def each(operation: str, key: str, **kw):
            for page in ec2.get_paginator(operation).paginate(**kw):
                yield from page[key]

        for vpc in each("describe_vpcs", "Vpcs"):
            address = self._ours(_tags(vpc.get("Tags")))
            if address:
                dns = {a: ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=a)[a[0].upper() + a[1:]]["Value"]
                       for a in ("enableDnsSupport", "enableDnsHostnames")}
                self._add(address, {"cidr": vpc["CidrBlock"], **dns, "tags": _tags(vpc.get("Tags"))}, vpc["VpcId"])
        for subnet in each("describe_subnets", "Subnets"):
            address = self._ours(_tags(subnet.get("Tags")))
            if address:
                self._add(address, {"vpc": subnet["VpcId"], "cidr": subnet["CidrBlock"],
                                    "zone": subnet["AvailabilityZone"], "public_ip": subnet["MapPublicIpOnLaunch"],
                                    "tags": _tags(subnet.get("Tags"))}, subnet["SubnetId"])
        for gateway in each("describe_internet_gateways", "InternetGateways"):
            address = self._ours(_tags(gateway.get("Tags")))
            if address:
                self._add(address, {"attached": _Set(a["VpcId"] for a in gateway.get("Attachments", [])),
                                    "tags": _tags(gateway.get("Tags"))}, gateway["InternetGatewayId"])
        for eip in ec2.describe_addresses()["Addresses"]:
            address = self._ours(_tags(eip.get("Tags")))
            if address:
                self._add(address, {"domain": eip.get("Domain"), "tags": _tags(eip.get("Tags"))}, eip["AllocationId"])
        for nat in each("describe_nat_gateways", "NatGateways"):
            address = self._ours(_tags(nat.get("Tags")))
            if address and nat["State"] not in ("deleted", "deleting", "failed"):
                self._add(address, {"subnet": nat["SubnetId"], "state": nat["State"],
                                    "connectivity": nat.get("ConnectivityType"),
                                    "eips": _Set(a.get("AllocationId", "") for a in nat.get("NatGatewayAddresses", [])),
                                    "tags": _tags(nat.get("Tags"))}, nat["NatGatewayId"])
        for group in each("describe_security_groups", "SecurityGroups"):
            address = self._ours(_tags(group.get("Tags")))
            if address:
                self._add(address, {"name": group["GroupName"], "description": group["Description"],
                                    "vpc": group["VpcId"], "ingress": _rules(group.get("IpPermissions")),
                                    "egress": _rules(group.get("IpPermissionsEgress")),
                                    "tags": _tags(group.get("Tags"))}, group["GroupId"])
        for table in each("describe_route_tables", "RouteTables"):
            address = self._ours(_tags(table.get("Tags")))
            if address:
                routes = _Set((r.get("DestinationCidrBlock", ""), r.get("GatewayId") or r.get("NatGatewayId") or
                               r.get("InstanceId") or "") for r in table.get("Routes", []))
                subnets = _Set(a["SubnetId"] for a in table.get("Associations", []) if a.get("SubnetId"))
                self._add(address, {"vpc": table["VpcId"], "routes": routes, "subnets": subnets,
                                    "tags": _tags(table.get("Tags"))}, table["RouteTableId"])
        for template in each("describe_launch_templates", "LaunchTemplates"):
            address = self._ours(_tags(template.get("Tags")))
            if address:
                latest = ec2.describe_launch_template_versions(
                    LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"])["LaunchTemplateVersions"][0]
                self._add(address, {"name": template["LaunchTemplateName"],
                                    "versions": template["LatestVersionNumber"],
                                    "data": latest["LaunchTemplateData"], "tags": _tags(template.get("Tags"))},
                          template["LaunchTemplateId"])
        launched: dict[str, int] = defaultdict(int)      # instances per address (ASG instances: the template's)
        for reservation in each("describe_instances", "Reservations"):
            for instance in reservation["Instances"]:
                address = self._ours(_tags(instance.get("Tags")))
                if not address or instance["State"]["Name"] in ("terminated", "shutting-down"):
                    continue
                if not address.startswith("instance/"):
                    launched[address] += 1
                    continue
                self._add(address, {
                    "type": instance["InstanceType"], "image": instance["ImageId"], "subnet": instance["SubnetId"],
                    "groups": _Set(g["GroupId"] for g in instance.get("SecurityGroups", [])),
                    "profile": instance.get("IamInstanceProfile", {}).get("Arn"),
                    "metadata": {k: v for k, v in instance.get("MetadataOptions", {}).items() if k != "State"},
                    "state": instance["State"]["Name"], "tags": _tags(instance.get("Tags"))}, instance["InstanceId"])
        for address, count in launched.items():
            self._add(f"{address}#instances", {"count": count})

    # ---- the other services
    def _autoscaling(self) -> None:
        autoscaling = self.client("autoscaling")
        for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
            for group in page["AutoScalingGroups"]:
                address = self._ours(_tags(group.get("Tags")))
                if address:
                    self._add(address, {
                        "name": group["AutoScalingGroupName"], "min": group["MinSize"], "max": group["MaxSize"],
                        "desired": group["DesiredCapacity"], "template": group.get("LaunchTemplate", {}),
                        "subnets": _Set(s for s in group.get("VPCZoneIdentifier", "").split(",") if s),
                        "instances": len(group.get("Instances", [])),
                        "tags": {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group.get("Tags", [])}})

    def _rds(self) -> None:
        rds = self.client("rds")
        for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
            tags = _tags(rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])["TagList"])
            address = self._ours(tags)
            if address:
                self._add(address, {"name": group["DBSubnetGroupName"],
                                    "description": group["DBSubnetGroupDescription"],
                                    "subnets": _Set(s["SubnetIdentifier"] for s in group["Subnets"]), "tags": tags})
        for db in rds.describe_db_instances()["DBInstances"]:
            address = self._ours(_tags(db.get("TagList")))
            if address:
                self._add(address, {
                    "class": db["DBInstanceClass"], "engine": db["Engine"], "version": db["EngineVersion"],
                    "storage": db["AllocatedStorage"], "multi_az": db["MultiAZ"], "encrypted": db["StorageEncrypted"],
                    "public": db["PubliclyAccessible"], "subnet_group": db["DBSubnetGroup"]["DBSubnetGroupName"],
                    "groups": _Set(g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]),
                    "backups": db["BackupRetentionPeriod"], "managed_password": "MasterUserSecret" in db,
                    "deletion_protection": db.get("DeletionProtection"), "tags": _tags(db.get("TagList"))})

    def _dynamodb(self) -> None:
        ddb = self.client("dynamodb")
        for name in ddb.list_tables()["TableNames"]:
            table = ddb.describe_table(TableName=name)["Table"]
            tags = _tags(ddb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags"))
            address = self._ours(tags)
            if address:
                ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
                backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
                self._add(address, {
                    "keys": table["KeySchema"], "attributes": sorted(table["AttributeDefinitions"], key=_canonical),
                    "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
                    "sse": table.get("SSEDescription", {}).get("SSEType"),
                    "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
                    "pitr": backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus"),
                    "tags": tags})

    def _sqs(self) -> None:
        sqs = self.client("sqs")
        for url in sqs.list_queues().get("QueueUrls", []):
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            address = self._ours(tags)
            if address:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                kept = {k: _json_or_text(v) for k, v in attributes.items()
                        if not k.startswith("Approximate") and not k.endswith("Timestamp")}
                self._add(address, {"url": url, **kept, "tags": tags})

    def _sns(self) -> None:
        sns = self.client("sns")
        for topic in sns.list_topics()["Topics"]:
            arn = topic["TopicArn"]
            tags = _tags(sns.list_tags_for_resource(ResourceArn=arn)["Tags"])
            address = self._ours(tags)
            if address:
                attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
                subscriptions = sorted((s["Protocol"], s["Endpoint"])
                                       for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"])
                kept = {k: _json_or_text(v) for k, v in attributes.items()
                        if not k.startswith("Subscriptions") and k != "EffectiveDeliveryPolicy"}
                self._add(address, {**kept, "subscriptions": subscriptions, "tags": tags})

    def _s3(self) -> None:
        s3 = self.client("s3")
        for bucket in s3.list_buckets()["Buckets"]:
            name = bucket["Name"]
            tags = _s3_optional(lambda: _tags(s3.get_bucket_tagging(Bucket=name)["TagSet"]), {})
            address = self._ours(tags)
            if not address:
                continue
            notification = s3.get_bucket_notification_configuration(Bucket=name)
            notification.pop("ResponseMetadata", None)
            for configs in notification.values():
                for config in configs:
                    config.pop("Id", None)
            self._add(address, {
                "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
                "encryption": _s3_optional(lambda: s3.get_bucket_encryption(Bucket=name)
                                           ["ServerSideEncryptionConfiguration"]["Rules"], None),
                "public_access": _s3_optional(lambda: s3.get_public_access_block(Bucket=name)
                                              ["PublicAccessBlockConfiguration"], None),
                "policy": _s3_optional(lambda: json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]), None),
                "notification": notification, "tags": tags})

    def _lambda(self) -> None:
        functions = self.client("lambda")
        for page in functions.get_paginator("list_functions").paginate():
            for function in page["Functions"]:
                tags = functions.list_tags(Resource=function["FunctionArn"]).get("Tags", {})
                address = self._ours(tags)
                if not address:
                    continue
                try:
                    policy = json.loads(functions.get_policy(FunctionName=function["FunctionName"])["Policy"])
                    statements = sorted(policy.get("Statement", []), key=_canonical)
                except functions.exceptions.ResourceNotFoundException:
                    statements = []
                self._add(address, {
                    "runtime": function["Runtime"], "handler": function["Handler"], "memory": function["MemorySize"],
                    "timeout": function["Timeout"], "role": function["Role"], "code": function["CodeSha256"],
                    "environment": function.get("Environment", {}).get("Variables", {}),
                    "permissions": statements, "tags": tags})

    def _logs(self) -> None:
        logs = self.client("logs")
        for page in logs.get_paginator("describe_log_groups").paginate():
            for group in page["logGroups"]:
                name = group["logGroupName"]
                tags = logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*")).get("tags", {})
                address = self._ours(tags)
                if address:
                    filters = sorted(((f["filterName"], f["filterPattern"],
                                       _canonical(f["metricTransformations"]))
                                      for f in logs.describe_metric_filters(logGroupName=name)["metricFilters"]))
                    self._add(address, {"retention": group.get("retentionInDays"), "filters": filters, "tags": tags})

    def _cloudwatch(self) -> None:
        cloudwatch = self.client("cloudwatch")
        for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
            tags = _tags(cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"])
            address = self._ours(tags)
            if address:
                keep = ("MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods", "Threshold",
                        "ComparisonOperator", "AlarmActions", "OKActions", "TreatMissingData", "Dimensions")
                self._add(address, {**{k: alarm.get(k) for k in keep}, "tags": tags})

    def _events(self) -> None:
        events = self.client("events")
        for rule in events.list_rules()["Rules"]:
            tags = _tags(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])
            address = self._ours(tags)
            if address:
                targets = sorted(((t["Arn"], _json_or_text(t.get("Input", "")))
                                  for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]), key=_canonical)
                self._add(address, {"schedule": rule.get("ScheduleExpression"), "state": rule["State"],
                                    "targets": targets, "tags": tags})

    def _iam(self) -> None:
        iam = self.client("iam")
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                name = role["RoleName"]
                tags = _tags(iam.list_role_tags(RoleName=name)["Tags"])
                address = self._ours(tags)
                if address:
                    inline = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                              for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
                    attached = sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)
                                      ["AttachedPolicies"])
                    self._add(address, {"path": role["Path"], "trust": role["AssumeRolePolicyDocument"],
                                        "inline": inline, "attached": attached, "tags": tags})
        for page in iam.get_paginator("list_instance_profiles").paginate():
            for profile in page["InstanceProfiles"]:
                name = profile["InstanceProfileName"]
                tags = _tags(iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"].get("Tags"))
                address = self._ours(tags)
                if address:
                    roles = sorted(r["RoleName"] for r in profile["Roles"])
                    self._add(address, {"path": profile["Path"], "roles": roles, "tags": tags})


class _Set(list):
    """A list whose order means nothing: sorted once its ids are addresses."""


def _tags(tags) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def _rules(permissions) -> list:
    """SG rules as sorted tuples: protocol, ports, CIDRs and the groups they allow."""
    rules = []
    for p in permissions or ():
        rules.append((p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"),
                      _Set(r["CidrIp"] for r in p.get("IpRanges", [])),
                      _Set(r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])),
                      _Set(g["GroupId"] for g in p.get("UserIdGroupPairs", []))))
    return _Set(rules)


def _json_or_text(value: str):
    try:
        return json.loads(value) if value[:1] in "{[" else value
    except ValueError:
        return value


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _s3_optional(read, default):
    """An S3 configuration that may not be set (S3 answers "not found" for those)."""
    from botocore.exceptions import ClientError

    try:
        return read()
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return default
        raise
