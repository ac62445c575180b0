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


def test_a_job_handed_on_at_the_end_of_a_job_runs_next_in_the_same_thread():
    """submit_next from a job: the same thread runs it after; join counts it until done."""
    executor = ThreadExecutor(idle_timeout=5)
    threads: list[str] = []
    done = threading.Event()
    gate = threading.Event()

    def second() -> None:
        threads.append(threading.current_thread().name)
        gate.wait(5)
        done.set()

    def first() -> None:
        threads.append(threading.current_thread().name)
        executor.submit_next(second, "second")

    executor.submit(first, "first")
    assert executor.join(0.05) == 1  # the handed-on job still runs
    gate.set()
    assert done.wait(5)
    assert executor.join(5) == 0
    assert threads == ["first", "second"]  # one thread, renamed for each job
    assert executor.threads_started == 1


def test_submit_next_outside_a_job_is_a_plain_submit():
    """From a thread the executor does not run, the job gets a thread of its own."""
    executor = ThreadExecutor(idle_timeout=5)
    done = threading.Event()
    executor.submit_next(done.set, "alone")
    assert done.wait(5)
    assert executor.join(5) == 0
