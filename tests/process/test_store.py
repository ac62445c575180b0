"""The behaviour every `ProcessStore` must have, run over each store.

A new store (PostgreSQL) joins by adding a parameter to the ``store`` fixture.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import tierd
from tests.processes import free_port
from tierd.processes import _postgres as postgres_module
from tierd.processes import _sqlite as sqlite_module
from tierd.processes._postgres import PostgresProcessStore
from tierd.processes._record import ItemRecord, ProcessRecord, new_process_id
from tierd.processes._sqlite import SqliteProcessStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tierd.processes._store import ProcessStore

STEPS = ["one", "two", "three"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessStore]:
    """Each store implementation, fresh and empty (PostgreSQL: a new database on a real server)."""
    made: ProcessStore
    if request.param == "sqlite":
        made = SqliteProcessStore(tmp_path / "processes.db")
    else:
        made = PostgresProcessStore(request.getfixturevalue("postgres_url"), poll_interval=0.05)
    yield made
    made.close()


def record(kind: str = "k", *, priority: int = 10, key: str | None = None, at: float = 100.0,
           params: Any = None) -> ProcessRecord:  # fmt: skip
    made = ProcessRecord.new(
        new_process_id(at), kind, STEPS, params, priority=priority, key=key,
        correlation={"user_id": "u"}, created_at=at,
    )  # fmt: skip
    made.seq = 1
    return made


def submitted(at: float = 100.0) -> list[dict[str, Any]]:
    return [{"type": "process_submitted", "at": at, "seq": 1}]


def create(store: ProcessStore, *args: Any, **kwargs: Any) -> str:
    one = record(*args, **kwargs)
    process_id, created = store.create(one, submitted(one.created_at))
    assert created
    return process_id


def test_a_created_process_reads_back_pending_with_every_step_pending(store):
    """Every field survives; steps that never started read as pending."""
    one = record(params={"id": 1, "data": b"\x00"})
    store.create(one, submitted())
    back = store.get(one.process_id)
    assert back is not None
    assert back.status_document() == one.status_document()
    assert back.steps["one"].status == "pending"


def test_an_unknown_id_reads_as_none_and_has_no_history(store):
    """Never a fake row."""
    assert store.get("nope") is None
    assert store.history("nope") == []


def test_a_key_taken_by_an_unfinished_process_returns_its_id_and_writes_nothing(store):
    """Idempotency within a kind; another kind may use the same key."""
    first = create(store, key="k1")
    again = record(key="k1")
    assert store.create(again, submitted()) == (first, False)
    assert store.get(again.process_id) is None
    assert store.create(record("other", key="k1"), submitted())[1]


def test_a_save_is_committed_when_its_outcome_is_set_and_read_in_order(store):
    """The row, the named steps and the event, in one group commit."""
    one = record()
    store.create(one, submitted())
    one.status = "running"
    one.steps["one"].status = "running"
    one.steps["one"].attempts = 1
    one.seq = 2
    assert store.save(one, ["one"], {"type": "step_started", "at": 1.0, "seq": 2}).wait(5) is None
    back = store.get(one.process_id)
    assert back is not None
    assert back.status == "running"
    assert back.steps["one"].attempts == 1
    assert [e["type"] for e in store.history(one.process_id)] == [
        "process_submitted",
        "step_started",
    ]


def test_saves_from_many_threads_are_all_committed_and_the_barrier_waits_for_them(store):
    """Group commits lose nothing."""
    records = [record() for _ in range(50)]
    for one in records:
        store.create(one, submitted())

    def save(one: ProcessRecord) -> None:
        for seq in range(2, 12):
            one.seq = seq
            store.save(one, [], {"type": "step_progress", "at": 1.0, "seq": seq})

    threads = [threading.Thread(target=save, args=(one,)) for one in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.barrier().wait(10) is None
    assert all(len(store.history(one.process_id)) == 11 for one in records)


def test_claim_takes_pending_by_priority_then_submit_order_and_marks_them_running(store):
    """And never the same process twice."""
    ids = [create(store, priority=p) for p in (10, 5, 10, 1)]
    other = create(store, "other")
    claimed = store.claim("k", 3, "me", 200.0)
    assert [c.process_id for c in claimed] == [ids[3], ids[1], ids[0]]
    assert all(c.status == "running" and c.started_at == 200.0 for c in claimed)
    assert [c.process_id for c in store.claim("k", 5, "me", 201.0)] == [ids[2]]
    assert store.claim("k", 5, "me", 202.0) == []
    assert store.get(other).status == "pending"
    assert store.history(ids[3])[-1]["type"] == "process_started"


def test_cancel_pending_cancels_only_what_is_pending(store):
    """A running process is the runner's to cancel."""
    waiting = create(store)
    cancelled = store.cancel_pending(waiting, 300.0)
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    assert cancelled.finished_at == 300.0
    assert store.cancel_pending(waiting, 301.0) is None
    running = create(store)
    store.claim("k", 1, "me", 1.0)
    assert store.cancel_pending(running, 302.0) is None


def test_requeue_keeps_the_steps_before_and_resets_the_rest(store):
    """A finished process goes back to pending from a given step."""
    one = record()
    store.create(one, submitted())
    for name in STEPS:
        one.steps[name].status = "completed"
        one.steps[name].output = name.upper()
    one.status, one.finished_at, one.seq = "failed", 5.0, 2
    store.save(one, STEPS, {"type": "process_failed", "at": 5.0, "seq": 2}).wait(5)
    back = store.requeue(one.process_id, 1, 6.0)
    assert back is not None
    assert back.status == "pending"
    assert back.steps["one"].status == "completed"
    assert back.steps["one"].output == "ONE"
    assert back.steps["two"].status == "pending"
    assert store.requeue(one.process_id, 1, 7.0) is None  # pending: not finished


def test_list_is_newest_first_filtered_and_paged_by_cursor(store):
    """kind, status, since/until; the cursor walks each page once."""
    ids = [create(store, "a" if i % 2 else "b", at=100.0 + i) for i in range(7)]
    page = store.list(limit=3)
    assert [r.process_id for r in page.items] == ids[::-1][:3]
    seen, cursor = [], None
    while True:
        page = store.list(kind="a", limit=2, cursor=cursor)
        seen += [r.process_id for r in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == [ids[5], ids[3], ids[1]]
    assert [r.process_id for r in store.list(since=104.0, until=106.0).items] == [ids[5], ids[4]]
    assert store.list(status="running").items == []
    with pytest.raises(ValueError, match="bad cursor"):
        store.list(cursor="x")


def test_unfinished_and_counts_report_what_is_left_to_do(store):
    """Running and paused are recovered; counts cover pending, running and paused."""
    create(store)
    create(store)
    create(store, "other")
    store.claim("k", 1, "me", 1.0)
    assert [r.status for r in store.unfinished("me")] == ["running"]
    assert store.counts() == {("k", "pending"): 1, ("k", "running"): 1, ("other", "pending"): 1}


def test_prune_deletes_finished_processes_before_their_cutoff_in_bounded_batches(store):
    """With their steps and events; unfinished ones are never pruned."""
    ids = []
    for _ in range(5):
        one = record()
        store.create(one, submitted())
        one.status, one.finished_at, one.seq = "completed", 10.0, 2
        store.save(one, ["one"], {"type": "process_completed", "at": 10.0, "seq": 2})
        ids.append(one.process_id)
    keep = create(store)
    store.barrier().wait(5)
    assert store.prune({"completed": 11.0}, batch=2) == 2
    assert store.prune({"completed": 11.0}, batch=2) == 2
    assert store.prune({"completed": 11.0, "failed": 11.0}, batch=2) == 1
    assert store.prune({"completed": 11.0}, batch=2) == 0
    assert all(store.get(i) is None and store.history(i) == [] for i in ids)
    assert store.get(keep) is not None


def test_items_are_saved_in_order_with_the_saves_and_read_back_by_index(store):
    """Added pending, then their state saved by index; every field survives; counts by status."""
    pid = create(store)
    store.add_items(pid, [ItemRecord(i, {"n": i, "raw": b"\x01"}) for i in range(5)])
    done = ItemRecord(1, {"n": 1, "raw": b"\x01"}, "completed", 1, None, [1, "one"])
    error = {"error_type": "ValueError", "message": "bad", "attempt": 2}
    failed = ItemRecord(3, {"n": 3, "raw": b"\x01"}, "failed", 2, error, None)
    assert store.save_items(pid, [done, failed]).wait(5) is None
    back = store.items(pid)
    assert [one.index for one in back] == [0, 1, 2, 3, 4]
    assert back[1] == done
    assert back[3] == failed
    assert back[0] == ItemRecord(0, {"n": 0, "raw": b"\x01"})
    assert store.item_counts(pid) == {"pending": 3, "completed": 1, "failed": 1}
    assert store.items("nope") == []
    assert store.item_counts("nope") == {}


def test_items_page_after_an_index_and_filter_by_statuses(store):
    """Pages by index (``after``, ``limit``), only the statuses asked for."""
    pid = create(store)
    rows = [ItemRecord(i, i, "completed" if i % 3 == 0 else "pending") for i in range(10)]
    store.add_items(pid, rows).wait(5)
    assert [one.index for one in store.items(pid, after=-1, limit=4)] == [0, 1, 2, 3]
    assert [one.index for one in store.items(pid, after=3, limit=4)] == [4, 5, 6, 7]
    assert [one.index for one in store.items(pid, after=7, limit=4)] == [8, 9]
    assert [one.index for one in store.items(pid, statuses=["completed"])] == [0, 3, 6, 9]
    pending = store.items(pid, statuses=["pending", "running"], after=4, limit=3)
    assert [one.index for one in pending] == [5, 7, 8]


def test_an_item_that_cannot_be_stored_raises_type_error_and_queues_nothing(store):
    """Items and results are msgpack-able or refused before anything is written."""
    pid = create(store)
    with pytest.raises(TypeError, match="msgpack"):
        store.add_items(pid, [ItemRecord(0, 0), ItemRecord(1, object())])
    store.add_items(pid, [ItemRecord(0, 0)])
    with pytest.raises(TypeError, match="msgpack"):
        store.save_items(pid, [ItemRecord(0, 0, "completed", 1, None, object())])
    store.barrier().wait(5)
    assert store.items(pid) == [ItemRecord(0, 0)]


def test_prune_deletes_the_items_of_the_processes_it_deletes(store):
    """A pruned batch leaves no item rows; another process's items stay."""
    gone, kept = record(), record()
    for one in (gone, kept):
        store.create(one, submitted())
        store.add_items(one.process_id, [ItemRecord(i, i, "completed") for i in range(3)])
    gone.status, gone.finished_at, gone.seq = "completed", 10.0, 2
    store.save(gone, [], {"type": "process_completed", "at": 10.0, "seq": 2})
    store.barrier().wait(5)
    assert store.prune({"completed": 11.0}) == 1
    assert store.items(gone.process_id) == []
    assert len(store.items(kept.process_id)) == 3


def test_finished_since_and_step_durations_feed_the_statistics(store):
    """Durations by step, over completed steps of a kind."""
    one = record()
    store.create(one, submitted())
    one.status, one.started_at, one.finished_at, one.seq = "completed", 10.0, 14.0, 2
    for name, seconds in zip(STEPS, (1.0, 2.0, 1.0), strict=True):
        step = one.steps[name]
        step.status, step.duration, step.finished_at = "completed", seconds, 13.0
    store.save(one, STEPS, {"type": "process_completed", "at": 14.0, "seq": 2}).wait(5)
    assert store.step_durations("k") == {"one": 1.0, "two": 2.0, "three": 1.0}
    (finished,) = store.finished_since(12.0)
    assert finished.status == "completed"
    assert finished.duration == 4.0
    assert finished.steps == {"one": 1.0, "two": 2.0, "three": 1.0}
    assert store.finished_since(15.0) == []


def test_a_second_sqlite_store_on_the_same_file_is_refused(tmp_path):
    """One runtime per SQLite file: the second gets a ConfigError that names the key.

    SQLite only: several runtimes share one PostgreSQL database by design.
    """
    first = SqliteProcessStore(tmp_path / "processes.db")
    try:
        with pytest.raises(tierd.ConfigError, match=r"\[processes\] store: .*another running"):
            SqliteProcessStore(tmp_path / "processes.db")
    finally:
        first.close()


def test_a_store_that_cannot_be_written_refuses_the_create_and_keeps_nothing(store, tmp_path):
    """A failed submit leaves no row (here: a value msgpack cannot hold)."""
    with pytest.raises(TypeError, match="not storable"):
        store.create(record(params=object()), submitted())
    assert store.list().items == []


def test_a_full_disk_refuses_the_create_with_a_clear_error_and_keeps_nothing(tmp_path):
    """SQLite's 'database or disk is full' (a page limit here) is Rejected; no row is left.

    SQLite only: the full disk is simulated with its ``max_page_count``.
    """
    store = SqliteProcessStore(tmp_path / "processes.db")
    try:
        (pages,) = store._writer_db.execute("PRAGMA page_count").fetchone()
        store._writer_db.execute(f"PRAGMA max_page_count = {pages}")
        big = record(params={"blob": b"x" * 100_000})
        with pytest.raises(tierd.Rejected, match="cannot be written: database or disk is full"):
            store.create(big, submitted())
        assert store.get(big.process_id) is None
        assert store.history(big.process_id) == []
    finally:
        store.close()


def test_a_process_created_running_is_owned_and_recovered_only_by_its_owner(store):
    """``create(owner=…)`` of a running process: ``unfinished`` is per owner."""
    one = record()
    one.status, one.started_at = "running", 100.0
    store.create(one, submitted(), owner="a")
    assert [r.process_id for r in store.unfinished("a")] == [one.process_id]
    assert store.unfinished("b") == []


def test_a_renewed_lease_is_kept_and_a_lapsed_one_is_adopted_once(store):
    """``claim_expired`` takes what its owner stopped renewing, of the kinds asked, just once."""
    kept, lapsed, other_kind = create(store), create(store), create(store, "other")
    assert len(store.claim("k", 1, "a", 10.0)) == 1
    assert len(store.claim("k", 1, "b", 10.0)) == 1
    assert len(store.claim("other", 1, "b", 10.0)) == 1
    assert store.renew("a", 50.0) == 1
    adopted = store.claim_expired("c", ["k"], 40.0, 60.0, 10)
    assert [r.process_id for r in adopted] == [lapsed]
    assert adopted[0].status == "running"
    assert store.claim_expired("d", ["k"], 40.0, 61.0, 10) == []  # c renewed it at 60.0
    assert [r.process_id for r in store.unfinished("c")] == [lapsed]
    assert [r.process_id for r in store.unfinished("a")] == [kept]
    assert store.get(other_kind).status == "running"
    assert store.claim_expired("c", ["other"], 40.0, 62.0, 10)[0].process_id == other_kind
    assert store.claim_expired("e", ["k"], 1000.0, 63.0, 0) == []


def test_claims_from_many_threads_never_take_a_process_twice_or_more_than_their_limit(store):
    """Several claimers at once (several runtimes on PostgreSQL) split the pending work."""
    ids = {create(store) for _ in range(60)}
    taken: list[list[str]] = []
    lock = threading.Lock()

    def claim(owner: str) -> None:
        while True:
            got = [r.process_id for r in store.claim("k", 4, owner, 1.0)]
            assert len(got) <= 4
            if not got:
                return
            with lock:
                taken.append(got)

    threads = [threading.Thread(target=claim, args=(f"o{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [i for batch in taken for i in batch]
    assert sorted(flat) == sorted(ids)


def test_the_schema_version_is_recorded_and_a_newer_schema_is_refused(store):
    """A store a newer tierd migrated is not opened: ConfigError naming the key."""
    assert store.schema_version >= 1
    store.close()
    if isinstance(store, SqliteProcessStore):
        with sqlite3.connect(store.path) as db:
            db.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
        with pytest.raises(tierd.ConfigError, match=r"\[processes\] store: .*version 999, newer"):
            SqliteProcessStore(store.path)
    else:
        url = store.url
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
        with pytest.raises(tierd.ConfigError, match=r"\[processes\] store: .*version 999, newer"):
            PostgresProcessStore(url)


def test_a_sqlite_file_from_before_schema_versions_is_migrated_in_place(tmp_path):
    """A version-1 file (no ``schema_version``, no leases) opens, keeps its rows, gains leases."""
    path = tmp_path / "processes.db"
    with sqlite3.connect(path) as db:
        db.executescript(sqlite_module.MIGRATIONS[0][2])
    old = SqliteProcessStore(path)
    try:
        assert old.schema_version == sqlite_module.SCHEMA_VERSION
        one = create(old)
        assert old.claim("k", 1, "a", 1.0)[0].process_id == one
        assert old.renew("a", 2.0) == 1
    finally:
        old.close()


def test_postgresql_migrations_run_once_when_many_runtimes_open_at_once(postgres_url):
    """Concurrent opens serialize on an advisory lock: one applies, the others see it applied."""
    results: list[tuple[int, int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(postgres_module.migrate(postgres_url)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    known = postgres_module.SCHEMA_VERSION
    assert sorted(results) == [(0, known)] + [(known, known)] * 3


def test_a_postgresql_store_that_cannot_be_reached_is_a_config_error_naming_the_key():
    """Nothing listens on the port: one clear line, no password in it."""
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(tierd.ConfigError, match=r"\[processes\] store: cannot use") as caught:
        PostgresProcessStore(url)
    assert "secret" not in str(caught.value)


def test_a_submit_elsewhere_wakes_the_other_runtimes_watcher_at_once(postgres_url):
    """PostgreSQL: NOTIFY on a pending submit reaches every other store's watcher.

    PostgreSQL only: a SQLite file has one runtime, which knows its own submits.
    """
    listening = PostgresProcessStore(postgres_url, poll_interval=30.0)
    listens, woke = threading.Event(), threading.Event()

    def watcher(kind: str | None) -> None:
        (woke if kind == "k" else listens).set()

    listening.watch(watcher)
    other = PostgresProcessStore(postgres_url, poll_interval=30.0)
    try:
        assert listens.wait(5)  # its first pass, once LISTEN is in place, reports None
        create(other)
        assert woke.wait(5)  # long before the 30 s poll
    finally:
        other.close()
        listening.close()


# -- schedules -----------------------------------------------------------------------


def test_a_fire_is_claimed_once(store):
    """The first claim of (schedule, fire time) wins; the same key again loses; others win."""
    assert store.claim_fire("nightly", 1000.0, 1000.5) is True
    assert store.claim_fire("nightly", 1000.0, 1000.6) is False
    assert store.claim_fire("nightly", 1060.0, 1060.5) is True
    assert store.claim_fire("hourly", 1000.0, 1000.5) is True
    fire = store.fires("nightly")[-1]
    assert (fire.fire_at, fire.outcome, fire.recorded_at, fire.manual) == (
        1000.0, "firing", 1000.5, False
    )  # fmt: skip


def test_claims_racing_from_threads_have_one_winner_per_fire(store):
    """Eight threads claim the same 50 fires: each fire is won exactly once."""
    wins: list[float] = []
    lock = threading.Lock()

    def claim() -> None:
        for n in range(50):
            if store.claim_fire("race", 1000.0 + n, 2000.0):
                with lock:
                    wins.append(1000.0 + n)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(wins) == [1000.0 + n for n in range(50)]


def test_a_finished_fire_keeps_its_outcome_ids_and_detail(store):
    """finish_fire writes the outcome and what it made; fires() reads newest first, by outcome."""
    for at in (1000.0, 1060.0, 1120.0):
        store.claim_fire("nightly", at, at)
    store.finish_fire("nightly", 1000.0, "fired", 1000.1, process_id="p1")
    store.finish_fire("nightly", 1060.0, "skipped", 1060.1, detail="last run p1 is unfinished")
    store.finish_fire("nightly", 1120.0, "fired", 1120.1, message_id="m3")
    assert store.claim_fire("nightly", 1130.0, 1130.0, manual=True)
    fires = store.fires("nightly")
    assert [(f.fire_at, f.outcome) for f in fires] == [
        (1130.0, "firing"), (1120.0, "fired"), (1060.0, "skipped"), (1000.0, "fired"),
    ]  # fmt: skip
    assert fires[0].manual is True
    assert fires[1].message_id == "m3"
    assert fires[2].detail == "last run p1 is unfinished"
    assert [f.process_id for f in store.fires("nightly", outcome="fired")] == [None, "p1"]
    assert len(store.fires("nightly", limit=2)) == 2
    assert store.fires("other") == []
    with pytest.raises(ValueError, match="unknown fire outcome 'done'"):
        store.finish_fire("nightly", 1000.0, "done", 1200.0)


def test_paused_schedules_are_kept(store):
    """set_schedule_paused is read back by paused_schedules; resuming removes it."""
    assert store.paused_schedules() == set()
    store.set_schedule_paused("nightly", 1000.0, paused=True)
    store.set_schedule_paused("hourly", 1000.0, paused=True)
    store.set_schedule_paused("hourly", 1001.0, paused=False)
    assert store.paused_schedules() == {"nightly"}


def test_schedule_state_survives_reopening_the_file(tmp_path):
    """Fires and pauses are on disk: a new store on the same file sees them."""
    first = SqliteProcessStore(tmp_path / "processes.db")
    first.claim_fire("nightly", 1000.0, 1000.0)
    first.set_schedule_paused("nightly", 1000.0, paused=True)
    first.close()
    again = SqliteProcessStore(tmp_path / "processes.db")
    try:
        assert again.paused_schedules() == {"nightly"}
        assert again.claim_fire("nightly", 1000.0, 1001.0) is False
    finally:
        again.close()


def test_an_older_file_gets_the_new_fire_columns(tmp_path):
    """A schedule_fires table made before message_id, detail and manual gains them on open."""
    path = tmp_path / "processes.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schedule_fires (schedule TEXT NOT NULL, fire_at REAL NOT NULL, "
            "process_id TEXT, outcome TEXT NOT NULL, recorded_at REAL NOT NULL, "
            "PRIMARY KEY (schedule, fire_at)) WITHOUT ROWID"
        )
    db.close()
    store = SqliteProcessStore(path)
    try:
        assert store.claim_fire("nightly", 1000.0, 1000.0, manual=True)
        store.finish_fire("nightly", 1000.0, "fired", 1000.5, message_id="m1", detail="ok")
        (fire,) = store.fires("nightly")
        assert (fire.message_id, fire.detail, fire.manual) == ("m1", "ok", True)
    finally:
        store.close()


def test_old_fires_are_pruned_in_batches_but_each_schedule_keeps_its_latest(store):
    """prune_fires deletes fires recorded before the cutoff, batch by batch; the last stays."""
    for n in range(5):
        store.claim_fire("nightly", 1000.0 + n, 1000.0 + n)
    store.claim_fire("hourly", 1000.0, 1000.0)
    store.claim_fire("fresh", 1000.0, 5000.0)
    assert store.prune_fires(4000.0, batch=3) == 3
    assert store.prune_fires(4000.0, batch=3) == 1
    assert store.prune_fires(4000.0, batch=3) == 0
    assert [f.fire_at for f in store.fires("nightly")] == [1004.0]
    assert len(store.fires("hourly")) == 1
    assert len(store.fires("fresh")) == 1
