"""A thread pool shared fairly by lanes: discovery's reads, one lane per kind.

A plain ThreadPoolExecutor serves reads first come, first served. When AWS paces a service
(a rate limit, published or learnt from throttling), the reads of the kind that asked first
hold every thread while the other kinds' reads, whose services have limits of their own,
wait behind them: at 1,000 resources under AWS's limits, discovery read tables, then
queues, then topics, then schedules, one kind after another (43 s). Here a free thread
takes its next read from the lane with the fewest reads running, then the lane that has
waited longest, so that kinds read side by side and a slow one holds only its share.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class LanePool:
    """`threads` threads (started as work comes) serving any number of lanes.

    Use as a context manager: leaving it waits for the reads already submitted.
    """

    def __init__(self, threads: int, name: str = "lane"):
        self._max_threads = max(1, threads)
        self._name = name
        self._cond = threading.Condition()
        self._lanes: list[Lane] = []          # in the order they last had a read taken (the first waited longest)
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def lane(self) -> "Lane":
        with self._cond:
            lane = Lane(self)
            self._lanes.append(lane)
            return lane

    def _submit(self, lane: "Lane", fn: Callable[..., Any], args, kwargs) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("cannot submit to a closed LanePool")
            lane.queue.append((future, fn, args, kwargs))
            self._cond.notify()
            pending = sum(len(ln.queue) for ln in self._lanes)
            if pending > self._idle and len(self._threads) < self._max_threads:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _next(self) -> tuple["Lane", tuple] | None:
        """Under the lock: the next read, from the lane with the fewest running, then the one
        that waited longest; None when no lane has one."""
        ready = [lane for lane in self._lanes if lane.queue]
        if not ready:
            return None
        lane = min(ready, key=lambda ln: ln.running)       # min keeps the first of equals: the longest waiting
        self._lanes.remove(lane)
        self._lanes.append(lane)
        lane.running += 1
        return lane, lane.queue.popleft()

    def _work(self) -> None:
        while True:
            with self._cond:
                taken = self._next()
                while taken is None:
                    if self._closed:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                    taken = self._next()
            lane, (future, fn, args, kwargs) = taken
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as e:     # noqa: BLE001 — handed to the caller through its future
                        future.set_exception(e)
                    else:
                        future.set_result(result)
            finally:
                with self._cond:
                    lane.running -= 1

    def shutdown(self, cancel: bool = False) -> None:
        """Stop taking reads; wait for those submitted (cancelled instead, with `cancel`)."""
        with self._cond:
            self._closed = True
            if cancel:
                for lane in self._lanes:
                    while lane.queue:
                        lane.queue.popleft()[0].cancel()
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def __enter__(self) -> "LanePool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.shutdown(cancel=exc_type is not None)


class Lane(Executor):
    """One submitter's share of a LanePool (an Executor: `submit` only; the pool shuts down)."""

    def __init__(self, pool: LanePool):
        self._pool = pool
        self.queue: deque = deque()
        self.running = 0

    def submit(self, fn: Callable[..., Any], /, *args, **kwargs) -> Future:
        return self._pool._submit(self, fn, args, kwargs)
