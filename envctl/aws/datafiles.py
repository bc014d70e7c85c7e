"""botocore's data files (service models, endpoints), parsed once per botocore version and kept.

Every command builds a dozen clients, each from its service's model: 9 MB of JSON for the
example's 15 services, 0.14 s of CPU on the way to the first discovery call. Parsed, they are
kept marshalled in the user's cache directory, `$XDG_CACHE_HOME/envctl` (default
`~/.cache/envctl`), in one directory per botocore and Python version; reading them back takes
a third of the time. An entry records its source file's size and modification time and is used
only while both match. Making a version's directory removes the other versions' (about 10 MB
each). When the directory cannot be written, files are parsed each time, as botocore does.

The files are parsed into plain dicts, not botocore's OrderedDicts: half the parse time, and
dicts keep their order anyway (botocore uses no OrderedDict method on them).

The list of botocore's services is kept the same way (Loader): before it loads any model,
botocore lists every service directory to check that the service exists.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import marshal
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore
import botocore.loaders

CACHE_PREFIX = "botocore-"


def cache_dir() -> Path | None:
    """This botocore's and this Python's directory of parsed data files; None without a home."""
    root = os.environ.get("XDG_CACHE_HOME")
    if not root:
        home = os.path.expanduser("~")
        if home == "~":                  # no HOME and no password entry: nowhere to keep them
            return None
        root = os.path.join(home, ".cache")
    version = f"{CACHE_PREFIX}{botocore.__version__}-py{sys.version_info[0]}.{sys.version_info[1]}-m{marshal.version}"
    return Path(root) / "envctl" / version


class DataFiles(botocore.loaders.JSONFileLoader):
    """botocore's file loader (`Loader(file_loader=...)`), with the cache described above."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + extension
            try:
                stat = os.stat(path)
            except OSError:
                continue

            def parse() -> Any:
                with opener(path, "rb") as f:
                    return json.loads(f.read())

            return _kept(path, (stat.st_size, stat.st_mtime_ns), parse)
        return None


class Loader(botocore.loaders.Loader):
    """botocore's loader, reading through DataFiles, which keeps the list of botocore's own
    services too.

    botocore checks that a service exists before loading its model, by listing every service
    directory of every search path and each one's versions: 940 directory reads for its
    400-odd services, 25 ms of every command, with the same answer for one installed botocore.
    That answer for botocore's own data directory is kept (while the directory's modification
    time stays the same); the other search path, ~/.aws/models, is listed each time.
    """

    def __init__(self, extra_search_paths: list[str] | None = None) -> None:
        super().__init__(extra_search_paths=extra_search_paths, file_loader=DataFiles())

    @botocore.loaders.instance_cache
    def list_available_services(self, type_name: str) -> list[str]:
        services: set[str] = set()
        for path in self.search_paths:
            if not os.path.isdir(path):
                continue
            if self.is_builtin_path(path):
                services.update(_kept(f"services {path} {type_name}", (os.stat(path).st_mtime_ns,),
                                      lambda path=path: sorted(self._services_in(path, type_name))))
            else:
                services.update(self._services_in(path, type_name))
        return sorted(services)

    def _services_in(self, path: str, type_name: str) -> set[str]:
        """The services of one search path with a `type_name` file in a version (botocore's rule)."""
        found = set()
        for service in os.listdir(path):
            service_dir = os.path.join(path, service)
            if os.path.isdir(service_dir) and any(self.file_loader.exists(os.path.join(service_dir, version, type_name))
                                                  for version in os.listdir(service_dir)):
                found.add(service)
        return found


def _kept(name: str, source: tuple, make: Callable[[], Any]) -> Any:
    """make()'s value, kept in the cache directory under `name` while `source` (the size and
    modification time of what it is made from) stays the same."""
    directory = cache_dir()
    entry = directory / hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest() if directory else None
    kept = _read(entry) if entry else None
    if kept is not None and kept[0] == source:
        return kept[1]
    value = make()
    if entry:
        _write(entry, (source, value))
    return value


def _read(entry: Path) -> Any:
    try:
        # marshal.loads on bytes: marshal.load on the file reads it in small pieces, 5× slower.
        kept = marshal.loads(entry.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None                      # none yet, or unreadable: parse the source
    return kept if isinstance(kept, tuple) and len(kept) == 2 else None


def _write(entry: Path, value: Any) -> None:
    try:
        if not entry.parent.is_dir():
            entry.parent.mkdir(parents=True, exist_ok=True)
            _remove_other_versions(entry.parent)
        partial = entry.with_name(f"{entry.name}.{os.getpid()}.partial")
        partial.write_bytes(marshal.dumps(value))
        os.replace(partial, entry)       # whole or absent, for a command reading it meanwhile
    except (OSError, ValueError):
        pass                             # a read-only home: parse each time


def _remove_other_versions(mine: Path) -> None:
    for other in mine.parent.glob(f"{CACHE_PREFIX}*"):
        if other != mine and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
