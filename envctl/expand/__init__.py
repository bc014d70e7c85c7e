"""expand(spec) → the desired graph: one node per AWS resource, in AWS's own shape.

One module per group of spec sections, each with `expand_<section>(x)` functions that add
nodes through `Expansion.add`. Pure and deterministic: the same spec gives the same graph
(the only reads are of the function source folders, to hash the code).
"""
from __future__ import annotations

from envctl.expand.base import Expansion
from envctl.model.graph import Graph
from envctl.spec.validate import Spec


def expand(spec: Spec) -> Graph:
    from envctl.expand import compute, databases, iam, messaging, network, observability, storage, tables

    x = Expansion(spec)
    network.expand_network(x)
    network.expand_security_groups(x)
    iam.expand_roles(x)
    compute.expand_instances(x)
    compute.expand_applications(x)
    databases.expand_databases(x)
    tables.expand_tables(x)
    messaging.expand_queues(x)
    messaging.expand_topics(x)
    storage.expand_buckets(x)
    storage.expand_functions(x)
    observability.expand_log_groups(x)
    observability.expand_alarms(x)
    messaging.expand_schedules(x)
    x.graph.check()
    return x.graph
