"""The benchmark's clock: `python -S benchmarks/timer.py OUT CMD [ARG...]`.

Runs CMD (its output goes where this process's goes) and writes to OUT, on one line: when
it started (epoch seconds), its wall time, its exit code (-N for a signal), its peak RSS in
KB and its user and system CPU seconds.

It runs in a process of its own because the benchmark's process cannot time a command's
end: the emulator lives there, and when a command exits, every connection it kept open
closes and wakes one of the emulator's threads, all wanting the process's interpreter lock
at the moment the benchmark's thread returns from waiting. Timed there, commands ended
1–51 ms later than they did (17–40 ms in the median; an `sh -c 'CMD; date'` around the
same command said when it ended). Peak RSS and CPU time come from wait4: this process is
small, so its child does not start out holding a large parent's pages.
"""
from __future__ import annotations

import os
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: timer.py OUT CMD [ARG...]", file=sys.stderr)
        return 2
    out, command = argv[0], argv[1:]
    started = time.time()
    start = time.monotonic()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        f.write(f"{started!r} {wall!r} {code} {usage.ru_maxrss} {usage.ru_utime!r} {usage.ru_stime!r}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
