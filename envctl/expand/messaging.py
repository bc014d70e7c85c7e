"""queues: → SQS queues (+ dead-letter queues); topics: → SNS topics with subscriptions;
schedules: → EventBridge rules that drop a message on a queue.

Consumers refer to producers: a topic refers to the queues it delivers to, a schedule to its
queue. The queue's access policy names its senders by physical name only (`allow_from`),
so a queue depends on none of them.
"""
from __future__ import annotations

import json

from envctl.expand.base import Expansion
from envctl.provisioners.base import canonical_json
from envctl.provisioners.queue import QueueProps, RedrivePolicy
from envctl.provisioners.schedule import ScheduleProps, Target
from envctl.provisioners.topic import Subscription, TopicProps

SNS_MANAGED_KEY = "alias/aws/sns"


def queue_name(x: Expansion, name: str, fifo: bool) -> str:
    """The physical name of queue `name`: FIFO queue names must end in .fifo."""
    return x.physical(name) + (".fifo" if fifo else "")


def expand_queues(x: Expansion) -> None:
    for name, queue in x.model.queues.items():
        redrive = None
        if queue.dead_letter is not None:
            dlq = f"{name}-dlq"
            x.add("queue", dlq, QueueProps(
                name=queue_name(x, dlq, queue.fifo), fifo=queue.fifo,
                message_retention_period=queue.dead_letter.retention_s),
                physical_name=queue_name(x, dlq, queue.fifo))
            redrive = RedrivePolicy(dead_letter_target_arn=x.ref("queue", dlq, "arn"),
                                    max_receive_count=queue.dead_letter.max_receives)
        x.add("queue", name, QueueProps(
            name=queue_name(x, name, queue.fifo),
            fifo=queue.fifo,
            visibility_timeout=queue.visibility_timeout_s,
            message_retention_period=queue.retention_s,
            delay_seconds=queue.delay_s,
            maximum_message_size=queue.max_message_bytes,
            receive_message_wait_time=queue.receive_wait_s,
            sqs_managed_sse=True,
            redrive_policy=redrive,
            allow_from=_senders(x, name)),
            physical_name=queue_name(x, name, queue.fifo))


def _senders(x: Expansion, queue: str) -> tuple[tuple[str, str], ...]:
    """(service, physical name) of every rule, topic and bucket the spec has sending to `queue`."""
    m = x.model
    senders = {("events", x.physical(s)) for s, schedule in m.schedules.items() if schedule.send.queue == queue}
    senders |= {("sns", x.physical(t)) for t, topic in m.topics.items()
                if any(sub.queue == queue for sub in topic.subscriptions)}
    senders |= {("s3", bucket.name or x.physical(b)) for b, bucket in m.buckets.items()
                if any(n.queue == queue for n in bucket.notify)}
    return tuple(sorted(senders))


def expand_topics(x: Expansion) -> None:
    # CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key (its key
    # policy does not let cloudwatch.amazonaws.com use it, and it cannot be changed): alarm
    # notifications would be dropped silently. Topics an alarm notifies stay unencrypted.
    alarmed = {t for alarm in x.model.alarms.values() for t in alarm.notify}
    for name, topic in x.model.topics.items():
        subscriptions = []
        for sub in topic.subscriptions:
            kind, target = sub.protocol_endpoint
            if kind == "queue":
                subscriptions.append(Subscription(protocol="sqs", endpoint=x.ref("queue", target, "arn")))
            elif kind == "function":
                subscriptions.append(Subscription(protocol="lambda", endpoint=x.ref("function", target, "arn")))
            else:
                subscriptions.append(Subscription(protocol=kind, endpoint=target))
        x.add("topic", name, TopicProps(
            name=x.physical(name),
            kms_master_key_id=None if name in alarmed else SNS_MANAGED_KEY,
            subscriptions=tuple(subscriptions)))


def expand_schedules(x: Expansion) -> None:
    for name, schedule in x.model.schedules.items():
        queue = schedule.send.queue
        x.add("schedule", name, ScheduleProps(
            name=x.physical(name),
            schedule_expression=schedule.expression,
            state="ENABLED" if schedule.enabled else "DISABLED",
            description=f"envctl {x.project}/{x.environment}: sends a message to queue {queue}",
            targets=(Target(id="queue", arn=x.ref("queue", queue, "arn"), input=message_input(schedule.send.message)),),
        ))


def message_input(message) -> str:
    """The rule target's Input: EventBridge takes only JSON text, so a map is sent as canonical
    JSON and a string as a JSON string (the queue receives it in quotes)."""
    return canonical_json(json.dumps(message))
