"""The expansion context shared by every section's expander."""
from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from envctl.model import tags as tagging
from envctl.model.address import Address
from envctl.model.graph import Graph, Node, Ref
from envctl.spec import names
from envctl.spec.validate import Spec


class Expansion:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.model = spec.model
        self.project = spec.model.project
        self.environment = spec.name
        self.graph = Graph()

    def physical(self, name: str) -> str:
        """`<project>-<environment>-<name>`."""
        return names.physical_name(self.project, self.environment, name)

    def add(self, kind: str, name: str, props: BaseModel, physical_name: str | None = None,
            extra_deps: Iterable[Address] = ()) -> Address:
        address = Address(kind, name)
        tags = tagging.for_resource(self.project, self.environment, str(address), self.model.tags)
        self.graph.add(Node(address=address, props=props, physical_name=physical_name or self.physical(name),
                            tags=tags, extra_deps=frozenset(extra_deps)))
        return address

    @staticmethod
    def ref(kind: str, name: str, attr: str) -> Ref:
        return Ref(Address(kind, name), attr)
