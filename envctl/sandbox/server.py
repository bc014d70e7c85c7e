"""moto's server application behind a small WSGI middleware that logs every request.

The same server backs the test suite, the benchmarks and `envctl sandbox start`. The log
(service, action, mutating or not) lets tests count calls by action, e.g. to prove that a
second `create` makes no mutating call. Middleware layers (latency, faults) wrap `app`.
"""
from __future__ import annotations

import io
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass
from urllib.parse import parse_qs

from envctl.aws.session import is_read

_CREDENTIAL = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")

SANDBOX_ACCOUNT = "123456789012"

# environ key: when the request's first bytes reached this machine, on time.monotonic()'s clock
# (the kernel's receive time, see received_at). Absent where the kernel does not say.
RECEIVED = "envctl.received"
# Linux's SO_TIMESTAMPNS (asm-generic; the socket module does not name it): the kernel stamps
# each packet when it receives it, and says when in the ancillary data of recvmsg.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)


@dataclass(frozen=True)
class Call:
    service: str
    action: str
    region: str
    mutating: bool
    status: int = 0


def describe_request(environ) -> tuple[str, str, str, bool]:
    """(service, action, region, mutating) of one AWS request, from its signature and body."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _CREDENTIAL.search(auth)
    region, service = (m.group(1), m.group(2)) if m else ("", "")
    method = environ.get("REQUEST_METHOD", "GET")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    action = ""
    if target:
        action = target.rsplit(".", 1)[-1]
    else:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        action = (query.get("Action") or [""])[0]
        if not action and method == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = ReplayBody(body)
            action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
    if not action:                                  # REST protocols (S3, Lambda): method + path
        path = environ.get("PATH_INFO", "/")
        action = f"{method} {path}"
        mutating = method not in ("GET", "HEAD")
    else:
        mutating = not is_read(action)
    return service, action, region, mutating


class ReplayBody:
    def __init__(self, body: bytes):
        import io

        self._io = io.BytesIO(body)

    def read(self, *args):
        return self._io.read(*args)

    def readline(self, *args):
        return self._io.readline(*args)

    def __iter__(self):
        return iter(self._io)


class RequestLog:
    """Every AWS call the server answered, in order. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def mutating(self) -> list[Call]:
        return [c for c in self.snapshot() if c.mutating]

    def count(self, action: str) -> int:
        return sum(1 for c in self.snapshot() if c.action == action)

    def index(self, action: str) -> int:
        """Position of the first call of `action`; -1 if never called."""
        return next((i for i, c in enumerate(self.snapshot()) if c.action == action), -1)


class LoggingMiddleware:
    def __init__(self, app, log: RequestLog):
        self.app = app
        self.log = log

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        service, action, region, mutating = describe_request(environ)
        status_holder = {}

        def recording_start(status, headers, exc_info=None):
            status_holder["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        body = self.app(environ, recording_start)
        self.log.add(Call(service, action, region, mutating, status_holder.get("status", 0)))
        return body


class EmulatedAws:
    """moto server on 127.0.0.1 in a background thread, with a request log.

    `wrap` takes the logged WSGI app and returns the one to serve (latency, faults).
    `dependency_rules` refuses, as AWS does, deletes that something still depends on
    (see dependency_rules.py); `self.rules.refused` lists them. Refused calls are logged (400).
    """

    def __init__(self, port: int = 0, wrap=None, dependency_rules: bool = True):
        from moto.server import DomainDispatcherApplication, create_backend_app

        from envctl.sandbox import moto_costs
        from envctl.sandbox.dependency_rules import DependencyRules

        moto_costs.apply()
        self.log = RequestLog()
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.rules = DependencyRules(self.moto_app) if dependency_rules else None
        app = LoggingMiddleware(self.rules if self.rules is not None else self.moto_app, self.log)
        self.app = wrap(app) if wrap else app
        self._port = port
        self._server = None
        self._thread = None

    def start(self) -> "EmulatedAws":
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", self._port, self.app, threaded=True,
                                   request_handler=keep_alive_handler())
        # Before the first connection: the connections it accepts inherit the option, so even
        # a connection's first request is stamped.
        stamp_arrivals(self._server.socket)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.configure({"lambda": {"use_docker": False}})
        return self

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")).read()
        self.configure({"lambda": {"use_docker": False}})
        self.log.clear()
        if self.rules is not None:
            self.rules.clear()

    def configure(self, config: dict) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/config", data=json.dumps(config).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._thread.join(5)


def stamp_arrivals(sock: socket.socket) -> None:
    """Ask the kernel to stamp what `sock` receives with the time it arrived (received_at)."""
    if _SO_TIMESTAMPNS is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            pass


def received_at(sock: socket.socket) -> float | None:
    """Wait for the next bytes on `sock` and say when they reached this machine, on
    time.monotonic()'s clock: the kernel's stamp (stamp_arrivals), read by peeking, so the
    bytes stay for the request's parser. None where there is no stamp. Raises TimeoutError
    when nothing comes within the socket's timeout."""
    try:
        _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
    except TimeoutError:
        raise
    except (OSError, NotImplementedError):        # NotImplementedError: a TLS socket has no recvmsg
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])     # a timespec, on the wall clock
            now = time.monotonic()
            return min(now, now - (time.time() - (seconds + nanoseconds / 1e9)))
    return None


def keep_alive_handler():
    """werkzeug's request handler, made to keep a connection open between calls as AWS does.

    werkzeug's own handler closes every connection after one answer, because http.server
    cannot tell where a request body the application left unread ends. botocore keeps its
    connections to AWS open, so against a closing server every call paid for a new
    connection and the server for a new thread: 181 connections instead of 42 for the
    example's create, and client and emulator time that AWS does not cost. This handler
    reads the body by its Content-Length before the application runs, so nothing is left
    unread, and answers with a Content-Length. A request with a chunked body gets werkzeug's
    own handling; it, and one that fails, close the connection. An idle connection's thread
    ends after 5 seconds; botocore reconnects when it finds a connection closed.

    Each request's environ says when its first bytes reached the machine (RECEIVED), as the
    kernel stamped them: the Latency layer counts from then, as a region's latency counts
    from when the call reached it. Counted from when this process got round to the request,
    every call also took the time its threads queued for Python's interpreter lock behind
    moto's work on other calls, which a region does not add: on average 3 ms a call in the
    example's create, 5-8 ms in its destroy, 9-16 ms in its diff (16 calls at once), at most
    75 ms (benchmarks/README.md).
    """
    from werkzeug.serving import WSGIRequestHandler

    class KeepAliveHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5
        disable_nagle_algorithm = True      # headers and body are two writes: don't hold the second

        received: float | None = None       # a connection is stamped as its listener is (stamp_arrivals)

        def handle_one_request(self) -> None:
            try:
                self.received = received_at(self.connection)
            except TimeoutError:                # idle for `timeout`: close, as werkzeug would
                self.close_connection = True
                return
            super().handle_one_request()

        def make_environ(self) -> dict:
            environ = super().make_environ()
            if self.received is not None:
                environ[RECEIVED] = self.received
            return environ

        def log_request(self, *args, **kwargs):
            pass

        def log_error(self, format: str, *args) -> None:
            if not format.startswith("Request timed out"):     # an idle connection closing: normal
                super().log_error(format, *args)

        def run_wsgi(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return super().run_wsgi()           # werkzeug dechunks it, then closes
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.environ = environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            answer: list = []

            def start_response(status, headers, exc_info=None):
                answer[:] = [status, headers]
                return chunks.append

            chunks: list[bytes] = []
            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except (ConnectionError, TimeoutError):
                self.close_connection = True      # dropped on purpose (fault injection): say nothing
                return
            except Exception:
                self.close_connection = True
                self.server.log("error", "Error on request:\n" + traceback.format_exc())
                self.send_error(500)
                return
            status, headers = answer
            data = b"".join(chunks)
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            for key, value in headers:
                if key.lower() in ("connection", "transfer-encoding"):
                    continue
                if key.lower() == "content-length" and self.command != "HEAD":
                    continue                        # set below; a HEAD answer's is the resource's
                self.send_header(key, value)
            has_body = self.command != "HEAD" and code not in ("204", "304")
            if has_body:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if has_body:
                self.wfile.write(data)
            self.wfile.flush()

    return KeepAliveHandler
