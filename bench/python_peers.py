#!/usr/bin/env python3
"""Python's process pools, measured the way atasker-bench measures ours.

Run by atasker-bench as a subprocess; standard library only. Prints one JSON
document on stdout: {"rows": [{group, peer, metric, unit, better, samples}],
"notes": [...]}, one sample per round in every row.

    python_peers.py roundtrip  --samples S --rounds R --workers W
    python_peers.py throughput --tasks N --rounds R --workers W
    python_peers.py idle       --seconds T --rounds R --workers W
    python_peers.py crash      --crashes K --rounds R --workers W
    python_peers.py map        --tasks N --rounds R --workers W
"""

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time

CTX = mp.get_context("fork")
_death_stamp = None  # a shared double: when a worker killed itself (monotonic ns)


def square(x):
    return x * x


def die():
    _death_stamp.value = time.monotonic_ns()
    os.kill(os.getpid(), signal.SIGKILL)


def _init_worker(stamp):
    global _death_stamp
    _death_stamp = stamp


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100.0 * len(ordered))))
    return ordered[rank - 1]


class Rows:
    def __init__(self):
        self.rows = []
        self.notes = []

    def add(self, group, peer, metric, unit, better, value):
        for r in self.rows:
            if (r["group"], r["peer"], r["metric"]) == (group, peer, metric):
                r["samples"].append(value)
                return
        self.rows.append({"group": group, "peer": peer, "metric": metric, "unit": unit,
                          "better": better, "samples": [value]})

    def dump(self):
        json.dump({"rows": self.rows, "notes": self.notes}, sys.stdout)
        sys.stdout.write("\n")


def latencies(call, samples):
    for _ in range(20):  # warm-up: workers started, code paths hot
        call()
    out = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def cmd_roundtrip(a, rows):
    all_cpus = os.sched_getaffinity(0)
    for group, cpus in (("unpinned", all_cpus), ("pinned to CPU 0", {min(all_cpus)})):
        for _ in range(a.rounds):
            os.sched_setaffinity(0, cpus)  # the forked workers inherit it
            try:
                with CTX.Pool(a.workers) as pool:
                    lat = latencies(lambda: pool.apply_async(square, (7,)).get(), a.samples)
                    rows.add(group, "multiprocessing.Pool.apply_async", "p50", "us", "lower", percentile(lat, 50))
                    rows.add(group, "multiprocessing.Pool.apply_async", "p99", "us", "lower", percentile(lat, 99))
                with cf.ProcessPoolExecutor(a.workers, mp_context=CTX) as ex:
                    lat = latencies(lambda: ex.submit(square, 7).result(), a.samples)
                    rows.add(group, "ProcessPoolExecutor.submit", "p50", "us", "lower", percentile(lat, 50))
                    rows.add(group, "ProcessPoolExecutor.submit", "p99", "us", "lower", percentile(lat, 99))
            finally:
                os.sched_setaffinity(0, all_cpus)
    rows.notes.append("Python peers: round trip of square(7) measured in the calling process with perf_counter_ns")


def cmd_throughput(a, rows):
    n = a.tasks
    group = f"{n} tasks in flight"
    for _ in range(a.rounds):
        with CTX.Pool(a.workers) as pool:
            pool.map(square, range(100), chunksize=1)
            for label, chunks in (("multiprocessing.Pool.map chunksize=1", 1),
                                  ("multiprocessing.Pool.map default chunksize", None)):
                t0 = time.perf_counter()
                out = pool.map(square, range(n), chunksize=chunks)
                dt = time.perf_counter() - t0
                assert out[-1] == (n - 1) * (n - 1)
                rows.add(group, label, "tasks/s", "tasks/s", "higher", n / dt)
        with cf.ProcessPoolExecutor(a.workers, mp_context=CTX) as ex:
            list(ex.map(square, range(100)))
            t0 = time.perf_counter()
            futures = [ex.submit(square, i) for i in range(n)]
            for f in futures:
                f.result()
            dt = time.perf_counter() - t0
            rows.add(group, "ProcessPoolExecutor.submit", "tasks/s", "tasks/s", "higher", n / dt)


def cmd_map(a, rows):
    n = a.tasks
    group = f"{n} inputs, square in worker processes"
    inputs = [i % 1000 for i in range(n)]
    for _ in range(a.rounds):
        with CTX.Pool(a.workers) as pool:
            pool.map(square, range(4))
            t0 = time.perf_counter()
            out = pool.map(square, inputs)
            dt = time.perf_counter() - t0
            assert out[-1] == inputs[-1] * inputs[-1]
            rows.add(group, "multiprocessing.Pool.map default chunksize", "tasks/s", "tasks/s", "higher", n / dt)


def _others_cpu():
    """Nanoseconds of CPU run by each thread of this process but the calling
    one and of its live descendants, by thread id (schedstat, exact), as the
    C++ side measures."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        children.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(name))
    me, out, todo = threading.get_native_id(), {}, [os.getpid()]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in map(int, tids):
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    ns = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if tid != me:
                out[tid] = ns
    return out


def _cpu_seconds_between(before, after):
    """CPU seconds run between two _others_cpu() snapshots by the threads
    alive at the second (one born between them counts whole)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


def cmd_idle(a, rows):
    group = f"{a.seconds:g} s idle"
    for _ in range(a.rounds):
        for label, make in (("multiprocessing.Pool", lambda: CTX.Pool(a.workers)),
                            ("ProcessPoolExecutor", lambda: cf.ProcessPoolExecutor(a.workers, mp_context=CTX))):
            with make() as pool:
                if isinstance(pool, cf.Executor):
                    list(pool.map(square, range(a.workers * 4)))
                else:
                    pool.map(square, range(a.workers * 4))
                before = _others_cpu()
                time.sleep(a.seconds)  # idling is what is measured
                cpu = _cpu_seconds_between(before, _others_cpu())
                rows.add(group, label + " (parent + workers)", "CPU", "ms", "lower", cpu * 1000.0)


def cmd_crash(a, rows):
    stamp = CTX.Value("d", 0.0, lock=False)
    for _ in range(a.rounds):
        to_error, to_serving = [], []
        for _ in range(a.crashes):
            ex = cf.ProcessPoolExecutor(a.workers, mp_context=CTX, initializer=_init_worker, initargs=(stamp,))
            ex.submit(square, 1).result()
            fut = ex.submit(die)
            try:
                fut.result()
            except cf.process.BrokenProcessPool:
                pass
            t1 = time.monotonic_ns()
            ex.shutdown(wait=True)
            # The whole executor is broken: serving again means a new one.
            with cf.ProcessPoolExecutor(a.workers, mp_context=CTX) as fresh:
                fresh.submit(square, 2).result()
            t2 = time.monotonic_ns()
            to_error.append((t1 - stamp.value) / 1000.0)
            to_serving.append((t2 - stamp.value) / 1000.0)
        rows.add("worker killed (SIGKILL)", "ProcessPoolExecutor", "death to error p50", "us", "lower",
                 percentile(to_error, 50))
        rows.add("worker killed (SIGKILL)", "ProcessPoolExecutor", "death to serving p50", "us", "lower",
                 percentile(to_serving, 50))

        serving = []
        with CTX.Pool(1, initializer=_init_worker, initargs=(stamp,)) as pool:
            pool.apply(square, (1,))
            for _ in range(a.crashes):
                pool.apply_async(die)  # never completes: the task is lost
                # One worker, FIFO: this runs after die(), in the replacement.
                pool.apply(square, (2,))
                serving.append((time.monotonic_ns() - stamp.value) / 1000.0)
            pool.terminate()
        rows.add("worker killed (SIGKILL)", "multiprocessing.Pool(1)", "death to serving p50", "us", "lower",
                 percentile(serving, 50))
    rows.notes.append("ProcessPoolExecutor: a dead worker breaks the whole executor (BrokenProcessPool for every "
                      "pending task); serving again = a new executor")
    rows.notes.append("multiprocessing.Pool: the dead worker's task never completes (its result never arrives); "
                      "its maintenance thread forks a replacement worker")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["roundtrip", "throughput", "idle", "crash", "map"])
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--crashes", type=int, default=5)
    a = p.parse_args()
    rows = Rows()
    modes = {"roundtrip": cmd_roundtrip, "throughput": cmd_throughput, "idle": cmd_idle, "crash": cmd_crash,
             "map": cmd_map}
    modes[a.mode](a, rows)
    rows.dump()


if __name__ == "__main__":
    main()
