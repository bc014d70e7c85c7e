"""Work moto's server repeats on every request, which no AWS region does, done once a process.

The emulator (tests, benchmarks, `envctl sandbox`) answers every call in one Python process:
while one request holds the interpreter, every other request in flight waits. Profiling its
side of the example's create (181 requests, thread CPU) found four costs that are moto's
bookkeeping, not the call's work:

- the dispatcher lists moto's package directory (about 170 `stat`s) twice a request, to ask
  whether the Host header names a moto module (`moto.backends.list_of_moto_modules`);
- each response class's method names are found with `inspect.getmembers` on every request
  (`moto.core.responses.method_names_from_class`);
- an error answer finds its service's name through a new botocore Session that lists every
  service on disk, once per moto package (`moto.core.utils.service_name_from_moto_package_name`):
  60-130 ms holding the interpreter, several times a process;
- every KMS key, such as the EBS default key that `RunInstances` with an encrypted volume
  creates after each reset, generates a 2048-bit RSA key pair (about 100 ms, holding it too).

`apply()` computes the first three once (their answers never change in a process) and gives
every KMS key of one size the same key pair: the emulator's keys protect nothing, and each
still signs and verifies. Measured: a warm DescribeVpcs 4.1 -> 2.4 ms of CPU (client and
emulator in one process), `pytest tests/provisioners tests/sandbox` 108 -> 88 s. A patch
whose target moto has moved or renamed is skipped: a newer moto is slower, never broken.
"""
from __future__ import annotations

import functools
import threading


def _locked_cache(fn):
    """functools.cache, with each answer computed once even when threads ask for it at once
    (a service listing or a key pair holds the interpreter for 60-130 ms)."""
    cached = functools.cache(fn)
    lock = threading.Lock()

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with lock:
            return cached(*args, **kwargs)
    return call


@_locked_cache
def apply() -> None:
    """Patch moto once per process (idempotent)."""
    for patch in (_module_list, _method_names, _service_names, _rsa_keys):
        try:
            patch()
        except (ImportError, AttributeError):
            pass


def _module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _method_names() -> None:
    from moto.core import responses

    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _service_names() -> None:
    from moto.core import utils

    @_locked_cache
    def names() -> dict[str, str]:
        from botocore.session import Session

        return {name.replace("-", ""): name for name in Session().get_available_services()}

    def service_name_from_moto_package_name(moto_package_name: str) -> str:
        return names().get(moto_package_name, moto_package_name)

    utils.service_name_from_moto_package_name = service_name_from_moto_package_name


def _rsa_keys() -> None:
    import types

    from moto.kms import utils

    # moto.kms.utils's `rsa` module, with one key pair per size
    rsa = utils.rsa
    utils.rsa = types.SimpleNamespace(**{**vars(rsa), "generate_private_key": _locked_cache(rsa.generate_private_key)})
