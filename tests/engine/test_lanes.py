"""LanePool: discovery's read threads, shared fairly by the kinds (engine/lanes.py)."""
from __future__ import annotations

import threading

import pytest

from envctl.engine.lanes import LanePool

WAIT_S = 10     # only a bound for a broken pool: nothing here waits this long when it works


def test_a_lane_behind_a_slow_one_is_not_kept_waiting():
    # Lane A asked first, and each of its reads waits (a service AWS paces). When one of
    # them ends, the thread it frees must take B's read, not A's next one: first come, first
    # served, B would wait for all of A's.
    release = [threading.Event() for _ in range(5)]
    started: list = []

    def slow(i: int) -> int:
        started.append(i)
        release[i].wait(WAIT_S)
        return i

    with LanePool(2) as pool:
        a, b = pool.lane(), pool.lane()
        slow_reads = [a.submit(slow, i) for i in range(5)]
        read_b = b.submit(lambda: started.append("b") or "b")
        release[0].set()
        try:
            assert read_b.result(timeout=WAIT_S) == "b"
        finally:
            for event in release:
                event.set()
        assert [f.result(timeout=WAIT_S) for f in slow_reads] == [0, 1, 2, 3, 4]
    assert started.index("b") < started.index(2)


def test_lanes_take_turns():
    go = threading.Event()
    order: list[str] = []
    with LanePool(1) as pool:
        a, b = pool.lane(), pool.lane()
        first = a.submit(lambda: (go.wait(WAIT_S), order.append("a0")))
        futures = [first]
        for i in (1, 2):
            futures.append(a.submit(order.append, f"a{i}"))
        for i in (0, 1, 2):
            futures.append(b.submit(order.append, f"b{i}"))
        go.set()
        for f in futures:
            f.result(timeout=WAIT_S)
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_results_errors_and_the_end_of_the_block():
    done = []
    with LanePool(3) as pool:
        lane = pool.lane()
        ok = [lane.submit(lambda n=n: (done.append(n), n * n)[1]) for n in range(20)]
        bad = lane.submit(lambda: 1 / 0)
    # Leaving the block waited for every read submitted.
    assert sorted(done) == list(range(20))
    assert [f.result() for f in ok] == [n * n for n in range(20)]
    with pytest.raises(ZeroDivisionError):
        bad.result()


def test_no_more_threads_than_asked():
    release = threading.Event()
    running = []
    lock = threading.Lock()

    def read():
        with lock:
            running.append(threading.current_thread().name)
        release.wait(WAIT_S)

    with LanePool(3, name="t") as pool:
        lanes = [pool.lane() for _ in range(4)]
        futures = [lane.submit(read) for lane in lanes for _ in range(3)]
        release.set()
        for f in futures:
            f.result(timeout=WAIT_S)
    assert len(set(running)) <= 3


def test_an_error_leaving_the_block_cancels_what_has_not_started():
    release = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        with LanePool(1) as pool:
            lane = pool.lane()
            running = threading.Event()
            started = lane.submit(lambda: running.set() or release.wait(WAIT_S))
            assert running.wait(WAIT_S)
            waiting = [lane.submit(lambda: "never") for _ in range(3)]
            waiting[-1].add_done_callback(lambda f: release.set())     # once cancelled, the first read ends
            raise KeyboardInterrupt
    assert started.result() is True
    assert all(f.cancelled() for f in waiting)
    with pytest.raises(RuntimeError):
        lane.submit(lambda: None)
