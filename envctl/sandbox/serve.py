"""python -m envctl.sandbox.serve --port N: run the emulated AWS in the foreground."""
from __future__ import annotations

import argparse
import signal
import threading

from envctl.sandbox.server import EmulatedAws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=4599)
    args = parser.parse_args()
    server = EmulatedAws(port=args.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
