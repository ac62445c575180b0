"""Bearer tokens and roles on the HTTP API, the dashboard's sign-in, and the address checks."""

from __future__ import annotations

import threading

import pytest

from tests.web import kinds
from tests.web.conftest import OPERATE_TOKEN, SEND_TOKEN
from tierd.errors import ConfigError
from tierd.testing import runtime_from_dict

pytestmark = pytest.mark.timeout(60)

ECHO = [{"level": 1, "daemons": [{"id": "echo", "class": "tierd.actors.builtin:Echo"}]}]


def test_with_tokens_a_request_without_one_or_with_a_wrong_one_is_401(served):
    """No token, a wrong one, or another scheme: 401 with ``WWW-Authenticate: Bearer``."""
    one = served(tokens=True)
    for client in [one.client(), one.client("not-a-token-at-all-000")]:
        response = client.get("/api/status")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "Unauthorized"
    basic = one.client()
    assert (
        basic.get("/api/status", headers={"Authorization": f"Basic {SEND_TOKEN}"}).status_code
        == 401
    )


def test_a_send_token_submits_and_reads_but_control_needs_operate(served):
    """``send`` may submit, read and send; cancel, pause and daemon control answer 403."""
    one = served(tokens=True)
    sender, operator = one.client(SEND_TOKEN), one.client(OPERATE_TOKEN)
    kinds.RELEASE["roles"] = threading.Event()
    submitted = sender.post("/api/processes", json={"kind": "held", "params": {"gate": "roles"}})
    assert submitted.status_code == 201
    process_id = submitted.json()["process_id"]
    assert sender.get(f"/api/processes/{process_id}").status_code == 200
    assert sender.get("/api/status").status_code == 200
    assert sender.post("/api/requests", json={"target": "echo@1", "payload": 1}).json() == {
        "reply": 1
    }
    assert sender.get("/api/dead-letters").status_code == 200
    for method, path in [
        ("DELETE", f"/api/processes/{process_id}"), ("POST", f"/api/processes/{process_id}/pause"),
        ("POST", "/api/daemons/echo@1/pause"), ("POST", "/api/dead-letters/purge"),
        ("DELETE", "/api/messages/01X"), ("POST", "/api/schedules/hourly/run-now"),
    ]:  # fmt: skip
        response = sender.request(method, path)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["type"] == "Forbidden"
        assert error["message"] == "this needs a token with the 'operate' role; yours has 'send'"
    assert operator.delete(f"/api/processes/{process_id}").status_code == 202
    assert one.runtime.processes.wait(process_id, timeout=10)["status"] == "cancelled"


def test_the_dashboard_asks_for_a_token_and_keeps_it_in_a_strict_cookie(served):
    """Without a cookie `/` goes to the sign-in; a wrong token is refused; a right one signs in."""
    one = served(tokens=True)
    browser = one.client()
    assert browser.get("/").headers["location"] == "/login"
    assert browser.get("/fragments/levels").status_code == 401
    refused = browser.post("/login", data={"token": "wrong-token-000000000"})
    assert refused.status_code == 401
    assert "not accepted" in refused.text
    signed = browser.post("/login", data={"token": OPERATE_TOKEN})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = browser.get("/")
    assert page.status_code == 200
    assert "echo@1" in page.text
    assert "Restart" in page.text  # operate sees the daemon controls
    assert browser.get("/api/status").status_code == 200  # the cookie works for the API too
    assert browser.post("/logout").status_code == 303
    assert browser.get("/").headers["location"] == "/login"


def test_a_token_file_is_read_at_start_and_a_missing_one_fails_the_start_naming_the_key(tmp_path):
    """``token_file`` holds the secret; one that cannot be read fails `start`, naming its key."""
    token_file = tmp_path / "ops.token"
    token_file.write_text(f"{OPERATE_TOKEN}\n")
    runtime = {
        "http": "127.0.0.1:0",
        "http_tokens": [{"token_file": str(token_file), "role": "operate"}],
    }
    with runtime_from_dict({"runtime": runtime, "levels": ECHO}) as started:
        assert started.http is not None
        assert started.http.tokens.role_of(OPERATE_TOKEN) == "operate"
        assert started.http.tokens.role_of(SEND_TOKEN) is None
    runtime["http_tokens"] = [{"token_file": str(tmp_path / "gone.token")}]
    missing = runtime_from_dict({"runtime": runtime, "levels": ECHO})
    with pytest.raises(ConfigError, match=r"runtime\.http_tokens\[0\]\.token_file: cannot read"):
        missing.start()
    token_file.write_text("short")
    runtime["http_tokens"] = [{"token_file": str(token_file)}]
    with pytest.raises(ConfigError, match=r"at least 16 printable characters"):
        runtime_from_dict({"runtime": runtime, "levels": ECHO}).start()


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"http": "0.0.0.0:8080"}, "runtime.http_tokens: the HTTP API on '0.0.0.0:8080' is not"),
        ({"http": "[::]:8080"}, "runtime.http_tokens: the HTTP API on '[::]:8080' is not loopback"),
        ({"http": "8080"}, "runtime.http: bad HTTP address '8080'"),
        ({"http": "::1:8080"}, "write an IPv6 host in brackets"),
        ({"http": "127.0.0.1:0", "http_tokens": [{"token": "short"}]},
         "runtime.http_tokens[0].token"),
        ({"http": "127.0.0.1:0", "http_tokens": [{"role": "operate"}]}, "give either token"),
        ({"http": "127.0.0.1:0", "http_tokens": [{"token": SEND_TOKEN, "role": "admin"}]},
         "runtime.http_tokens[0].role"),
    ],
)  # fmt: skip
def test_a_bad_http_config_is_refused_naming_the_key(runtime, message):
    """Beyond loopback without tokens, a bad address or a bad token entry: refused, key named."""
    with pytest.raises(ConfigError) as refused:
        runtime_from_dict({"runtime": runtime, "levels": ECHO})
    assert message in str(refused.value)


def test_beyond_loopback_tokens_make_the_config_valid():
    """``0.0.0.0`` with tokens passes the check (this test does not bind it)."""
    runtime = {"http": "0.0.0.0:8080", "http_tokens": [{"token": OPERATE_TOKEN, "role": "operate"}]}
    assert (
        runtime_from_dict({"runtime": runtime, "levels": ECHO}).config.runtime.http
        == "0.0.0.0:8080"
    )


def test_an_address_in_use_fails_the_start_naming_runtime_http_and_leaves_nothing_running(served):
    """A second runtime on a taken HTTP port fails `start` with `HttpServerError`."""
    first = served()
    taken = first.runtime.http.address
    second = runtime_from_dict(
        {"runtime": {"http": taken, "metrics": "127.0.0.1:0"}, "levels": ECHO}
    )
    with pytest.raises(OSError, match=rf"cannot serve the HTTP API on runtime.http {taken}"):
        second.start()
    assert second.metrics.address == ""  # what the failed start opened is closed again
    assert first.client().get("/api/status").status_code == 200


def test_a_button_pressed_from_another_site_is_refused(served):
    """A POST whose Origin is not the API's own host is 403; the dashboard's own passes."""
    one = served()
    api = one.client()
    host = one.url.removeprefix("http://")
    refused = api.post("/api/daemons/echo@1/pause", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    assert "another origin" in refused.json()["error"]["message"]
    assert not one.runtime.status()["levels"][0]["daemons"][0]["paused"]
    own = api.post("/api/daemons/echo@1/pause", headers={"Origin": f"http://{host}"})
    assert own.status_code == 200
    assert api.get("/api/status", headers={"Origin": "http://evil.example"}).status_code == 200


def test_an_open_api_answers_only_to_a_loopback_host(served):
    """Without tokens, a Host that is not loopback (DNS rebinding) is refused; with them, served."""
    open_api = served(processes=False)
    port = open_api.url.rpartition(":")[2]
    response = open_api.client().get("/api/status", headers={"Host": f"rebound.example:{port}"})
    assert response.status_code == 403
    assert "loopback host" in response.json()["error"]["message"]
    assert open_api.client().get("/api/status", headers={"Host": "localhost"}).status_code == 200
    guarded = served(tokens=True, processes=False).client(OPERATE_TOKEN)
    assert guarded.get("/api/status", headers={"Host": "tierd.example.org"}).status_code == 200
