"""`envctl sandbox start|stop|status`: moto's server as a background process on loopback.

The state (pid, port) lives in $ENVCTL_HOME/sandbox.json (default ~/.envctl). Every command
run with --sandbox (or ENVCTL_SANDBOX=1) talks to it with dummy credentials; its account is
moto's default, 123456789012.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4599


class SandboxError(Exception):
    pass


@dataclass(frozen=True)
class SandboxState:
    pid: int
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def home() -> Path:
    return Path(os.environ.get("ENVCTL_HOME") or Path.home() / ".envctl")


def _state_file() -> Path:
    return home() / "sandbox.json"


def state() -> SandboxState | None:
    """The running sandbox, or None (a stale state file is removed)."""
    try:
        data = json.loads(_state_file().read_text())
        s = SandboxState(int(data["pid"]), int(data["port"]))
    except (OSError, ValueError, KeyError):
        return None
    if not _alive(s.pid) or not _answers(s.endpoint):
        _state_file().unlink(missing_ok=True)
        return None
    return s


def endpoint_or_none() -> str | None:
    s = state()
    return s.endpoint if s else None


def start(port: int = DEFAULT_PORT, timeout: float = 30.0) -> SandboxState:
    running = state()
    if running:
        return running
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise SandboxError("the sandbox needs moto: pip install 'envctl[sandbox]'") from None
    if _port_taken(port):
        raise SandboxError(f"port {port} is already in use; choose another with --port")
    home().mkdir(parents=True, exist_ok=True)
    log = open(home() / "sandbox.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "envctl.sandbox.serve", "--port", str(port)],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    s = SandboxState(proc.pid, port)
    deadline = time.monotonic() + timeout
    while not _answers(s.endpoint):                     # bounded: the server starts in about a second
        if proc.poll() is not None:
            raise SandboxError(f"the sandbox exited at start; see {home() / 'sandbox.log'}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SandboxError(f"the sandbox did not answer within {timeout:.0f}s; see {home() / 'sandbox.log'}")
        time.sleep(0.1)
    _state_file().write_text(json.dumps({"pid": s.pid, "port": s.port}))
    return s


def stop() -> bool:
    """Stop the sandbox (its state is lost). False when none was running."""
    s = state()
    if s is None:
        return False
    os.kill(s.pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(s.pid):
            break
        time.sleep(0.1)
    _state_file().unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
        return True
    except Exception:
        return False


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
