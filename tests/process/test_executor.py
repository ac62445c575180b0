"""The thread-per-attempt executor keeps idle threads for the next attempts."""

from __future__ import annotations

import threading

from tierd.processes._executor import ThreadExecutor


def test_a_finished_thread_takes_the_next_job_and_join_waits_for_running_ones():
    """Ten jobs one after the other need one thread; join returns 0 once they are done."""
    executor = ThreadExecutor(idle_timeout=5)
    for _ in range(10):
        done = threading.Event()
        executor.submit(done.set, "job")
        assert done.wait(5)
        assert executor.join(5) == 0
    assert executor.threads_started == 1


def test_jobs_at_once_get_a_thread_each():
    """Three blocked jobs: three threads; join with a short timeout says three still run."""
    executor = ThreadExecutor(idle_timeout=5)
    gate = threading.Event()
    for _ in range(3):
        executor.submit(lambda: gate.wait(5), "blocked")
    assert executor.join(0.05) == 3
    gate.set()
    assert executor.join(5) == 0
    assert executor.threads_started == 3
