"""The HTTP API against a real server on loopback: every route, its document and its errors."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from tests import daemons
from tests.web import kinds
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from tests.web.conftest import Served

pytestmark = pytest.mark.timeout(60)


def _submit(api: httpx.Client, kind: str = "held", params: Any = None, **fields: Any) -> str:
    response = api.post("/api/processes", json={"kind": kind, "params": params, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["process_id"])


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == kind, error
    return error


def _held(served: Served, api: httpx.Client, gate: str) -> str:
    """A process running its first step, held there until ``kinds.RELEASE[gate]`` is set."""
    kinds.RELEASE[gate] = threading.Event()
    process_id = _submit(api, "held", {"gate": gate})
    runner = served.runtime.processes
    wait_until(lambda: runner.get(process_id)["steps"]["wait"]["progress"] == 0.5, timeout=10)
    return process_id


def test_a_submitted_process_is_the_same_document_as_runtime_processes_get(served):
    """`POST /api/processes` submits; `GET /api/processes/{id}` is `Runtime.processes.get`."""
    one = served()
    api = one.client()
    process_id = _held(one, api, "same")
    response = api.get(f"/api/processes/{process_id}")
    assert response.status_code == 200
    assert response.json() == one.runtime.processes.get(process_id)
    assert response.json()["status"] == "running"


def test_a_key_already_used_by_an_unfinished_process_returns_its_id(served):
    """Submitting twice with one key gives the first process's id."""
    api = served().client()
    kinds.RELEASE["keyed"] = threading.Event()
    first = _submit(api, "held", {"gate": "keyed"}, key="order-7")
    assert _submit(api, "held", {"gate": "keyed"}, key="order-7") == first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": 1}, "body.kind"),
        ({"kind": "held", "colour": "red"}, "body.colour"),
        ({"kind": "held", "priority": [1]}, "body.priority"),
        ({"kind": "held", "correlation": "abc"}, "body.correlation"),
    ],
)
def test_a_submit_that_does_not_fit_is_422_naming_the_field(served, body, field):
    """A body missing a field, with an unknown one or one of the wrong type: 422 naming it."""
    response = served().client().post("/api/processes", json=body)
    error = _error(response, 422, "ValidationError")
    assert field in [problem["field"] for problem in error["fields"]]
    assert field in error["message"]


def test_an_unknown_kind_or_priority_is_422_saying_what_is_wrong(served):
    """The runtime's own checks (kind, priority, correlation keys) answer 422 with its sentence."""
    api = served().client()
    error = _error(api.post("/api/processes", json={"kind": "nope"}), 422, "ValueError")
    assert "unknown process kind 'nope'" in error["message"]
    error = _error(api.post("/api/processes", json={"kind": "held", "priority": 99}), 422,
                   "ValueError")  # fmt: skip
    assert "priority" in error["message"]
    response = api.post("/api/processes", json={"kind": "held", "correlation": {"who": "x"}})
    assert "unknown correlation keys" in _error(response, 422, "ValueError")["message"]


def test_an_unknown_process_id_is_404_naming_it_on_every_route(served):
    """Get, history, result, cancel, pause, resume and retry of an unknown id: 404 naming it."""
    api = served().client()
    for method, path in [
        ("GET", "/api/processes/01NOPE"), ("GET", "/api/processes/01NOPE/history"),
        ("GET", "/api/processes/01NOPE/result"), ("DELETE", "/api/processes/01NOPE"),
        ("POST", "/api/processes/01NOPE/pause"), ("POST", "/api/processes/01NOPE/resume"),
        ("POST", "/api/processes/01NOPE/retry"),
    ]:  # fmt: skip
        error = _error(api.request(method, path), 404, "ProcessNotFound")
        assert error["process_id"] == "01NOPE"
        assert "no process 01NOPE" in error["message"]


def test_the_list_filters_pages_and_refuses_bad_filters(served):
    """`GET /api/processes` filters by status, kind and age, pages by cursor; 422 on bad ones."""
    one = served()
    api = one.client()
    running = _held(one, api, "listed")
    failed = _submit(api, "broken", {"x": 1})
    wait_until(lambda: one.runtime.processes.get(failed)["status"] == "failed", timeout=10)
    page = api.get("/api/processes", params={"status": "running", "kind": "held"}).json()
    assert [item["process_id"] for item in page["items"]] == [running]
    everything = api.get("/api/processes", params={"since": "1h", "limit": 1}).json()
    assert [item["process_id"] for item in everything["items"]] == [failed]  # newest first
    rest = api.get("/api/processes", params={"limit": 1, "cursor": everything["cursor"]}).json()
    assert [item["process_id"] for item in rest["items"]] == [running]
    assert api.get("/api/processes", params={"until": "1h"}).json()["items"] == []
    error = _error(api.get("/api/processes", params={"status": "late"}), 422, "ValueError")
    assert "unknown status" in error["message"]
    error = _error(api.get("/api/processes", params={"since": "soon"}), 422, "ValueError")
    assert "'since'" in error["message"]
    error = _error(api.get("/api/processes", params={"limit": 0}), 422, "ValidationError")
    assert error["fields"][0]["field"] == "query.limit"


def test_history_result_and_stats_of_finished_processes(served):
    """History lists the events; result is the output, 409 while running or when it failed."""
    one = served()
    api = one.client()
    process_id = _held(one, api, "result")
    error = _error(api.get(f"/api/processes/{process_id}/result"), 409, "Conflict")
    assert "no result yet" in error["message"]
    kinds.RELEASE["result"].set()
    one.runtime.processes.wait(process_id, timeout=10)
    assert api.get(f"/api/processes/{process_id}/result").json() == {"result": {"done": "result"}}
    history = api.get(f"/api/processes/{process_id}/history").json()
    assert history == one.runtime.processes.history(process_id)
    assert history[0]["type"] == "process_submitted"
    assert history[-1]["type"] == "process_completed"
    failed = _submit(api, "broken")
    wait_until(lambda: one.runtime.processes.get(failed)["status"] == "failed", timeout=10)
    error = _error(api.get(f"/api/processes/{failed}/result"), 409, "ProcessFailed")
    assert error["status"] == "failed"
    assert error["detail"]["error_code"] == "bad_input"
    stats = api.get("/api/processes/stats", params={"kind": "held"}).json()
    assert stats["counts"]["completed"] == 1
    error = _error(api.get("/api/processes/stats", params={"window": -1}), 422, "ValidationError")
    assert error["fields"][0]["field"] == "query.window"


def test_pause_resume_cancel_and_retry_control_a_process(served):
    """Each control answers 202 and takes effect; one its state does not allow is 409."""
    one = served()
    api = one.client()
    runner = one.runtime.processes
    process_id = _held(one, api, "control")
    assert api.post(f"/api/processes/{process_id}/pause").status_code == 202
    assert api.post(f"/api/processes/{process_id}/resume").status_code == 202
    error = _error(api.post(f"/api/processes/{process_id}/retry"), 409, "Conflict")
    assert f"cannot retry process {process_id}: it is running" in error["message"]
    response = api.delete(f"/api/processes/{process_id}")
    assert response.status_code == 202
    assert response.json() == {"process_id": process_id, "requested": "cancel"}
    assert runner.wait(process_id, timeout=10)["status"] == "cancelled"
    error = _error(api.post(f"/api/processes/{process_id}/resume"), 409, "Conflict")
    assert "it is cancelled" in error["message"]
    kinds.RELEASE["control"].set()
    response = api.post(f"/api/processes/{process_id}/retry", json={"from_step": "wait"})
    assert response.status_code == 202, response.text
    assert runner.wait(process_id, timeout=10)["status"] == "completed"
    error = _error(api.post(f"/api/processes/{process_id}/retry", json={"from": "x"}), 422,
                   "ValidationError")  # fmt: skip
    assert error["fields"][0]["field"] == "body.from"


def test_a_paused_process_shows_paused(served):
    """`POST …/pause` pauses a running process at its next beat."""
    one = served()
    api = one.client()
    process_id = _held(one, api, "paused")
    assert api.post(f"/api/processes/{process_id}/pause").status_code == 202
    wait_until(lambda: api.get(f"/api/processes/{process_id}").json()["status"] == "paused", 10)


def test_messages_and_requests_go_to_daemons_with_their_errors(served):
    """Send gives an id; request gives the reply; unknown 404, bad 422, crash 502, late 504."""
    api = served().client()
    response = api.post("/api/messages", json={"target": "echo@1", "payload": {"a": 1}})
    assert response.status_code == 202
    assert len(response.json()["message_id"]) > 10
    reply = api.post("/api/requests", json={"target": "echo@1", "payload": [1, "two"]})
    assert reply.json() == {"reply": [1, "two"]}
    error = _error(api.post("/api/messages", json={"target": "ghost@1"}), 404, "UnknownRecipient")
    assert error["recipient"] == "ghost@1"
    assert "ghost" in error["message"]
    error = _error(api.post("/api/requests", json={"target": "nobody"}), 422, "ValueError")
    assert "nobody" in error["message"]
    error = _error(api.post("/api/requests", json={"target": "echo@1", "priority": "soon"}), 422,
                   "ValueError")  # fmt: skip
    assert "soon" in error["message"]
    error = _error(api.post("/api/requests", json={"target": "crasher@1", "payload": "x"}), 502,
                   "RemoteError")  # fmt: skip
    assert error["recipient"] == "crasher@1"
    assert error["error_type"] == "RuntimeError"
    response = api.post("/api/requests", json={"target": "gate@1", "timeout": 0.2})
    assert _error(response, 504, "RequestTimeout")["timeout"] == 0.2
    daemons.GATES["http-gate"].set()
    error = _error(api.post("/api/requests", json={"target": "echo@1", "timeout": 9999}), 422,
                   "ValidationError")  # fmt: skip
    assert error["fields"][0]["field"] == "body.timeout"


def test_a_delayed_message_is_held_and_a_bad_delay_is_422(served):
    """``delay`` holds a message before its level queues it; one beyond the limit is refused."""
    one = served()
    api = one.client()
    response = api.post("/api/messages", json={"target": "echo@1", "delay": 0.05})
    assert response.status_code == 202, response.text
    wait_until(lambda: one.runtime.status()["levels"][0]["daemons"][0]["processed"] == 1, 10)
    error = _error(api.post("/api/messages", json={"target": "echo@1", "delay": 1e9}), 422,
                   "ValueError")  # fmt: skip
    assert "delay" in error["message"]
    response = api.post("/api/messages", json={"target": "echo@1", "delay": -1})
    assert _error(response, 422, "ValidationError")["fields"][0]["field"] == "body.delay"


def test_a_full_queue_is_429_with_the_reason_and_a_retry_after(served):
    """A send beyond the level's queue_limit is 429 ``Rejected("queue full")``, Retry-After set."""
    one = served()
    api = one.client()
    entered, release = daemons.gate("http-gate")
    api.post("/api/messages", json={"target": "gate@1"})
    assert entered.wait(10)
    for _ in range(2):  # queue_limit = 2
        assert api.post("/api/messages", json={"target": "gate@1"}).status_code == 202
    response = api.post("/api/messages", json={"target": "gate@1"})
    error = _error(response, 429, "Rejected")
    assert error["reason"] == "queue full"
    assert response.headers["retry-after"] == "1"
    release.set()


def test_a_queued_message_is_cancelled_by_its_id(served):
    """`DELETE /api/messages/{id}` cancels a queued message; an unknown id is false."""
    api = served().client()
    entered, release = daemons.gate("http-gate")
    api.post("/api/messages", json={"target": "gate@1"})
    assert entered.wait(10)
    queued = api.post("/api/messages", json={"target": "gate@1"}).json()["message_id"]
    assert api.delete(f"/api/messages/{queued}").json() == {"cancelled": True}
    assert api.delete(f"/api/messages/{queued}").json() == {"cancelled": False}
    release.set()


def test_status_is_the_document_of_tierd_status_json(served):
    """`GET /api/status` has the levels, daemons and counters `Runtime.status` has."""
    one = served()
    status = one.client().get("/api/status").json()
    expected = one.runtime.status()
    assert status.keys() == expected.keys()
    assert status["name"] == expected["name"]
    assert [d["daemon"] for d in status["levels"][0]["daemons"]] == ["echo", "gate", "crasher"]


def test_daemons_are_paused_resumed_and_restarted_and_unknown_ones_are_404(served):
    """`POST /api/daemons/{target}/pause|resume|restart` act on the daemon; unknown: 404."""
    one = served()
    api = one.client()

    def paused() -> bool:
        return bool(one.runtime.status()["levels"][0]["daemons"][0]["paused"])

    assert api.post("/api/daemons/echo@1/pause").json() == {"target": "echo@1", "paused": True}
    assert paused()
    assert api.post("/api/daemons/echo@1/resume").json()["resumed"] is True
    assert not paused()
    assert api.post("/api/daemons/echo@1/restart").json()["restarted"] is True
    error = _error(api.post("/api/daemons/ghost@1/pause"), 404, "UnknownRecipient")
    assert "ghost@1" in error["message"]
    assert _error(api.post("/api/daemons/ghost/pause"), 422, "ValueError")


def test_dead_letters_are_listed_replayed_and_purged(served):
    """A failed notification is a dead letter: listed, replayed (new id), purged."""
    one = served()
    api = one.client()
    sent = api.post("/api/messages", json={"target": "crasher@1", "payload": "boom"}).json()
    wait_until(lambda: api.get("/api/dead-letters").json(), timeout=10)
    letters = api.get("/api/dead-letters", params={"level": 1}).json()
    assert [(letter["id"], letter["level"]) for letter in letters] == [(sent["message_id"], 1)]
    replayed = api.post("/api/dead-letters/replay", json={"ids": [sent["message_id"]]}).json()
    assert list(replayed["replayed"]) == [sent["message_id"]]
    wait_until(lambda: api.get("/api/dead-letters").json(), timeout=10)
    assert api.post("/api/dead-letters/purge").json() == {"purged": 1}
    assert api.get("/api/dead-letters").json() == []
    error = _error(api.get("/api/dead-letters", params={"level": 9}), 404, "UnknownRecipient")
    assert "level 9" in error["message"]
    error = _error(api.post("/api/dead-letters/purge", json={"ids": "all"}), 422,
                   "ValidationError")  # fmt: skip
    assert error["fields"][0]["field"] == "body.ids"


def test_a_runtime_without_processes_says_so_and_an_unknown_route_is_404(served):
    """Process routes of a runtime with no [processes] table: 404 ConfigError; no route: 404."""
    api = served(processes=False).client()
    error = _error(api.get("/api/processes"), 404, "ConfigError")
    assert "[processes]" in error["message"]
    error = _error(api.get("/api/nothing-here"), 404, "NotFound")
    assert "/api/nothing-here" in error["message"]
    assert api.get("/").status_code == 200  # the dashboard says it runs no processes
    assert "runs no processes" in api.get("/").text


def test_the_openapi_document_lists_every_api_route(served):
    """`/api/openapi.json` describes the API, with the request bodies' fields."""
    document = served().client().get("/api/openapi.json").json()
    paths = document["paths"]
    for path in ["/api/processes", "/api/processes/{process_id}", "/api/processes/stats",
                 "/api/processes/{process_id}/retry", "/api/messages", "/api/requests",
                 "/api/status", "/api/dead-letters", "/api/daemons/{target}/restart",
                 "/api/events"]:  # fmt: skip
        assert path in paths, path
    assert "kind" in document["components"]["schemas"]["SubmitBody"]["properties"]


def test_the_dashboard_pages_and_fragments_render(served: Callable[..., Served]):
    """`/`, a process page, each fragment and the static files answer; a missing process is 404."""
    one = served()
    api = one.client()
    process_id = _held(one, api, "page")
    home = api.get("/")
    assert home.status_code == 200
    assert process_id in home.text
    assert "echo@1" in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]
    page = api.get(f"/processes/{process_id}")
    assert page.status_code == 200
    assert 'data-step="wait"' in page.text
    assert "waiting for the gate" in page.text
    for section in ["levels", "processes", "dead-letters"]:
        assert api.get(f"/fragments/{section}").status_code == 200
    assert process_id in api.get("/fragments/processes", params={"q": process_id}).text
    assert process_id not in api.get("/fragments/processes", params={"status": "failed"}).text
    assert api.get("/fragments/nothing").status_code == 404
    assert api.get("/processes/01NOPE").status_code == 404
    assert api.get("/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/static/../config.py").status_code == 404


def test_schedules_are_listed_paused_resumed_and_run_now_and_unknown_ones_are_404(served):
    """`GET /api/schedules` and `POST …/{name}/pause|resume|run-now`; an unknown name is 404."""
    one = served(schedules=[{"name": "hourly", "every": 3600, "process": "broken"}])
    api = one.client()
    [listed] = api.get("/api/schedules").json()
    assert listed["name"] == "hourly"
    assert listed["next_fire"] > 0
    assert listed["paused"] is False
    assert api.post("/api/schedules/hourly/pause").json()["paused"] is True
    assert api.post("/api/schedules/hourly/resume").json()["paused"] is False
    fire = api.post("/api/schedules/hourly/run-now").json()
    assert fire["outcome"] == "fired"
    assert one.runtime.processes.get(fire["process_id"])["kind"] == "broken"
    error = _error(api.post("/api/schedules/nightly/pause"), 404, "ScheduleNotFound")
    assert error["name"] == "nightly"
    page = api.get("/fragments/schedules").text
    assert "hourly" in page
    assert "Run now" in page


def test_a_runtime_without_schedules_lists_none(served):
    """No [[schedules]]: an empty list, and the dashboard says so."""
    api = served().client()
    assert api.get("/api/schedules").json() == []
    assert "None: add" in api.get("/fragments/schedules").text


def test_a_body_over_max_message_bytes_is_413_before_any_route_reads_it(served):
    """A body larger than ``runtime.max_message_bytes`` is refused with 413, naming the key."""
    api = served(max_message_bytes=4096).client()
    big = {"kind": "held", "params": "x" * 5000}
    error = _error(api.post("/api/processes", json=big), 413, "PayloadTooLarge")
    assert "runtime.max_message_bytes" in error["message"]
    assert api.post("/api/processes", json={"kind": "nope"}).status_code == 422  # small: read


def test_a_live_stream_of_too_many_topics_is_422(served):
    """More than 20 topic prefixes on one stream: 422 naming the parameter."""
    api = served().client()
    response = api.get("/api/events", params={"topic": [f"process.k{n}." for n in range(21)]})
    assert "'topic'" in _error(response, 422, "ValueError")["message"]


def test_a_batch_lists_its_items_by_status_and_page_and_its_page_shows_the_failed_ones(served):
    """`GET …/{id}/items` pages a batch's items, filters by status; other processes are 422."""
    one = served()
    api = one.client()
    batch = _submit(api, "items", {"count": 12})
    document = one.runtime.processes.wait(batch, timeout=20)
    assert (document["status"], document["total_items"], document["failed_items"]) == (
        "completed", 12, 4)  # fmt: skip
    failed = api.get(f"/api/processes/{batch}/items", params={"status": "failed"}).json()
    assert [item["index"] for item in failed["items"]] == [0, 3, 6, 9]
    assert "multiple of 3" in failed["items"][0]["error"]["message"]
    first = api.get(f"/api/processes/{batch}/items", params={"limit": 5}).json()
    rest = api.get(f"/api/processes/{batch}/items", params={"cursor": first["cursor"]}).json()
    assert [i["index"] for i in first["items"] + rest["items"]] == list(range(12))
    assert rest["items"][0]["result"] == 50
    error = _error(api.get(f"/api/processes/{batch}/items", params={"status": "odd"}), 422,
                   "ValueError")  # fmt: skip
    assert "unknown item status" in error["message"]
    assert _error(api.get("/api/processes/01NOPE/items"), 404, "ProcessNotFound")
    plain = _submit(api, "broken")
    error = _error(api.get(f"/api/processes/{plain}/items"), 422, "ValueError")
    assert "not a batch" in error["message"]
    page = api.get(f"/processes/{batch}").text
    assert 'data-item="9"' in page
    assert "multiple of 3" in page
    assert "8/12 items, 4 failed" in api.get("/fragments/processes").text
