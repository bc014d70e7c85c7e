"""Logical addresses: `queue/work-units` ⇄ Address("queue", "work-units")."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Address:
    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> "Address":
        kind, sep, name = text.partition("/")
        if not sep or not kind or not name:
            raise ValueError(f"{text!r} is not an address of the form kind/name")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"
