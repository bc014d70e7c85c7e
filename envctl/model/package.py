"""Deterministic zip packages of a function's source folder: the same files give the same bytes.

Lambda reports `CodeSha256` (base64 of the zip's SHA-256); expand computes the same hash
from the folder, so a plan can tell "code changed" without uploading anything. For that the
zip must not depend on when or where it was built: entries are sorted, every timestamp is
the zip epoch, permissions are fixed (0644, or 0755 for files their owner may execute, so a
custom runtime's `bootstrap` stays runnable), and build litter (__pycache__, *.pyc) is left out.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)          # the earliest time a zip entry can carry
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def source_files(folder: Path) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every file under `folder`, sorted by name."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for f in files:
            if f.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(root) / f
            out.append((path.relative_to(folder).as_posix(), path))
    return sorted(out)


def zip_folder(folder: Path) -> bytes:
    """The folder's files as a zip whose bytes depend only on the files' names, contents and exec bit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, path in source_files(Path(folder)):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3                       # Unix, wherever it was built
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    """Base64 SHA-256 of a package, exactly as Lambda's `CodeSha256` reports it."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
