#!/usr/bin/env python3
"""Celery and rq on a Redis server, measured the way atasker-bench measures
the remote lane: the round trip of square(x) one task at a time, and tasks
per second with many in flight, each with 2 worker processes.

Run by atasker-bench as a subprocess, with the Debian packages python3-celery
(5.2.6) and python3-rq (1.13) under /usr/bin/python3. Prints one JSON
document on stdout like python_peers.py; a peer whose package is missing or
whose workers do not come up becomes a note instead of rows.

    python_queue_peers.py --url redis://127.0.0.1:PORT --samples S --tasks N --rounds R
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from python_peers import Rows, percentile  # noqa: E402  (beside this script)

URL = os.environ.get("ATASKER_BENCH_REDIS_URL", "redis://127.0.0.1:6379")

try:
    import celery

    # The workers import this module by name (-A python_queue_peers) and
    # read the server from the environment.
    app = celery.Celery("python_queue_peers", broker=URL + "/1", backend=URL + "/1")
    app.conf.task_default_queue = "atasker_bench"
    app.conf.worker_prefetch_multiplier = 4
    app.conf.broker_connection_retry_on_startup = True

    @app.task(name="python_queue_peers.celery_square")  # the workers' name for it, not __main__'s
    def celery_square(x):
        return x * x
except ImportError:
    celery = None


def square(x):
    return x * x


def workers_env(url):
    env = dict(os.environ)
    env["ATASKER_BENCH_REDIS_URL"] = url
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    return env


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def measure(rows, peer, a, one, many):
    """Rounds of `one()` round trips and of `many(n)` in flight."""
    for _ in range(20):  # warm-up: workers up, connections made
        one()
    for _ in range(a.rounds):
        lat = []
        for _ in range(a.samples):
            t0 = time.perf_counter_ns()
            one()
            lat.append((time.perf_counter_ns() - t0) / 1000.0)
        rows.add("round trip, one at a time", peer, "p50", "us", "lower", percentile(lat, 50))
        rows.add("round trip, one at a time", peer, "p99", "us", "lower", percentile(lat, 99))
        t0 = time.perf_counter()
        many(a.tasks)
        rows.add(f"{a.tasks} tasks in flight", peer, "tasks/s", "tasks/s", "higher",
                 a.tasks / (time.perf_counter() - t0))


def run_celery(a, rows):
    if celery is None:
        rows.notes.append("Celery not measured: python3-celery is not installed (scripts/install-deps.sh)")
        return
    app.conf.update(broker_url=a.url + "/1", result_backend=a.url + "/1")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "python_queue_peers", "worker", "-c", "2", "-P", "prefork",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        env=workers_env(a.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        celery_square.delay(1).get(timeout=60)

        def one():
            assert celery_square.delay(7).get(timeout=60) == 49

        def many(n):
            results = [celery_square.delay(i % 1000) for i in range(n)]
            for i, r in enumerate(results):
                assert r.get(timeout=300) == (i % 1000) ** 2

        measure(rows, f"Celery {celery.__version__} prefork -c2", a, one, many)
    finally:
        stop([worker])


def run_rq(a, rows):
    try:
        import redis
        import rq
        from rq.results import Result
    except ImportError:
        rows.notes.append("rq not measured: python3-rq is not installed (scripts/install-deps.sh)")
        return
    conn = redis.Redis.from_url(a.url + "/2")
    queue = rq.Queue("atasker_bench", connection=conn)
    workers = [subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--url", a.url + "/2", "--worker-class",
                                 "rq.worker.SimpleWorker", "-q", "atasker_bench"],
                                env=workers_env(a.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]

    def wait(job):
        # rq 1.13 appends each result to a stream of its own: wait on it
        # there rather than polling the job.
        while not conn.xread({Result.get_key(job.id): "0-0"}, count=1, block=60000):
            pass
        return job.latest_result().return_value

    try:
        wait(queue.enqueue("python_queue_peers.square", 1))

        def one():
            assert wait(queue.enqueue("python_queue_peers.square", 7)) == 49

        def many(n):
            jobs = [queue.enqueue("python_queue_peers.square", i % 1000) for i in range(n)]
            for i, job in enumerate(jobs):
                assert wait(job) == (i % 1000) ** 2

        measure(rows, f"rq {rq.__version__} SimpleWorker x2", a, one, many)
    finally:
        stop(workers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    rows = Rows()
    for peer in (run_celery, run_rq):
        try:
            peer(a, rows)
        except Exception as e:  # a peer that fails is a note, the other still runs
            rows.notes.append(f"{peer.__name__[4:]} failed: {type(e).__name__}: {e}")
    rows.dump()


if __name__ == "__main__":
    main()
