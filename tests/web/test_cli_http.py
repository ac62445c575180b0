"""``tierd run`` serving HTTP, as an operator starts it: the banner, a second instance, a check."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

from tests.processes import run_tierd
from tests.web.conftest import OPERATE_TOKEN
from tests.web.topology import write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def _address(run) -> str:
    return run.wait_for_line(r"dashboard and API:\s+http://(\S+)/").group(1)


def test_tierd_run_announces_the_dashboard_serves_it_and_never_logs_a_token(tierd_cli, tmp_path):
    """The banner names the address; the API answers with a token; no log line holds the token."""
    run = tierd_cli("run", str(write_config(tmp_path, tokens=((OPERATE_TOKEN, "operate"),))))
    address = _address(run)
    headers = {"Authorization": f"Bearer {OPERATE_TOKEN}"}
    body = {"kind": "paced", "params": {"parts": 2, "pause": 0.01}}
    submitted = httpx.post(
        f"http://{address}/api/processes", headers=headers, json=body, timeout=10
    )
    assert submitted.status_code == 201
    assert httpx.get(f"http://{address}/api/status", timeout=10).status_code == 401
    assert run.finish(signal.SIGTERM) == 0
    assert not any(OPERATE_TOKEN in line for line in run.stdout + run.stderr)
    assert any("http_serving" in line for line in run.stderr)


def test_a_second_run_on_the_same_http_port_fails_in_one_line_and_leaves_the_first(
    tierd_cli, tmp_path
):
    """A taken ``runtime.http`` address: exit 1, one line naming it; the first keeps serving."""
    first = tierd_cli("run", str(write_config(tmp_path)))
    address = _address(first)
    other = tmp_path / "other"
    other.mkdir()
    second = tierd_cli("run", str(write_config(other, http=address)))
    assert second.finish(sig=None, timeout=30) == 1
    assert any(f"cannot serve the HTTP API on runtime.http {address}" in line
               for line in second.stderr)  # fmt: skip
    assert not any("Traceback" in line for line in second.stderr)
    assert httpx.get(f"http://{address}/api/status", timeout=10).json()["name"] == "web"
    assert first.finish(signal.SIGTERM) == 0


def test_tierd_check_refuses_an_open_api_beyond_loopback(tmp_path):
    """``http = "0.0.0.0:…"`` with no tokens: exit 2 with a line naming runtime.http_tokens."""
    done = run_tierd("check", str(write_config(tmp_path, http="0.0.0.0:8080")))
    assert done.returncode == 2
    assert "runtime.http_tokens: the HTTP API on '0.0.0.0:8080' is not loopback" in done.stderr


def test_a_runtime_without_http_loads_no_web_stack():
    """Run with ``runtime.http = ""``, a runtime imports no FastAPI, uvicorn or Jinja2."""
    script = (
        "import sys\n"
        "from tierd.testing import runtime_from_dict\n"
        "levels = [{'level': 1, 'daemons': [{'id': 'e', 'class': 'tierd.actors.builtin:Echo'}]}]\n"
        "with runtime_from_dict({'levels': levels}) as rt:\n"
        "    assert rt.request('e@1', 1, timeout=5) == 1\n"
        "web = ('fastapi', 'starlette', 'uvicorn', 'jinja2')\n"
        "loaded = sorted(m for m in web if m in sys.modules)\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
