"""Each kind's `services` names exactly the AWS services its module calls, and those of the
envctl helper modules it imports: discovery builds those clients ahead of their first call
(engine/observe.py), so one missing would be built on the time of a call that needs it."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from envctl.provisioners import REGISTRY

CLIENT = re.compile(r'client\("([a-z0-9-]+)"\)')
HELPER = re.compile(r"^from envctl\.provisioners\.(_\w+) import", re.MULTILINE)


def called(provisioner) -> set[str]:
    source = Path(sys.modules[provisioner.__module__].__file__).read_text()
    services = set(CLIENT.findall(source))
    for helper in HELPER.findall(source):
        services |= set(CLIENT.findall(Path(sys.modules[f"envctl.provisioners.{helper}"].__file__).read_text()))
    return services


@pytest.mark.parametrize("provisioner", REGISTRY, ids=lambda p: p.kind)
def test_services_are_those_the_kind_calls(provisioner):
    assert provisioner.services, f"{provisioner.kind} declares no services"
    assert set(provisioner.services) == called(provisioner)
    assert len(set(provisioner.services)) == len(provisioner.services)


def test_the_helpers_calls_are_seen():
    from envctl.provisioners.instance import Instance

    assert "ssm" in called(Instance)            # _image resolves ssm: parameters
